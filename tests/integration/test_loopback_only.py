"""Nothing the local stack started listens outside the loopback interface."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PID_DIR = ROOT / ".local" / "pids"


def _stack_process_groups() -> set[int]:
    groups: set[int] = set()
    for pid_file in PID_DIR.glob("*.pid"):
        text = pid_file.read_text().strip()
        if text.isdigit():
            groups.add(int(text))
    return groups


def _pids_in_groups(groups: set[int]) -> set[int]:
    out = subprocess.run(
        ["ps", "-eo", "pid=,pgid="], check=True, capture_output=True, text=True
    ).stdout
    pids: set[int] = set()
    for line in out.splitlines():
        pid, pgid = (int(x) for x in line.split())
        if pgid in groups or pid in groups:
            pids.add(pid)
    return pids


def test_every_listener_of_the_stack_binds_loopback() -> None:
    groups = _stack_process_groups()
    if not groups:
        pytest.skip("the native stack is not running from this clone (docker or other clone)")
    pids = _pids_in_groups(groups)
    out = subprocess.run(["ss", "-ltnpH"], check=True, capture_output=True, text=True).stdout
    ours: list[tuple[str, set[int]]] = []
    for line in out.splitlines():
        fields = line.split()
        local = fields[3]
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            ours.append((local, owners))
    assert ours, "found no listening socket of the stack's processes"
    outside = [local for local, _ in ours if not re.match(r"^(127\.\d+\.\d+\.\d+|\[::1\]):", local)]
    assert outside == [], f"listeners outside loopback: {outside}"

"""sandbox.cgroups: reading the host's cgroup layout and a run's counters, on fake files."""

from __future__ import annotations

import os
from pathlib import Path

from integr8scode_coordinator.sandbox.cgroups import (
    CgroupHost,
    RunCgroup,
    own_cgroups,
    read_counter,
)

PROC_CGROUP = """\
9:name=systemd:/
8:pids:/
4:memory:/process_api/abc
2:cpu,cpuacct:/
0::/
"""


def test_own_cgroups_per_controller() -> None:
    assert own_cgroups(PROC_CGROUP) == {
        "name=systemd": "/",
        "pids": "/",
        "memory": "/process_api/abc",
        "cpu": "/",
        "cpuacct": "/",
    }


def test_counters_are_read_by_exact_key() -> None:
    oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"
    assert read_counter(oom_control, "oom_kill") == 2
    assert read_counter("max 0\n", "max") == 0
    assert read_counter("", "max") == 0


def test_a_host_without_controllers_falls_back_to_rlimits(tmp_path: Path) -> None:
    host = CgroupHost.probe(root=tmp_path, proc_cgroup=PROC_CGROUP)
    assert host == CgroupHost(memory=None, pids=None)
    assert host.enforced == ()


def test_a_plain_directory_is_not_a_cgroup(tmp_path: Path) -> None:
    """mkdir works but no control files appear: not a cgroup filesystem, so not used."""
    memory = tmp_path / "memory" / "process_api" / "abc"
    memory.mkdir(parents=True)
    (tmp_path / "memory" / "cgroup.procs").write_text("")
    host = CgroupHost.probe(root=tmp_path, proc_cgroup=PROC_CGROUP)
    assert host.memory is None


def fake_run(tmp_path: Path) -> RunCgroup:
    memory, pids = tmp_path / "memory", tmp_path / "pids"
    for directory in (memory, pids):
        directory.mkdir()
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    (memory / "memory.max_usage_in_bytes").write_text("10485760\n")
    (pids / "pids.events").write_text("max 3\n")
    return RunCgroup(memory=memory, pids=pids)


def test_a_runs_counters(tmp_path: Path) -> None:
    run = fake_run(tmp_path)
    assert run.oom_kills() == 1
    assert run.process_limit_hit() is True
    assert run.peak_memory_kb() == 10 * 1024
    assert run.procs_files == [str(tmp_path / n / "cgroup.procs") for n in ("memory", "pids")]


def test_a_run_without_cgroups_reports_nothing() -> None:
    run = RunCgroup(memory=None, pids=None)
    assert (run.oom_kills(), run.process_limit_hit(), run.peak_memory_kb()) == (0, False, None)
    assert run.procs_files == []
    assert run.remove() is True


def test_remove_reports_a_busy_cgroup(tmp_path: Path) -> None:
    run = fake_run(tmp_path)  # fake dirs hold files, so rmdir fails like a busy cgroup
    assert run.remove() is False
    empty = tmp_path / "empty"
    empty.mkdir()
    assert RunCgroup(memory=empty, pids=None).remove() is True
    assert not empty.exists()


def test_sweep_removes_only_old_empty_run_cgroups(tmp_path: Path) -> None:
    old, new, busy = tmp_path / "run-old", tmp_path / "run-new", tmp_path / "run-busy"
    for directory in (old, new, busy):
        directory.mkdir()
    (busy / "cgroup.procs").write_text("123\n")  # rmdir fails, as on a cgroup with tasks
    for directory in (old, busy):
        os.utime(directory, (0, 0))
    assert CgroupHost(memory=tmp_path, pids=None).sweep(older_than_s=60) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-busy", "run-new"]

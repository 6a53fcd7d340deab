"""sandbox.proc_tree: CPU and memory of a process tree, from a /proc laid out in a temp dir (and
once from the real /proc)."""

from __future__ import annotations

import os
from pathlib import Path

from integr8scode_coordinator.sandbox.proc_tree import (
    parent_of,
    proportional_kb,
    tree_usage,
    vm_hwm_kb,
)

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def fake_process(
    proc: Path,
    pid: int,
    ppid: int,
    *,
    ticks: tuple[int, int, int, int] = (0, 0, 0, 0),
    children: tuple[int, ...] = (),
    status: str = "",
    rollup: str | None = None,
    comm: str = "python3",
) -> None:
    """The files ``proc_tree`` reads, as the kernel writes them (fields 14-17: utime, stime,
    cutime, cstime, in clock ticks)."""
    d = proc / str(pid)
    (d / "task" / str(pid)).mkdir(parents=True)
    utime, stime, cutime, cstime = ticks
    rest = ["S", str(ppid), *["0"] * 9, str(utime), str(stime), str(cutime), str(cstime), "20"]
    (d / "stat").write_text(f"{pid} ({comm}) {' '.join(rest)}\n")
    (d / "task" / str(pid) / "children").write_text(" ".join(map(str, children)) + " ")
    (d / "status").write_text(f"Name:\t{comm}\n{status}")
    if rollup is not None:
        (d / "smaps_rollup").write_text(rollup)


def test_cpu_counts_every_process_and_what_each_reaped(tmp_path: Path) -> None:
    fake_process(tmp_path, 1, 0, ticks=(1, 1, 50, 10), children=(7,), comm="sh")
    fake_process(tmp_path, 7, 1, ticks=(100, 20, 0, 0), children=(8, 9), comm="my (odd) name")
    fake_process(tmp_path, 8, 7, ticks=(30, 0, 0, 0))
    fake_process(tmp_path, 9, 7, ticks=(0, 5, 0, 0))
    usage = tree_usage(1, proc=tmp_path, memory=False)
    assert usage.cpu_ms == (2 + 60 + 120 + 30 + 5) * TICK_MS
    assert usage.pids == (
        1,
        7,
        8,
        9,
    )  # parents before children: a reaped child is never counted twice
    assert (usage.peak_kb, usage.resident_kb) == (0, 0)  # memory not read


def test_resident_memory_is_anon_plus_shmem_summed_and_peak_is_the_largest(tmp_path: Path) -> None:
    fake_process(
        tmp_path,
        1,
        0,
        children=(2,),
        status="VmHWM:\t 900 kB\nRssAnon:\t 100 kB\nRssFile:\t 5000 kB\n",
    )
    fake_process(
        tmp_path, 2, 1, status="VmHWM:\t 70000 kB\nRssAnon:\t 60000 kB\nRssShmem:\t 4000 kB\n"
    )
    usage = tree_usage(1, proc=tmp_path)
    assert usage.resident_kb == 100 + 60000 + 4000  # file pages are the host's page cache
    assert usage.peak_kb == 70000
    assert vm_hwm_kb(2, proc=tmp_path) == 70000
    assert parent_of(2, proc=tmp_path) == 1


def test_a_process_gone_mid_walk_is_skipped(tmp_path: Path) -> None:
    fake_process(tmp_path, 1, 0, ticks=(3, 0, 0, 0), children=(2, 3))
    fake_process(tmp_path, 3, 1, ticks=(4, 0, 0, 0))  # 2 exited after 1 listed it
    usage = tree_usage(1, proc=tmp_path)
    assert usage.pids == (1, 3)
    assert usage.cpu_ms == 7 * TICK_MS
    assert tree_usage(99, proc=tmp_path).pids == ()


def test_proportional_memory_counts_shared_pages_once(tmp_path: Path) -> None:
    # Two forked processes sharing 40 MB copy-on-write: RSS says 2 x 50, PSS says 10 + 10 + 40.
    for pid in (1, 2):
        fake_process(
            tmp_path,
            pid,
            0,
            status="RssAnon:\t 50000 kB\n",
            rollup="Rss:  52000 kB\nPss:  31000 kB\nPss_Anon:  30000 kB\nPss_File:  1000 kB\n"
            "Pss_Shmem:  0 kB\n",
        )
    fake_process(tmp_path, 3, 0, rollup="Rss:  9000 kB\nPss:  8000 kB\n")  # an older kernel
    assert proportional_kb([1, 2], proc=tmp_path) == 60000
    assert proportional_kb([3], proc=tmp_path) == 8000
    assert proportional_kb([1, 404], proc=tmp_path) == 30000  # a pid gone counts nothing


def test_a_live_process_tree() -> None:
    burn = sum(i * i for i in range(200_000))  # some CPU of our own to count
    usage = tree_usage(os.getpid())
    assert burn > 0
    assert usage.cpu_ms > 0
    assert usage.peak_kb > 1024
    assert usage.resident_kb > 1024
    # PSS <= RSS at any one instant; the two are read apart and this process may grow in between.
    proportional = proportional_kb(usage.pids)
    later = tree_usage(os.getpid())
    assert 0 < proportional <= max(usage.resident_kb, later.resident_kb)
    assert tree_usage(2**22 + 12345).pids == ()  # a pid that can't exist

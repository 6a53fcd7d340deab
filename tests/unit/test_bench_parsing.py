"""The benches' parsing of /proc, Prometheus text and py-spy's speedscope files (bench/)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from proc_cpu import (
    CpuSnapshot,
    ProcStat,
    difference,
    parse_cpu_line,
    parse_stat,
    read_stats,
    tree_parts,
    tree_ticks,
)
from prom_text import counter_delta, parse_samples, sum_by_label
from pyspy_profile import top_functions

# pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
# cutime cstime ...
_STAT = "4242 ({comm}) S 17 4242 4242 0 -1 4194560 900 0 0 0 {u} {s} {cu} {cs} 20 0 3 0 1 2 3"


def _stat(comm: str = "python", u: int = 7, s: int = 3, cu: int = 0, cs: int = 0) -> str:
    return _STAT.format(comm=comm, u=u, s=s, cu=cu, cs=cs)


def test_stat_fields_after_the_command_name() -> None:
    stat = parse_stat(_stat(u=120, s=30, cu=55, cs=5))
    assert stat == ProcStat(pid=4242, ppid=17, utime=120, stime=30, cutime=55, cstime=5)
    assert stat.ticks == 210


def test_stat_command_name_with_spaces_and_parentheses() -> None:
    stat = parse_stat(_stat(comm="a ) b (c) d", u=9, s=1))
    assert (stat.pid, stat.ppid, stat.utime, stat.stime) == (4242, 17, 9, 1)


def test_stat_rejects_a_line_without_a_command_name() -> None:
    with pytest.raises(ValueError, match="not a /proc"):
        parse_stat("4242 S 17")


def _proc(pid: int, ppid: int, ticks: int, reaped: int = 0) -> ProcStat:
    return ProcStat(pid=pid, ppid=ppid, utime=ticks, stime=0, cutime=reaped, cstime=0)


def test_tree_sums_live_descendants_and_reaped_children() -> None:
    stats = {
        p.pid: p
        for p in [
            _proc(10, 1, 100, reaped=40),  # the service, 40 ticks of sandboxes already reaped
            _proc(11, 10, 5),  # a sandbox running now
            _proc(12, 11, 2, reaped=1),  # its child
            _proc(20, 1, 1000),  # another service: not in the tree
        ]
    }
    assert tree_ticks(10, stats) == 100 + 40 + 5 + 2 + 1
    assert tree_ticks(11, stats) == 8
    assert tree_ticks(99, stats) is None


def test_a_tree_in_parts_itself_live_children_and_reaped_children() -> None:
    stats = {
        p.pid: p
        for p in [
            _proc(10, 1, 100, reaped=40),  # the service; 40 ticks of sandboxes it reaped
            _proc(11, 10, 5, reaped=3),  # its export child, which reaped a child of its own
            _proc(12, 10, 2),  # a sandbox running now
        ]
    }
    assert tree_parts(10, stats) == (100, 5 + 3 + 2, 40)
    assert sum(tree_parts(10, stats) or ()) == tree_ticks(10, stats)
    assert tree_parts(99, stats) is None


def test_parts_over_a_phase_and_none_for_a_restarted_service() -> None:
    hz = os.sysconf("SC_CLK_TCK")
    component = "coordinator (+ sandboxes)"

    def snap(pid: int, parts: tuple[int, int, int]) -> CpuSnapshot:
        return CpuSnapshot({component: (pid,)}, {component: sum(parts)}, 0, 0, {component: parts})

    use = difference(snap(10, (100, 10, 40)), snap(10, (100 + hz, 10 + hz // 2, 40 + 2 * hz)))
    assert use.parts[component] == pytest.approx((1.0, (hz // 2) / hz, 2.0))
    assert use.seconds[component] == pytest.approx(sum(use.parts[component]))
    assert difference(snap(10, (100, 10, 40)), snap(11, (5, 0, 0))).parts == {}


def test_read_stats_skips_what_is_not_a_process(tmp_path: Path) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "stat").write_text(_stat())
    (tmp_path / "4243").mkdir()  # exited between listing and reading: no stat file
    (tmp_path / "self").mkdir()
    assert list(read_stats(tmp_path)) == [4242]


def test_cpu_line_busy_excludes_idle_and_iowait() -> None:
    text = "cpu  100 5 50 800 40 3 2 1 9 0\ncpu0 50 2 25 400 20 1 1 0 0 0\nintr 1\n"
    busy, total = parse_cpu_line(text)
    assert total == 100 + 5 + 50 + 800 + 40 + 3 + 2 + 1  # guest is inside user already
    assert busy == total - 800 - 40


def test_cpu_line_missing() -> None:
    with pytest.raises(ValueError, match="cpu"):
        parse_cpu_line("intr 1\n")


_METRICS = """\
# HELP ferretdb_client_requests_total Total number of requests.
# TYPE ferretdb_client_requests_total counter
ferretdb_client_requests_total{command="find",opcode="OP_MSG"} 10319
ferretdb_client_requests_total{command="find",opcode="OP_QUERY"} 1
ferretdb_client_requests_total{opcode="OP_MSG",command="update"} 1268 1700000000000
ferretdb_client_responses_total{argument="find",command="find",result="ok"} 9
odd_total{path="a \\"quoted\\", comma\\\\"} 2.5e3
up 1
"""


def test_prometheus_samples_and_labels() -> None:
    samples = parse_samples(_METRICS)
    assert len(samples) == 6
    odd = next(s for s in samples if s.name == "odd_total")
    assert odd.labels == {"path": 'a "quoted", comma\\'}
    assert odd.value == 2500.0
    assert samples[-1].labels == {}


def test_prometheus_sum_by_label_over_the_other_labels() -> None:
    by_command = sum_by_label(parse_samples(_METRICS), "ferretdb_client_requests_total", "command")
    assert by_command == {"find": 10320.0, "update": 1268.0}


def test_prometheus_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="sample"):
        parse_samples("{oops} 1")
    with pytest.raises(ValueError, match="label"):
        parse_samples('m{a="1" b} 1')


def test_counter_delta_new_keys_and_resets() -> None:
    delta = counter_delta({"find": 10.0, "insert": 50.0}, {"find": 25.0, "insert": 3.0, "x": 2.0})
    assert delta["find"] == 15.0
    assert delta["x"] == 2.0
    assert math.isnan(delta["insert"])  # the server restarted: its counter began again


def test_top_functions_by_own_time_across_threads() -> None:
    frames = [
        {"name": "main", "file": "/app/main.py", "line": 1},
        {"name": "handle", "file": "/app/h.py", "line": 10},
        {"name": "sendall", "file": "/usr/lib/socket.py", "line": 99},
        {"name": "encode", "file": "/app/codec.py", "line": 5},
    ]
    speedscope = {
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "samples": [[0, 1, 2], [0, 1, 2], [0, 1, 3]],
                "weights": [0.01, 0.01, 0.01],
            },
            {"type": "sampled", "samples": [[0, 1], [0]], "weights": [0.02, 0.01]},  # weighted
            {"type": "evented", "events": []},
        ],
    }
    samples, top = top_functions(speedscope, limit=3)
    assert samples == 5
    assert [t.function for t in top] == [
        "sendall (socket.py:99)",
        "handle (h.py:10)",
        "encode (codec.py:5)",
    ]
    assert top[0].own == pytest.approx(2 / 6)
    assert top[1].total == pytest.approx(5 / 6)  # anywhere in the stack


def test_top_functions_of_an_empty_profile() -> None:
    assert top_functions({"shared": {"frames": []}, "profiles": []}) == (0, [])


def test_the_tracing_ratio_is_the_median_of_the_pairs() -> None:
    from execute_roundtrip import Run, tracing_ratio  # noqa: PLC0415 - aiohttp, only here

    def loop(rate: float) -> Run:
        return Run("loop", 10.0, [1.0] * int(rate * 10), 0)

    pairs = [(loop(30), loop(40)), (loop(36), loop(40)), (loop(38), loop(40))]
    assert tracing_ratio(pairs) == pytest.approx(0.9)
    assert math.isnan(tracing_ratio([(loop(30), loop(0))]))  # an untraced loop that ran nothing
    assert math.isnan(tracing_ratio([]))


def test_the_machine_speed_canary_is_the_least_cpu_time_of_its_runs() -> None:
    from history_growth import ratio  # noqa: PLC0415 - aiohttp, only here
    from machine_speed import canary_ms  # noqa: PLC0415

    # A clock read twice per run; the runs took 0.040, 0.030 and 0.050 s of CPU.
    readings = iter([1.0, 1.040, 2.0, 2.030, 3.0, 3.050])
    assert canary_ms(repeat=3, n=10, clock=lambda: next(readings)) == pytest.approx(30.0)
    assert ratio(45.0, 36.0) == pytest.approx(1.25)  # the later run took a quarter more
    assert math.isnan(ratio(45.0, 0.0))


def test_a_history_round_reads_the_sandboxes_cpu_per_execution() -> None:
    from execute_roundtrip import Run  # noqa: PLC0415 - aiohttp, only here
    from history_growth import Round  # noqa: PLC0415
    from proc_cpu import SPLIT, CpuUse  # noqa: PLC0415
    from stack_probe import PhaseCost  # noqa: PLC0415

    cpu = CpuUse({SPLIT[1]: 3.0}, 3.0, 4.0, parts={SPLIT[1]: (1.0, 0.2, 1.8)})
    loop = Run("loop", 10.0, [100.0] * 99, 1)  # 100 executions, one of them failed
    measured = Round("r", {}, loop, PhaseCost(cpu, {}, {}, 10.0), {}, {}, {}, 34.0)
    assert measured.sandbox_ms == pytest.approx(18.0)  # 1.8 s of reaped children / 100
    assert math.isnan(Round("r", {}, loop, None, {}, {}, {}, 34.0).sandbox_ms)

"""sandbox.outcome: output capping and how a run's facts become an outcome and a message."""

from __future__ import annotations

from typing import Any

import pytest

from integr8scode_coordinator.sandbox.languages import LANGUAGES
from integr8scode_coordinator.sandbox.model import MIB, SandboxLimits
from integr8scode_coordinator.sandbox.outcome import (
    CappedOutput,
    KillReason,
    Limit,
    Observation,
    classify,
    human_bytes,
    limit_message,
)

LIMITS = SandboxLimits(timeout_s=2, memory_mb=128, cpu_time_s=3)
FLOOD = 10 * MIB


def outcome(**facts: Any) -> tuple[object, ...]:
    return classify(Observation(**facts), LIMITS, FLOOD)


# -- CappedOutput ----------------------------------------------------------------------------


def test_output_under_the_cap_is_kept_whole() -> None:
    out = CappedOutput(cap=10, flood_limit=100)
    out.feed(b"hello ")
    out.feed(b"you")
    assert (out.text(), out.truncated, out.flooded, out.total) == ("hello you", False, False, 9)


def test_output_past_the_cap_is_counted_but_dropped() -> None:
    out = CappedOutput(cap=4, flood_limit=100)
    for chunk in (b"abc", b"def", b"ghi"):
        out.feed(chunk)
    assert (out.text(), out.truncated, out.total) == ("abcd", True, 9)


def test_exactly_the_cap_is_not_truncated() -> None:
    out = CappedOutput(cap=4, flood_limit=100)
    out.feed(b"abcd")
    assert not out.truncated


def test_flooding_is_past_the_flood_limit() -> None:
    out = CappedOutput(cap=4, flood_limit=10)
    out.feed(b"x" * 10)
    assert not out.flooded
    out.feed(b"x")
    assert out.flooded


def test_a_character_cut_by_the_cap_is_dropped() -> None:
    whole = CappedOutput(cap=4, flood_limit=100)
    whole.feed("abé!".encode())  # é is two bytes: a cap of 4 keeps it
    assert whole.text() == "abé"
    cut = CappedOutput(cap=3, flood_limit=100)
    cut.feed("abé!".encode())  # the cap falls between é's two bytes
    assert cut.text() == "ab"


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    out = CappedOutput(cap=100, flood_limit=1000)
    out.feed(b"ok \xff\xfe end")
    assert out.text() == "ok \ufffd\ufffd end"


# -- classify --------------------------------------------------------------------------------


def test_exit_zero_is_completed_without_error() -> None:
    assert outcome(exit_code=0) == ("completed", 0, None, None)


def test_nonzero_exit_is_still_completed() -> None:
    assert outcome(exit_code=3, stderr="boom") == ("completed", 3, None, None)


def test_truncation_alone_is_completed_with_a_note() -> None:
    assert outcome(exit_code=0, stdout_truncated=True) == (
        "completed",
        0,
        None,
        "output truncated at 1 MiB",
    )


def test_a_death_by_signal_reports_the_signal() -> None:
    assert outcome(exit_code=128 + 11) == ("completed", 139, 11, None)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("cancel", ("cancelled", None, 9, "cancelled while running")),
        ("timeout", ("timed_out", None, 9, "wall-clock timeout of 2s exceeded")),
        ("memory", ("failed", None, 9, "memory limit of 128 MB exceeded")),
        ("processes", ("failed", None, 9, "process limit of 64 reached")),
        ("cpu", ("failed", None, 9, "CPU time limit of 3s exceeded")),
        (
            "output",
            (
                "failed",
                None,
                9,
                "output limit exceeded: the program wrote more than 10 MiB; "
                "the first 1 MiB per stream were kept",
            ),
        ),
    ],
)
def test_what_the_runner_killed_for_decides(reason: KillReason, expected: tuple[object]) -> None:
    assert outcome(exit_code=None, killed_for=reason) == expected


def test_a_timeout_mentions_a_process_limit_that_was_hit() -> None:
    _, _, _, error = outcome(exit_code=None, killed_for="timeout", process_limit_hit=True)
    assert error == "wall-clock timeout of 2s exceeded; the process limit of 64 reached"


def test_setup_errors_are_platform_failures() -> None:
    assert outcome(exit_code=None, setup_error="bwrap: No permissions") == (
        "failed",
        None,
        None,
        "sandbox failed to start: bwrap: No permissions",
    )


def test_kernel_counters_fail_the_run_whatever_the_exit_code() -> None:
    assert outcome(exit_code=0, oom_kills=1)[::3] == ("failed", "memory limit of 128 MB exceeded")
    assert outcome(exit_code=0, process_limit_hit=True)[::3] == (
        "failed",
        "process limit of 64 reached",
    )


def test_cpu_limit_signals() -> None:
    assert outcome(exit_code=128 + 24)[::3] == ("failed", "CPU time limit of 3s exceeded")
    # The hard limit is a SIGKILL a second after SIGXCPU was ignored.
    assert outcome(exit_code=137, cpu_time_ms=4000)[::3] == (
        "failed",
        "CPU time limit of 3s exceeded",
    )
    assert outcome(exit_code=137, cpu_time_ms=100)[0] == "completed"  # killed itself


def test_file_size_signal() -> None:
    assert outcome(exit_code=128 + 25)[::3] == ("failed", "file size limit of 16 MB exceeded")


PY_MARKERS = LANGUAGES["python"].markers
JS_MARKERS = LANGUAGES["javascript"].markers
BASH_MARKERS = LANGUAGES["bash"].markers


@pytest.mark.parametrize(
    ("stderr", "markers", "limit"),
    [
        ("Traceback ...\nMemoryError\n", PY_MARKERS, Limit.MEMORY),
        ("FATAL ERROR: ... - JavaScript heap out of memory", JS_MARKERS, Limit.MEMORY),
        ("RangeError: Array buffer allocation failed", JS_MARKERS, Limit.MEMORY),
        ("OSError: [Errno 27] File too large", PY_MARKERS, Limit.FILE_SIZE),
        ("OSError: [Errno 28] No space left on device", PY_MARKERS, Limit.DISK),
        ("OSError: [Errno 24] Too many open files", PY_MARKERS, Limit.OPEN_FILES),
    ],
)
def test_stderr_explains_a_failed_exit(
    stderr: str, markers: tuple[tuple[Limit, str], ...], limit: Limit
) -> None:
    facts = Observation(exit_code=1, stderr=stderr, markers=markers)
    assert classify(facts, LIMITS, FLOOD) == ("failed", 1, None, limit_message(limit, LIMITS))


def test_stderr_markers_do_not_fail_a_clean_exit() -> None:
    facts = Observation(exit_code=0, stderr="caught MemoryError, carried on", markers=PY_MARKERS)
    assert classify(facts, LIMITS, FLOOD)[0] == "completed"


def test_a_refused_fork_fails_even_a_clean_exit() -> None:
    stderr = "main.sh: fork: retry: Resource temporarily unavailable\n"
    facts = Observation(exit_code=0, stderr=stderr, markers=BASH_MARKERS)
    assert classify(facts, LIMITS, FLOOD)[::3] == ("failed", "process limit of 64 reached")


def test_messages_name_the_limits() -> None:
    assert limit_message(Limit.DISK, LIMITS) == "disk space limit of 64 MB exceeded (no space left)"
    assert limit_message(Limit.OPEN_FILES, LIMITS) == "open file limit of 64 reached"
    assert human_bytes(1024) == "1 KiB"
    assert human_bytes(3 * MIB) == "3 MiB"
    assert human_bytes(1000) == "1000 bytes"

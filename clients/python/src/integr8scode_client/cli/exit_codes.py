"""The CLI's exit codes (the package README has the table). ``run`` mirrors the program's own
exit code when it completed; the codes below are for everything else."""

from __future__ import annotations

from integr8scode_client.models import Execution

OK = 0
USAGE = 2  # bad arguments or input: also a request the API refused as invalid (400, 422)
REFUSED = 3  # the API refused: not logged in (401), not found (404), conflict (409), 429
UNAVAILABLE = 4  # the API can't be reached, or failed (5xx)
WAIT_TIMEOUT = 5  # gave up waiting (--wait-timeout); the execution goes on
FAILED = 125  # the platform failed the run (compile error, a limit, a sandbox error)
TIMED_OUT = 124  # the run hit its time limit (as timeout(1) answers)
CANCELLED = 130  # the run was cancelled (or the CLI interrupted)


def of_execution(execution: Execution) -> int:
    """The exit code ``run`` ends with for a finished execution."""
    if execution.status == "completed":
        code = execution.exit_code or 0
        if code < 0:
            return min(255, 128 - code)  # killed by signal -code, as a shell reports it
        return code if code <= 255 else FAILED
    if execution.status == "timed_out":
        return TIMED_OUT
    if execution.status == "cancelled":
        return CANCELLED
    return FAILED

"""How fast this machine runs a fixed piece of Python right now: a canary for comparisons that
can't be interleaved.

The shared 2-core VM drifts: within one 35-minute stretch the bare sandbox went from 108.7 to
83.7 runs/s with nothing else running, and a Python service's CPU per execution by 20 % (docs/
decisions.md, "Tracing's cost, seventh pass"). A comparison whose two sides run minutes apart
(history_growth's empty and seeded stores: seeding and removing a million documents can't be
interleaved) then measures the machine as much as the change. The canary is CPU time, not
wall time, so it ignores being descheduled and shows what makes the same work cost more CPU:
a neighbour on the other hyperthread, a lower clock, colder caches.

``canary_ms()`` times a fixed loop of dict, string and integer work (what a Python service
does between its system calls), best of ``repeat`` runs, in this process's CPU time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


def _work(n: int) -> int:
    counts: dict[str, int] = {}
    total = 0
    for i in range(n):
        key = f"key-{i % 97}"
        counts[key] = counts.get(key, 0) + i
        total += len(key) + (i * 7) % 13
    return total + len(counts)


def canary_ms(
    repeat: int = 5, n: int = 200_000, clock: Callable[[], float] = time.process_time
) -> float:
    """The least CPU time, in ms, of ``repeat`` runs of the fixed loop (~35 ms each here)."""
    best = math.inf
    for _ in range(max(repeat, 1)):
        start = clock()
        _work(n)
        best = min(best, (clock() - start) * 1000)
    return best

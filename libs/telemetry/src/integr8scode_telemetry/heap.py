"""The heap a service built at start-up leaves the garbage collector's scans.

Every request, message and span allocates short-lived containers, and every so often those
allocations trigger a full collection that walks every tracked object in the process: the
settings, clients, caches, compiled schemas and imported modules a service made at start-up and
keeps until it stops. ``gc.freeze()`` moves them to the permanent generation, so those scans
cover only what was made since. Measured in docs/decisions.md ("The start-up heap is frozen").
"""

from __future__ import annotations

import gc


def freeze_start_up_heap() -> None:
    """Collect once (start-up's own garbage is not kept forever), then freeze what is left."""
    gc.collect()
    gc.freeze()

"""The heap a service built at start-up leaves the garbage collector's scans, and how often the
collector looks at what is made after it.

Every request, message and span allocates short-lived containers, and every so often those
allocations trigger a full collection that walks every tracked object in the process: the
settings, clients, caches, compiled schemas and imported modules a service made at start-up and
keeps until it stops. ``gc.freeze()`` moves them to the permanent generation, so those scans
cover only what was made since. Measured in docs/decisions.md ("The start-up heap is frozen").

The youngest generation is collected every ``gc_young_threshold`` allocations of tracked
objects (CPython's default is 700). A request or a message allocates hundreds of them, nearly
all freed by reference counting, so at the default the collector runs every few messages and
promotes whatever is alive at that instant (futures, spans, records in flight) into the older
generations, whose scans then cost the more. A larger threshold lets those die young first:
docs/decisions.md ("Tracing's cost, seventh pass") has the figures. What waits longer for a
collection is only garbage in reference cycles, at most the threshold's worth of objects.
"""

from __future__ import annotations

import gc

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HeapSettings(BaseSettings):
    """The garbage collector's setting for a serving process (composed into each service's
    settings as ``heap``)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    gc_young_threshold: int = Field(
        default=10_000,
        ge=100,
        le=1_000_000,
        validation_alias=AliasChoices("INTEGR8SCODE_GC_YOUNG_THRESHOLD", "gc_young_threshold"),
        description="Allocations of tracked objects between two collections of the youngest "
        "generation, set once start-up is frozen (CPython's default: 700).",
    )


def freeze_start_up_heap(young_threshold: int | None = None) -> None:
    """Collect once (start-up's own garbage is not kept forever), then freeze what is left;
    with ``young_threshold``, collect the youngest generation that often from now on (the
    older generations' thresholds are kept)."""
    gc.collect()
    gc.freeze()
    if young_threshold is not None:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(young_threshold, older, oldest)

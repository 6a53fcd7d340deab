"""How many sessions may run at once in one instance."""

from __future__ import annotations


class Slots:
    """How many sessions may run at once in this instance (a paused session keeps its slot)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = size

    def try_acquire(self) -> bool:
        if self._free <= 0:
            return False
        self._free -= 1
        return True

    def release(self) -> None:
        self._free = min(self.size, self._free + 1)

    @property
    def in_use(self) -> int:
        return self.size - self._free

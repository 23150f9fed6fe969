"""The seed's behaviour: a counter in this process's memory (development only)."""

from __future__ import annotations

import threading


class MemoryCounter:
    """Unique within one process only: it restarts at 1 and repeats across processes."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def reserve(self, count: int) -> range:
        with self._lock:
            first = self._last + 1
            self._last += count
            return range(first, self._last + 1)

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None

"""What the allocator needs from a counter store, and the errors a store may raise."""

from __future__ import annotations

from typing import Protocol


class StoreUnavailable(Exception):
    """The counter store could not be reached or did not answer in time."""


class Counter(Protocol):
    def reserve(self, count: int) -> range:
        """Move the counter forward by `count` and return the numbers now owned by the caller."""
        ...

    def check(self) -> None:
        """Return when the store answers; raise StoreUnavailable when it does not."""
        ...

    def close(self) -> None: ...

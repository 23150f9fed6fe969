"""One way to wait: poll a condition until it holds or a deadline passes (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T], timeout: float, what: str = "the condition", interval: float = 0.05
) -> T:
    """The first truthy result of `check()`; TimeoutError naming `what` (and the last result
    or error) when none came within `timeout` seconds. Exceptions of `check` count as "not yet"
    (OSError: connection refused while a process starts) until the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
        except OSError as error:
            result, last = None, error  # type: ignore[assignment]
        else:
            if result:
                return result
            last = result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout:g}s (last: {last!r})")
        time.sleep(interval)

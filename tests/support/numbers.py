"""The one duplicate check: the numbers handed out more than once, and how often."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def find_duplicates(numbers: Iterable[int]) -> dict[int, int]:
    """number -> times seen, for every number seen more than once."""
    return {n: times for n, times in Counter(numbers).items() if times > 1}

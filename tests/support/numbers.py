"""The one duplicate check: the numbers handed out more than once, and how often; and the one
reading of how many numbers a service says it handed out (its /metrics page)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

ISSUED_TOTAL = re.compile(r"^hashstack_numbers_issued_total (\S+)$", re.MULTILINE)


def find_duplicates(numbers: Iterable[int]) -> dict[int, int]:
    """number -> times seen, for every number seen more than once."""
    return {n: times for n, times in Counter(numbers).items() if times > 1}


def issued_total(metrics_text: str) -> float | None:
    """hashstack_numbers_issued_total from a /metrics page; None when the page has no such line
    (each caller decides whether that is 0 or a failure)."""
    found = ISSUED_TOTAL.search(metrics_text)
    return float(found.group(1)) if found else None

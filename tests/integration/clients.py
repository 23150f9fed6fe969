"""Concurrent HTTP callers for the integration tests: many threads, one keep-alive pool each."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import urllib3

from tests.support.numbers import find_duplicates


@dataclass
class Results:
    numbers: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0

    def duplicates(self) -> list[int]:
        return sorted(find_duplicates(self.numbers))


def number_of(body: bytes) -> int:
    data = json.loads(body)["data"]
    return int(data["number"] if isinstance(data, dict) else data)


def hammer(urls: list[str], total: int, clients: int, timeout: float = 5.0) -> Results:
    """GET the urls round-robin from `clients` threads until `total` answers are in."""
    results = Results()
    lock = threading.Lock()
    remaining = iter(range(total))

    def worker(offset: int) -> None:
        pool = urllib3.PoolManager(maxsize=2, retries=False, timeout=timeout)
        while True:
            with lock:
                index = next(remaining, None)
            if index is None:
                return
            url = urls[(index + offset) % len(urls)]
            started = time.monotonic()
            try:
                response = pool.request("GET", url)
                outcome: int | str = (
                    number_of(response.data)
                    if response.status == 200
                    else f"HTTP {response.status}"
                )
                if isinstance(outcome, str) and not response.headers.get(
                    "Content-Type", ""
                ).startswith("application/json"):
                    outcome += " (not JSON)"
            except urllib3.exceptions.HTTPError as error:
                outcome = type(error).__name__
            elapsed = time.monotonic() - started
            with lock:
                results.slowest = max(results.slowest, elapsed)
                if isinstance(outcome, int):
                    results.numbers.append(outcome)
                else:
                    results.errors[outcome] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results

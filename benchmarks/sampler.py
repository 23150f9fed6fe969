"""Bodies wrk throws away: a second, light client reads numbers during a wrk run.

It opens a new connection per request so that, with SO_REUSEPORT, its requests land on every
worker, and it paces itself (about 50 req/s) so that it hardly takes from what wrk measures.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from typing import Self


def number_in(body: bytes) -> int:
    """The number in persistence's {"data": N} or hash's {"data": {"number": N, ...}}."""
    data = json.loads(body)["data"]
    return int(data["number"] if isinstance(data, dict) else data)


class Background:
    """A daemon thread that runs `_run` for as long as the `with` block; `_stop` ends it."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError


class BodySampler(Background):
    def __init__(self, port: int, interval: float = 0.02) -> None:
        super().__init__()
        self.port = port
        self.interval = interval
        self.numbers: list[int] = []
        self.problems: Counter[str] = Counter()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                body = response.read()
                if response.status == 200:
                    self.numbers.append(number_in(body))
                else:
                    self.problems[f"HTTP {response.status}"] += 1
            except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
                self.problems[type(error).__name__] += 1
            finally:
                connection.close()


def repeated(numbers: list[int]) -> list[int]:
    return sorted(n for n, times in Counter(numbers).items() if times > 1)

"""Constant load for the fault suite: every answer kept with its time, so each injected fault
can be matched with what the callers saw around it."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import urllib3

from tests.support.numbers import find_duplicates
from tests.support.wait import wait_until

LIMIT = 10.0  # the client gives up here; the suite's own bound on a request is much lower


@dataclass(frozen=True)
class Answer:
    started: float  # time.monotonic()
    elapsed: float
    status: int | None  # None: no HTTP answer at all (the reason is in `kind`)
    kind: str  # "ok", "json 503", "json 502", or what was wrong
    number: int | None = None
    body: bytes = b""


def classify(status: int, content_type: str, body: bytes) -> tuple[str, int | None]:
    """("ok", number) for a good answer, ("json 50x", None) for an allowed error, else a
    description of what is wrong with it."""
    text = body.decode("utf-8", "replace")
    if "Traceback" in text or "<html" in text.lower():
        return f"HTTP {status} with a traceback or HTML page", None
    if not content_type.startswith("application/json"):
        return f"HTTP {status} not JSON ({content_type or 'no content type'})", None
    try:
        document = json.loads(body)
    except ValueError:
        return f"HTTP {status} unparsable JSON", None
    if status == 200:
        try:
            return "ok", int(document["data"]["number"])
        except (KeyError, TypeError, ValueError):
            return "HTTP 200 without a number", None
    if status in (502, 503) and isinstance(document, dict) and document.get("error"):
        return f"json {status}", None
    return f"HTTP {status}", None


@dataclass
class Load:
    """`callers` threads GET `url` over keep-alive connections, pausing `pause` s between calls."""

    url: str
    callers: int = 4
    pause: float = 0.005
    answers: list[Answer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._call) for _ in range(self.callers)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _call(self) -> None:
        pool = urllib3.PoolManager(maxsize=1, retries=False, timeout=LIMIT)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = pool.request("GET", self.url)
                kind, number = classify(
                    response.status, response.headers.get("Content-Type", ""), response.data
                )
                answer = Answer(
                    started,
                    time.monotonic() - started,
                    response.status,
                    kind,
                    number,
                    b"" if number else response.data[:300],
                )
            except urllib3.exceptions.HTTPError as error:
                answer = Answer(
                    started, time.monotonic() - started, None, f"no answer: {type(error).__name__}"
                )
            with self._lock:
                self.answers.append(answer)
            self._stop.wait(self.pause)

    def between(self, start: float, end: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if start <= a.started < end]

    def first_ok_after(self, moment: float) -> float | None:
        """Seconds from `moment` until an answer started after it came back good."""
        with self._lock:
            done = [a.started + a.elapsed for a in self.answers if a.started >= moment and a.number]
        return min(done) - moment if done else None

    def duplicates(self) -> list[int]:
        with self._lock:
            numbers = [a.number for a in self.answers if a.number is not None]
        return sorted(find_duplicates(numbers))

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Until `count` more good answers arrived (the load is really flowing)."""
        target = self.good() + count
        wait_until(lambda: self.good() >= target, timeout, f"{count} more good answers")

    def good(self) -> int:
        with self._lock:
            return sum(1 for a in self.answers if a.number)

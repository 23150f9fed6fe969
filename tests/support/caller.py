"""A client that calls one URL every few milliseconds in the background and keeps every call
that failed (refused, reset, timed out, not 200): for "no request failed meanwhile"."""

from __future__ import annotations

import threading

import requests


class Caller(threading.Thread):
    def __init__(self, url: str, interval: float = 0.01, timeout: float = 5) -> None:
        super().__init__(daemon=True)
        self.url, self.interval, self.timeout = url, interval, timeout
        self.calls = 0
        self.failures: list[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stopped.is_set():
                try:
                    answer = session.get(self.url, timeout=self.timeout)
                    if answer.status_code != 200:
                        self.failures.append(f"HTTP {answer.status_code}")
                except requests.RequestException as error:
                    self.failures.append(f"{type(error).__name__}: {error}")
                self.calls += 1
                self.stopped.wait(self.interval)

    def __enter__(self) -> Caller:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.join()

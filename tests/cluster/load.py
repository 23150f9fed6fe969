"""Constant load through hash while something changes: `with under_load(...) as run:`."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .helpers import Ledger, Measurement
from .kube import HashClient

# Failed calls a zero-downtime step may have; the goal, and the default, is none.
MAX_FAILED = int(os.environ.get("HASHSTACK_E2E_MAX_FAILED", "0"))


@contextmanager
def under_load(
    client: HashClient, ledger: Ledger, what: str, threads: int = 4, warmup: int = 20
) -> Iterator[Measurement]:
    """`threads` callers hammer hash from before the block (after `warmup` good calls) until
    after it; the summary line (calls, failed, slowest) is printed for the job log."""
    run = Measurement(what, ledger)
    stop = threading.Event()
    lock = threading.Lock()

    def caller() -> None:
        while not stop.is_set():
            start = time.monotonic()
            status, number = client.call()
            with lock:
                run.record(status, number, time.monotonic() - start)

    workers = [threading.Thread(target=caller, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 120
        while run.calls - run.failed < warmup and time.monotonic() < deadline:
            time.sleep(0.2)
        yield run
        # A few more seconds of load: the last old pods end after the rollout reports done.
        time.sleep(5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        print(f"\n{run.summary()}")

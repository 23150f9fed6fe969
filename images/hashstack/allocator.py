"""Hands out numbers one by one from blocks reserved in the counter store.

One store transaction reserves a whole block, so a block size of 100 costs one round trip to
etcd per 100 numbers. When half of a block is handed out, the next block is reserved in the
background, so no request waits for etcd while the store is healthy. Numbers reserved but not
handed out before the process stopped are never used: a gap in the sequence (at most two blocks
per process), never a repeat. Block size 1 reserves one number per request and nothing ahead:
a dense global sequence at one transaction per number.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from . import metrics, tracing
from .counter import Counter, StoreUnavailable


class BlockAllocator:
    def __init__(self, counter: Counter, block_size: int, prefetch: bool | None = None) -> None:
        if block_size < 1:
            raise ValueError("block_size must be at least 1")
        self._counter = counter
        self._block_size = block_size
        # Reserving ahead would leave a gap on every restart: not for the dense sequence.
        self._prefetch = block_size > 1 if prefetch is None else prefetch
        self._block: range = range(0)
        self._position = 0
        self._next: Future[range] | None = None
        self._executor: ThreadPoolExecutor | None = None
        # One lock per process: threads queue here instead of racing each other in etcd.
        self._lock = threading.Lock()

    def next_number(self) -> int:
        with self._lock:
            if self._position >= len(self._block):
                # Raises StoreUnavailable and keeps the old (empty) block when the store fails.
                self._block = self._take_next_block()
                self._position = 0
            number = self._block[self._position]
            self._position += 1
            if self._prefetch and self._next is None and self._position * 2 >= len(self._block):
                self._next = self._reserve_in_background()
            return number

    def _take_next_block(self) -> range:
        pending, self._next = self._next, None
        # A background reservation has its own deadline; its error is raised here.
        try:
            block = self._reserve() if pending is None else pending.result()
        except StoreUnavailable:
            metrics.BLOCK_RESERVATIONS_FAILED.inc()
            raise
        metrics.BLOCKS_RESERVED.inc()
        return block

    def _reserve_in_background(self) -> Future[range]:
        if self._executor is None:
            # Created on first use, so in the gunicorn worker and never before a fork.
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reserve")
        # The reservation's span is a child of the request that started it.
        return self._executor.submit(tracing.in_current_context(self._reserve))

    def _reserve(self) -> range:
        with tracing.span("reserve block", {"hashstack.block_size": self._block_size}):
            return self._counter.reserve(self._block_size)

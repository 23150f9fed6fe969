"""Hands out numbers one by one from blocks reserved in the counter store.

One store transaction reserves a whole block, so a block size of 100 costs one round trip to
etcd per 100 numbers. Numbers of a block that was reserved but not handed out before the process
stopped are never used: a gap in the sequence, never a repeat. Block size 1 gives a dense
global sequence at one transaction per number.
"""

from __future__ import annotations

import threading

from . import metrics
from .counter import Counter


class BlockAllocator:
    def __init__(self, counter: Counter, block_size: int) -> None:
        if block_size < 1:
            raise ValueError("block_size must be at least 1")
        self._counter = counter
        self._block_size = block_size
        self._block: range = range(0)
        self._position = 0
        # One lock per process: threads queue here instead of racing each other in etcd.
        self._lock = threading.Lock()

    def next_number(self) -> int:
        with self._lock:
            if self._position >= len(self._block):
                # Raises StoreUnavailable and keeps the old (empty) block when the store fails.
                self._block = self._counter.reserve(self._block_size)
                self._position = 0
                metrics.BLOCKS_RESERVED.inc()
            number = self._block[self._position]
            self._position += 1
            return number

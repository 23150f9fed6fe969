"""The allocator alone: numbers per second straight from BlockAllocator + EtcdCounter, no HTTP.

Shaped like persistence's default deployment: 2 processes (gunicorn workers) of 4 threads each,
all taking numbers from one counter key in the real etcd, so block size 1 pays one contended
compare-and-swap per number and the configured block size one per block.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from dataclasses import dataclass

PROCESSES = 2
THREADS = 4


@dataclass(frozen=True)
class AllocatorResult:
    block_size: int
    numbers: int
    seconds: float
    duplicates: int

    @property
    def per_second(self) -> float:
        return self.numbers / self.seconds


def _take_numbers(endpoint: str, key: str, block_size: int, start_at: float, seconds: float):  # type: ignore[no-untyped-def]
    # Runs in a fresh (spawned) process: gRPC channels must not cross a fork.
    from hashstack.allocator import BlockAllocator
    from hashstack.etcd_counter import EtcdCounter

    counter = EtcdCounter((endpoint,), key, timeout=5.0)
    allocator = BlockAllocator(counter, block_size)
    counter.check()  # connect before the clock starts
    taken: list[list[int]] = [[] for _ in range(THREADS)]
    errors = 0
    lock = threading.Lock()

    window = [float("inf"), 0.0]  # first start and last end any thread saw (time.time())

    def take(into: list[int]) -> None:
        nonlocal errors
        time.sleep(max(0.0, start_at - time.time()))
        began = time.time()
        stop_at = start_at + seconds
        while time.time() < stop_at:
            try:
                into.append(allocator.next_number())
            except Exception:  # StoreUnavailable under contention past the timeout
                with lock:
                    errors += 1
        ended = time.time()  # the last call may end well after stop_at under contention
        with lock:
            window[0], window[1] = min(window[0], began), max(window[1], ended)

    threads = [threading.Thread(target=take, args=(numbers,)) for numbers in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counter.close()
    return [n for numbers in taken for n in numbers], errors, (window[0], window[1])


def measure_allocator(endpoint: str, block_size: int, seconds: float, run: int) -> AllocatorResult:
    key = f"/hashstack-bench/allocator/{block_size}/{run}/{time.time_ns()}"
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 1.5  # spawned interpreters need about a second to import
    with context.Pool(PROCESSES) as pool:
        outcomes = pool.starmap(
            _take_numbers, [(endpoint, key, block_size, start_at, seconds)] * PROCESSES
        )
    numbers = [n for taken, _, _ in outcomes for n in taken]
    errors = sum(errors for _, errors, _ in outcomes)
    # The measured window: from the first process's start to the last one's end, not the plan.
    measured = max(end for _, _, (_, end) in outcomes) - min(b for _, _, (b, _) in outcomes)
    if errors:
        raise RuntimeError(f"the allocator failed {errors} times at block size {block_size}")
    repeated = sum(1 for times in Counter(numbers).values() if times > 1)
    return AllocatorResult(block_size, len(numbers), measured, repeated)

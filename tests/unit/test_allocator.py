from __future__ import annotations

import threading

import pytest

from hashstack.allocator import BlockAllocator
from hashstack.counter import StoreUnavailable
from hashstack.memory_counter import MemoryCounter
from tests.support.wait import wait_until


class FlakyCounter(MemoryCounter):
    """A real memory counter that refuses to reserve while `down` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.reservations = 0

    def reserve(self, count: int) -> range:
        if self.down:
            raise StoreUnavailable("store down")
        self.reservations += 1
        return super().reserve(count)


def test_hands_out_a_dense_sequence_from_blocks() -> None:
    counter = FlakyCounter()
    allocator = BlockAllocator(counter, block_size=10, prefetch=False)
    assert [allocator.next_number() for _ in range(25)] == list(range(1, 26))
    assert counter.reservations == 3


def test_block_size_one_reserves_per_number() -> None:
    counter = FlakyCounter()
    allocator = BlockAllocator(counter, block_size=1)
    assert [allocator.next_number() for _ in range(5)] == [1, 2, 3, 4, 5]
    assert counter.reservations == 5


def test_threads_never_get_the_same_number() -> None:
    allocator = BlockAllocator(MemoryCounter(), block_size=7)
    seen: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [allocator.next_number() for _ in range(500)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8000
    assert sorted(seen) == list(range(1, 8001))


def test_finishes_its_block_then_fails_then_recovers() -> None:
    counter = FlakyCounter()
    allocator = BlockAllocator(counter, block_size=3, prefetch=False)
    assert allocator.next_number() == 1
    counter.down = True
    assert [allocator.next_number(), allocator.next_number()] == [2, 3]
    with pytest.raises(StoreUnavailable):
        allocator.next_number()
    with pytest.raises(StoreUnavailable):
        allocator.next_number()
    counter.down = False
    assert allocator.next_number() == 4


def test_rejects_a_block_size_below_one() -> None:
    with pytest.raises(ValueError, match="block_size"):
        BlockAllocator(MemoryCounter(), block_size=0)


def test_reserves_the_next_block_ahead_at_half_a_block() -> None:
    counter = FlakyCounter()
    allocator = BlockAllocator(counter, block_size=10)
    assert [allocator.next_number() for _ in range(4)] == [1, 2, 3, 4]
    assert counter.reservations == 1
    assert allocator.next_number() == 5  # half the block gone: the next one is on its way
    wait_until(lambda: counter.reservations == 2, 10, "the block reserved ahead")
    counter.down = True  # the block reserved ahead still serves
    assert [allocator.next_number() for _ in range(15)] == list(range(6, 21))
    with pytest.raises(StoreUnavailable):
        allocator.next_number()
    counter.down = False
    assert allocator.next_number() > 20


def test_block_size_one_never_reserves_ahead() -> None:
    counter = FlakyCounter()
    allocator = BlockAllocator(counter, block_size=1)
    assert [allocator.next_number() for _ in range(3)] == [1, 2, 3]
    assert counter.reservations == 3
    # Nothing was scheduled in the background, so nothing can reserve later either.
    assert allocator._next is None
    assert allocator._executor is None

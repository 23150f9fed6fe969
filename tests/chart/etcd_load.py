"""Continuous load on the etcd counter through the project's real allocator, and the checks
the scaling scenarios end with: no number twice, one cluster ID, a counter that never goes
back. Each client thread stands for one persistence process (its own EtcdCounter and
BlockAllocator), all of them talking to every member as persistence talks to the Service.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

from hashstack.allocator import BlockAllocator
from hashstack.counter import StoreUnavailable
from hashstack.etcd_counter import EtcdCounter
from tests.support.numbers import find_duplicates

from .etcd_cluster import StatefulSet

KEY = "/hashstack/counter"


@dataclass
class Phase:
    """What the clients saw during one change (e.g. "1 -> 3")."""

    name: str
    answers: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass
class Load:
    cluster: StatefulSet
    clients: int = 4
    block_size: int = 10
    numbers: list[list[int]] = field(default_factory=list)
    counter_samples: list[int] = field(default_factory=list)
    cluster_ids: set[str] = field(default_factory=set)
    phases: list[Phase] = field(default_factory=list)
    # False when the block ends in an outage: no final read of the counter then.
    settled_at_end: bool = True

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors = [0] * self.clients
        self.numbers = [[] for _ in range(self.clients)]
        self._phase_start = (0, 0, time.monotonic())

    def start(self) -> None:
        endpoints = tuple(self.cluster.client_url(p) for p in self.cluster.pods)
        for i in range(self.clients):
            counter = EtcdCounter(endpoints, KEY, timeout=2.0)
            allocator = BlockAllocator(counter, self.block_size)
            self._threads.append(threading.Thread(target=self._take, args=(i, allocator)))
        self._threads.append(threading.Thread(target=self._watch))
        for thread in self._threads:
            thread.start()

    def _take(self, index: int, allocator: BlockAllocator) -> None:
        while not self._stop.is_set():
            try:
                self.numbers[index].append(allocator.next_number())
            except StoreUnavailable:
                self._errors[index] += 1
                time.sleep(0.05)

    def _watch(self) -> None:
        while not self._stop.wait(0.3):
            self.cluster_ids |= self.cluster.cluster_ids()
            value = self.cluster.read(KEY)
            if value is not None:
                self.counter_samples.append(value)

    def answers(self) -> int:
        return sum(len(n) for n in self.numbers)

    def errors(self) -> int:
        return sum(self._errors)

    def mark(self, name: str) -> Phase:
        """Closes the phase running since the last mark under `name`."""
        answers, errors, since = self._phase_start
        phase = Phase(name, self.answers() - answers, self.errors() - errors)
        phase.seconds = round(time.monotonic() - since, 1)
        self.phases.append(phase)
        self._phase_start = (self.answers(), self.errors(), time.monotonic())
        return phase

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def __enter__(self) -> Load:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """Stops the clients; when the block went through, checks every promise and prints
        what each phase saw (a failure inside the block is reported as it is)."""
        self.stop()
        if exc_type is None:
            self.check()
            print(self.summary())

    def check(self) -> None:
        """Every promise at once; the message says what broke."""
        taken = [n for per_client in self.numbers for n in per_client]
        repeated = find_duplicates(taken)
        assert not repeated, f"{len(repeated)} numbers handed out twice, e.g. {list(repeated)[:5]}"
        assert len(self.cluster_ids) == 1, f"cluster IDs seen: {self.cluster_ids}"
        drops = [(a, b) for a, b in itertools.pairwise(self.counter_samples) if b < a]
        assert not drops, f"the counter went back: {drops[:5]}"
        assert taken
        if self.settled_at_end:
            final = self.cluster.read(KEY)
            assert final is not None
            assert max(taken) <= final
        for per_client in self.numbers:  # each client's numbers only grow
            assert all(a < b for a, b in itertools.pairwise(per_client))

    def summary(self) -> str:
        rows = [
            f"{p.name}: {p.answers} answers, {p.errors} errors, {p.seconds}s" for p in self.phases
        ]
        return "; ".join(rows) + f"; total {self.answers()} answers, 0 duplicates"

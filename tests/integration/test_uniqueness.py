"""Numbers are never handed out twice: across threads, workers, processes and restarts."""

from __future__ import annotations

from localstack import http_get, wait_until_answers
from tests.support.numbers import find_duplicates, issued_total

from .clients import hammer

# These tests are about numbers, not latency: 10 s for each etcd call instead of the 2 s default,
# so that a loaded 2-core machine stalling etcd's compare-and-swap under 32 callers does not
# turn into a JSON 503 here (timeouts are the fault suite's subject).
PATIENT = {"REQUEST_TIMEOUT": "10"}


def ready(*processes):  # type: ignore[no-untyped-def]
    """Ready, not only alive: each persistence answers /readyz (it reaches etcd)."""
    for process in processes:
        wait_until_answers(f"{process.url}/readyz", 30)
    return list(processes)


def ready_pair(etcd, start_service, **env: str):  # type: ignore[no-untyped-def]
    """Two persistence processes on the one etcd counter, each answering /readyz."""
    return ready(
        *(
            start_service("persistence", ETCD_ENDPOINTS=etcd.client_url, **PATIENT, **env)
            for _ in range(2)
        )
    )


def issued_in(metrics_text: str) -> float:
    issued = issued_total(metrics_text)
    assert issued is not None, metrics_text[:500]
    return issued


def test_two_processes_of_four_workers_never_repeat(etcd, start_service) -> None:
    processes = ready_pair(etcd, start_service, WEB_CONCURRENCY="4", THREADS="4", BLOCK_SIZE="50")
    results = hammer([f"{p.url}/" for p in processes], total=5000, clients=32)
    assert dict(results.errors) == {}
    assert len(results.numbers) == 5000
    assert results.duplicates() == []
    assert min(results.numbers) >= 1
    # Several workers wrote the metric; the scrape must add them all up.
    issued = sum(issued_in(http_get(f"{p.url}/metrics")[1].decode()) for p in processes)
    assert issued == 5000


def test_block_size_one_gives_a_dense_sequence(etcd, start_service) -> None:
    processes = ready_pair(etcd, start_service, WEB_CONCURRENCY="2", BLOCK_SIZE="1")
    results = hammer([f"{p.url}/" for p in processes], total=600, clients=8)
    assert dict(results.errors) == {}
    assert sorted(results.numbers) == list(range(1, 601))


def test_restarts_of_persistence_and_etcd_only_move_forward(etcd, start_service) -> None:
    # Right after etcd's restart a first call may still get a JSON 503 (allowed, and the fault
    # suite's subject): ready_pair hammers only once both answer /readyz.
    def start_pair():  # type: ignore[no-untyped-def]
        return ready_pair(etcd, start_service, WEB_CONCURRENCY="2", BLOCK_SIZE="20")

    first = start_pair()
    before = hammer([f"{p.url}/" for p in first], total=400, clients=8)
    for process in first:
        process.stop()
    etcd.stop()
    etcd.start()  # same data dir
    second = start_pair()
    after = hammer([f"{p.url}/" for p in second], total=400, clients=8)
    assert dict(before.errors) == {}
    assert dict(after.errors) == {}
    assert min(after.numbers) > max(before.numbers)
    assert before.numbers + after.numbers
    assert not find_duplicates(before.numbers + after.numbers)

"""A dead dependency gives a JSON 503 within the timeout, and the service recovers by itself."""

from __future__ import annotations

import json
import signal
import time

from localstack import held_port, http_get, wait_until_answers

from .clients import hammer


def get_json(url: str, timeout: float = 5.0) -> tuple[int, dict, float]:  # type: ignore[type-arg]
    started = time.monotonic()
    status, body, headers = http_get(url, timeout=timeout)
    assert headers.get("Content-Type", "").startswith("application/json"), (status, body)
    return status, json.loads(body), time.monotonic() - started


def test_etcd_down_finish_block_then_503_then_recover(etcd, start_service) -> None:
    persistence = start_service(
        "persistence",
        ETCD_ENDPOINTS=etcd.client_url,
        WEB_CONCURRENCY="1",
        BLOCK_SIZE="5",
        REQUEST_TIMEOUT="1",
    )
    assert get_json(f"{persistence.url}/")[1] == {"data": 1}  # reserves 1..5
    etcd.stop()
    # The block already held is still handed out: numbers, not errors, and no repeats.
    assert [get_json(f"{persistence.url}/")[1]["data"] for _ in range(4)] == [2, 3, 4, 5]
    status, body, elapsed = get_json(f"{persistence.url}/")
    assert status == 503
    assert "etcd unavailable" in body["error"]
    assert elapsed < 1.5
    ready_status, ready_body, _ = get_json(f"{persistence.url}/readyz")
    assert ready_status == 503
    assert "not ready" in ready_body["error"]

    etcd.start()
    back = time.monotonic()
    wait_until_answers(f"{persistence.url}/readyz", timeout=5)
    status, body, _ = get_json(f"{persistence.url}/")
    assert status == 200
    assert body["data"] > 5
    assert time.monotonic() - back < 5


def test_hash_answers_503_when_persistence_is_down_or_hung(etcd, start_service) -> None:
    persistence = start_service("persistence", ETCD_ENDPOINTS=etcd.client_url)
    hashing = start_service("hash", PERSISTENCE_URL=persistence.url, REQUEST_TIMEOUT="1")
    assert get_json(f"{hashing.url}/")[0] == 200

    persistence.signal(signal.SIGSTOP)  # hung: accepts connections, never answers
    try:
        status, body, elapsed = get_json(f"{hashing.url}/")
        assert status == 503
        assert "did not answer in time" in body["error"]
        assert elapsed < 2.0
    finally:
        persistence.signal(signal.SIGCONT)

    persistence.stop()
    status, body, elapsed = get_json(f"{hashing.url}/")
    assert status == 503
    assert "persistence unreachable" in body["error"]
    assert elapsed < 1.5
    assert get_json(f"{hashing.url}/readyz")[0] == 503


def test_a_dead_first_etcd_endpoint_is_skipped(etcd, start_service) -> None:
    dead = f"http://127.0.0.1:{held_port()}"
    persistence = start_service(
        "persistence", ETCD_ENDPOINTS=f"{dead},{etcd.client_url}", BLOCK_SIZE="1"
    )
    results = hammer([f"{persistence.url}/"] * 1, total=50, clients=4)
    assert dict(results.errors) == {}
    assert sorted(results.numbers) == list(range(1, 51))


def test_losing_one_member_of_three_keeps_numbers_coming(etcd_trio, start_service) -> None:
    endpoints = ",".join(member.client_url for member in etcd_trio)
    persistence = start_service("persistence", ETCD_ENDPOINTS=endpoints, BLOCK_SIZE="1")
    first = hammer([f"{persistence.url}/"], total=50, clients=4)
    etcd_trio[0].kill()
    # If it was the leader, the other two elect a new one first (503s meanwhile are fair).
    for member in etcd_trio[1:]:
        member.wait_healthy(timeout=10)
    second = hammer([f"{persistence.url}/"], total=50, clients=4)
    assert dict(first.errors) == {}
    assert dict(second.errors) == {}
    assert sorted(first.numbers + second.numbers) == list(range(1, 101))

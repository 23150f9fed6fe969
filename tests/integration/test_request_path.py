"""hash -> persistence -> etcd, end to end through real processes."""

from __future__ import annotations

import hashlib
import json
import signal
import threading

from localstack import http_get
from tests.support.net import unread_bytes_to
from tests.support.wait import wait_until


def test_hash_answers_number_and_independent_sha256(etcd, start_service) -> None:
    persistence = start_service("persistence", ETCD_ENDPOINTS=etcd.client_url)
    hashing = start_service("hash", PERSISTENCE_URL=persistence.url)
    seen = []
    for _ in range(20):
        status, body, _ = http_get(f"{hashing.url}/")
        assert status == 200
        data = json.loads(body)["data"]
        assert set(data) == {"number", "hash"}
        assert data["hash"] == hashlib.sha256(str(data["number"]).encode("ascii")).hexdigest()
        seen.append(data["number"])
    assert len(set(seen)) == 20


def test_request_id_is_echoed_and_logged_by_persistence(etcd, start_service) -> None:
    persistence = start_service("persistence", ETCD_ENDPOINTS=etcd.client_url)
    hashing = start_service("hash", PERSISTENCE_URL=persistence.url)
    _, _, headers = http_get(f"{hashing.url}/", headers={"X-Request-ID": "req-from-test-42"})
    assert headers["X-Request-ID"] == "req-from-test-42"

    def logged() -> list[dict[str, object]]:
        lines = [json.loads(ln) for ln in persistence.log_text().splitlines() if ln.startswith("{")]
        return [line for line in lines if line.get("request_id") == "req-from-test-42"]

    access = wait_until(logged, 10, "persistence logging the request id")
    assert access[0]["path"] == "/"
    assert access[0]["status"] == 200
    assert access[0]["logger"] == "hashstack.access"


def test_sigterm_lets_in_flight_requests_finish(etcd, start_service) -> None:
    persistence = start_service("persistence", ETCD_ENDPOINTS=etcd.client_url)
    hashing = start_service("hash", PERSISTENCE_URL=persistence.url, REQUEST_TIMEOUT="10")
    persistence.signal(signal.SIGSTOP)  # hash's request now waits on persistence
    answers: list[tuple[int, bytes]] = []
    caller = threading.Thread(
        target=lambda: answers.append(http_get(f"{hashing.url}/", timeout=15)[:2])
    )
    caller.start()
    # In flight, provably: hash's call sits unread in the stopped persistence's socket.
    wait_until(lambda: unread_bytes_to(persistence.port), 10, "hash's call reaching persistence")
    hashing.signal(signal.SIGTERM)  # shutdown begins while the request is in flight
    # gunicorn's master logs the signal before its workers start their graceful exit.
    wait_until(lambda: "Handling signal: term" in hashing.log_text(), 10, "hash's SIGTERM")
    assert caller.is_alive(), "the request finished before shutdown began"
    persistence.signal(signal.SIGCONT)
    caller.join(15)
    assert len(answers) == 1
    assert answers[0][0] == 200, answers
    assert json.loads(answers[0][1])["data"]["number"] >= 1
    assert hashing.process is not None
    assert hashing.process.wait(15) == 0

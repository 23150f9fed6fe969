"""hash -> persistence -> etcd, end to end through real processes."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time

from localstack import http_get


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
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [
            json.loads(line) for line in persistence.log_text().splitlines() if line.startswith("{")
        ]
        access = [line for line in lines if line.get("request_id") == "req-from-test-42"]
        if access:
            break
        time.sleep(0.1)
    assert access, "persistence never logged the request id"
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
    time.sleep(0.5)
    hashing.signal(signal.SIGTERM)  # shutdown begins while the request is in flight
    time.sleep(0.5)
    persistence.signal(signal.SIGCONT)
    caller.join(15)
    assert len(answers) == 1
    assert answers[0][0] == 200, answers
    assert json.loads(answers[0][1])["data"]["number"] >= 1
    assert hashing.process is not None
    assert hashing.process.wait(15) == 0

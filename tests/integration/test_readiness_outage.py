"""Readiness under an etcd outage, as a caller of hash sees it: JSON 503s with no connection
error while etcd is gone, numbers again soon after it returns. hash's /readyz asks
persistence's /healthz (liveness), not its /readyz, so an etcd outage keeps hash in its
Service answering 503 instead of removing it (callers would get connection errors) and
does not cascade; docs/readiness.md says why."""

from __future__ import annotations

import json
import time

from localstack import http_get

from .clients import hammer

OUTAGE_SECONDS = 5.0


def test_etcd_outage_gives_hash_callers_json_503_then_recovery(etcd, start_service) -> None:
    persistence = start_service(
        "persistence", ETCD_ENDPOINTS=etcd.client_url, BLOCK_SIZE="1", REQUEST_TIMEOUT="1"
    )
    hashing = start_service("hash", PERSISTENCE_URL=persistence.url, REQUEST_TIMEOUT="2")
    before = hammer([f"{hashing.url}/"], total=20, clients=2)
    assert dict(before.errors) == {}

    etcd.stop()
    statuses: list[int] = []
    deadline = time.monotonic() + OUTAGE_SECONDS
    while time.monotonic() < deadline:
        # http_get raises on a connection error: the test fails on the first one.
        status, body, headers = http_get(f"{hashing.url}/", timeout=5)
        statuses.append(status)
        assert headers["Content-Type"].startswith("application/json"), (status, body)
        if status != 200:
            assert status == 503, body
            assert headers.get("Retry-After") == "1"
            assert json.loads(body)["error"].startswith("persistence answered 503"), body
        time.sleep(0.05)
    assert statuses.count(503) >= len(statuses) - 1, statuses  # one may finish a block
    # Readiness during the outage: persistence out of its Service, hash still in it.
    assert http_get(f"{persistence.url}/readyz")[0] == 503
    assert http_get(f"{hashing.url}/readyz")[0] == 200
    assert http_get(f"{persistence.url}/healthz")[0] == 200

    etcd.start()
    back = time.monotonic()
    while time.monotonic() - back < 15:
        status, _, _ = http_get(f"{hashing.url}/", timeout=5)
        if status == 200:
            break
        time.sleep(0.1)
    recovered_after = time.monotonic() - back
    assert status == 200, "hash did not recover within 15 s of etcd's return"
    after = hammer([f"{hashing.url}/"], total=20, clients=2)
    assert dict(after.errors) == {}
    numbers = before.numbers + after.numbers
    assert len(set(numbers)) == len(numbers), "a number was handed out twice"
    print(
        f"{statuses.count(503)} of {len(statuses)} answers during the {OUTAGE_SECONDS:.0f} s"
        f" outage were JSON 503s; hash answered again {recovered_after:.2f} s after etcd returned"
    )

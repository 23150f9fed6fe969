"""Every route and error path of the three apps, through Flask's test client."""

from __future__ import annotations

import hashlib
import json
import socket
import time

import pytest
from flask import Flask

from hashstack import hash as hash_service
from hashstack import hello, persistence
from hashstack.config import Settings
from hashstack.etcd_counter import EtcdCounter
from hashstack.memory_counter import MemoryCounter
from hashstack.persistence_client import BoundedResolver, PersistenceClient, PersistenceError


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def persistence_app() -> Flask:
    return persistence.create_app(Settings(store="memory", block_size=5), counter=MemoryCounter())


def test_hello_says_hello_world() -> None:
    response = hello.create_app().test_client().get("/")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    assert response.get_data(as_text=True) == "Hello, World!"


def test_persistence_counts_from_one(persistence_app: Flask) -> None:
    client = persistence_app.test_client()
    answers = [client.get("/").get_json() for _ in range(12)]
    assert answers == [{"data": n} for n in range(1, 13)]


def test_persistence_answers_503_json_when_etcd_is_unreachable() -> None:
    settings = Settings(request_timeout=1.0)
    counter = EtcdCounter((f"http://127.0.0.1:{closed_port()}",), "/k", timeout=1.0)
    client = persistence.create_app(settings, counter=counter).test_client()
    response = client.get("/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "etcd unavailable" in response.get_json()["error"]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "not ready" in ready.get_json()["error"]


@pytest.mark.parametrize("service", ["hello", "persistence", "hash"])
def test_health_metrics_and_json_errors_on_every_service(service: str) -> None:
    apps = {
        "hello": hello.create_app,
        "persistence": lambda: persistence.create_app(Settings(), counter=MemoryCounter()),
        "hash": lambda: hash_service.create_app(Settings()),
    }
    client = apps[service]().test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert b"hashstack_http_requests_total" in metrics.data
    for method, path, status in [
        ("GET", "/nowhere", 404),
        ("POST", "/", 405),
        ("DELETE", "/", 405),
    ]:
        response = client.open(path, method=method)
        assert response.status_code == status
        assert response.is_json, response.data
        assert str(status) in response.get_json()["error"]
        assert b"<html" not in response.data.lower()
        assert b"Traceback" not in response.data


def test_request_id_is_kept_when_valid_and_replaced_when_not() -> None:
    client = hello.create_app().test_client()
    assert client.get("/", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    for bad in ["x" * 300, "has space", "semi;colon", ""]:
        echoed = client.get("/", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert echoed != bad
        assert len(echoed) == 32


def test_hash_returns_the_number_and_its_sha256(serve) -> None:  # type: ignore[no-untyped-def]
    upstream = serve(persistence.create_app(Settings(), counter=MemoryCounter()))
    client = hash_service.create_app(Settings(persistence_url=upstream.url)).test_client()
    for expected in (1, 2, 3):
        body = client.get("/").get_json()
        assert body == {
            "data": {"number": expected, "hash": hashlib.sha256(str(expected).encode()).hexdigest()}
        }
    assert client.get("/readyz").status_code == 200


def test_hash_answers_503_when_persistence_is_unreachable() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    client = hash_service.create_app(Settings(persistence_url=url, request_timeout=1)).test_client()
    response = client.get("/")
    assert response.status_code == 503
    assert "persistence unreachable" in response.get_json()["error"]
    assert client.get("/readyz").status_code == 503


@pytest.mark.parametrize(
    ("status", "body", "expected_status", "expected_error"),
    [
        (200, b"not json", 502, "not {'data': N}"),
        (200, b'{"data": "seven"}', 502, "bad number"),
        (200, b'{"data": 0}', 502, "bad number"),
        (200, b'{"other": 1}', 502, "not {'data': N}"),
        (500, b'{"error": "boom"}', 502, "boom"),
        (503, b'{"error": "etcd unavailable"}', 503, "etcd unavailable"),
    ],
)
def test_hash_names_the_cause_of_a_bad_persistence_answer(  # type: ignore[no-untyped-def]
    serve, status: int, body: bytes, expected_status: int, expected_error: str
) -> None:
    fake_persistence = Flask("bad-persistence")
    fake_persistence.add_url_rule("/", "root", lambda: (body, status))
    upstream = serve(fake_persistence)
    client = hash_service.create_app(Settings(persistence_url=upstream.url)).test_client()
    response = client.get("/")
    assert response.status_code == expected_status
    assert expected_error in response.get_json()["error"]


def test_hash_passes_the_request_id_to_persistence(serve) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    upstream_app = Flask("recording-persistence")

    @upstream_app.get("/")
    def record():  # type: ignore[no-untyped-def]
        from flask import request

        seen.append(request.headers.get("X-Request-ID", ""))
        return json.dumps({"data": 41}), 200, {"Content-Type": "application/json"}

    upstream = serve(upstream_app)
    client = hash_service.create_app(Settings(persistence_url=upstream.url)).test_client()
    response = client.get("/", headers={"X-Request-ID": "trace-me-7"})
    assert response.headers["X-Request-ID"] == "trace-me-7"
    assert seen == ["trace-me-7"]


def test_hash_gives_up_on_a_hung_name_lookup_within_its_timeout() -> None:
    # A DNS server that never answers cannot be staged on loopback: a lookup that sleeps
    # stands in for glibc waiting on it.
    def hung_lookup(*_args: object, **_kwargs: object) -> list[object]:
        time.sleep(5)
        return []

    client = PersistenceClient(
        "http://persistence.invalid:8081", timeout=0.5, resolver=BoundedResolver(hung_lookup)
    )
    started = time.monotonic()
    expected = r"resolving persistence\.invalid took over"
    with pytest.raises(PersistenceError, match=expected) as error:
        client.next_number("req-1")
    assert error.value.status == 503
    assert time.monotonic() - started < 1.0


def test_hash_looks_names_up_and_keeps_the_host_header(serve) -> None:  # type: ignore[no-untyped-def]
    hosts: list[str] = []
    upstream_app = Flask("host-recording-persistence")

    @upstream_app.get("/")
    def record():  # type: ignore[no-untyped-def]
        from flask import request

        hosts.append(request.host)
        return {"data": 5}

    upstream = serve(upstream_app)
    port = upstream.url.rsplit(":", 1)[1]
    client = PersistenceClient(f"http://localhost:{port}", timeout=2)
    assert client.next_number("req-2") == 5
    assert hosts == [f"localhost:{port}"]


def test_hash_tries_every_address_of_a_name(serve) -> None:  # type: ignore[no-untyped-def]
    upstream = serve(persistence.create_app(Settings(), counter=MemoryCounter()))
    port = int(upstream.url.rsplit(":", 1)[1])
    lookups: list[str] = []

    def two_addresses(host: str, lookup_port: int, **_: object) -> list[tuple[object, ...]]:
        # 127.0.0.2 has nothing on the port (refused), 127.0.0.1 serves: a replica that died.
        lookups.append(host)
        return [(0, 0, 0, "", (address, lookup_port)) for address in ("127.0.0.2", "127.0.0.1")]

    resolver = BoundedResolver(two_addresses, fresh_for=0)  # a lookup on every connection
    assert resolver.addresses("persistence.test", port, 1) == ["127.0.0.2", "127.0.0.1"]
    assert resolver.addresses("persistence.test", port, 1) == ["127.0.0.1", "127.0.0.2"]
    # Whichever address comes first, a new connection ends up at the one that answers.
    for _ in range(2):
        client = PersistenceClient(f"http://persistence.test:{port}", timeout=2, resolver=resolver)
        assert client.next_number("req") >= 1
    assert lookups == ["persistence.test"] * 4

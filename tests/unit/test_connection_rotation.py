"""hash's pooled connections to persistence have a bounded life, and each new one starts at the
next address of persistence's name: calls spread over every replica, and a new one is found."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hashstack.persistence_client import BoundedResolver, PersistenceClient, PooledConnection
from tests.support.wait import wait_until


class Replica:
    """A persistence stand-in on one loopback address that records each caller's port
    (http.server, because werkzeug's test server closes every connection)."""

    def __init__(self, address: str, port: int = 0) -> None:
        self.callers: list[int] = []  # the client port of each call: one per connection
        # Set: each call waits until that many calls are in, then the server closes their
        # connections after answering without saying so (as gunicorn's keep-alive timeout does).
        self.together: threading.Barrier | None = None
        replica = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive

            def do_GET(self) -> None:
                replica.callers.append(self.client_address[1])
                body = json.dumps({"data": len(replica.callers)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if replica.together is not None:
                    replica.together.wait(timeout=5)
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replicas() -> Iterator[Callable[..., Replica]]:
    started: list[Replica] = []

    def start(address: str, port: int = 0) -> Replica:
        started.append(Replica(address, port))
        return started[-1]

    yield start
    for replica in started:
        replica.close()


def resolver_of(addresses: list[str], fresh_for: float = 0) -> BoundedResolver:
    """A name whose addresses are whatever `addresses` holds at lookup time (like DNS)."""

    def lookup(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        return [(0, 0, 0, "", (address, port)) for address in list(addresses)]

    return BoundedResolver(lookup, fresh_for=fresh_for)


def test_a_connection_carries_at_most_max_uses_calls(replicas) -> None:  # type: ignore[no-untyped-def]
    replica = replicas("127.0.0.1")
    client = PersistenceClient(
        f"http://127.0.0.1:{replica.port}", timeout=2, pool_size=1, max_uses=3, max_age=60
    )
    for _ in range(10):
        client.next_number("req")
    per_connection = Counter(replica.callers)
    assert sorted(per_connection.values()) == [1, 3, 3, 3], per_connection


def test_an_unbounded_pool_keeps_one_connection(replicas) -> None:  # type: ignore[no-untyped-def]
    replica = replicas("127.0.0.1")
    client = PersistenceClient(
        f"http://127.0.0.1:{replica.port}", timeout=2, pool_size=1, max_uses=10**9, max_age=60
    )
    for _ in range(10):
        client.next_number("req")
    assert len(set(replica.callers)) == 1


def test_a_connection_older_than_max_age_is_replaced(replicas) -> None:  # type: ignore[no-untyped-def]
    replica = replicas("127.0.0.1")
    client = PersistenceClient(
        f"http://127.0.0.1:{replica.port}", timeout=2, pool_size=1, max_uses=1000, max_age=0.3
    )
    client.next_number("req")
    client.next_number("req")
    time.sleep(0.4)
    client.next_number("req")
    assert [len(set(replica.callers[:2])), len(set(replica.callers))] == [1, 2]


def test_calls_spread_over_every_address_and_reach_a_new_one(replicas) -> None:  # type: ignore[no-untyped-def]
    first = replicas("127.0.0.1")
    second = replicas("127.0.0.2", first.port)  # a second replica of the same name and port
    addresses = ["127.0.0.1"]
    client = PersistenceClient(
        f"http://persistence.test:{first.port}",
        timeout=2,
        pool_size=1,
        resolver=resolver_of(addresses),
        max_uses=5,
        max_age=60,
    )
    for _ in range(10):
        client.next_number("req")
    assert (len(first.callers), len(second.callers)) == (10, 0)

    addresses.append("127.0.0.2")  # scale-out: the name now has two addresses
    for _ in range(40):
        client.next_number("req")
    # Connections of 5 calls alternate between the two addresses: 20 calls each.
    assert (len(first.callers) - 10, len(second.callers)) == (20, 20)


def test_connections_the_server_closed_while_idle_are_not_used(replicas) -> None:  # type: ignore[no-untyped-def]
    replica = replicas("127.0.0.1")
    replica.together = threading.Barrier(2)
    client = PersistenceClient(
        f"http://127.0.0.1:{replica.port}", timeout=2, pool_size=2, max_uses=1000, max_age=60
    )
    with ThreadPoolExecutor(2) as pool:  # two calls at once: two pooled connections
        list(pool.map(lambda _: client.next_number("req"), range(2)))
    replica.together = None
    wait_until(lambda: _idle_connections_closed(client), timeout=5, what="server-side close")
    # Both pooled connections are closed at the server: a client that sent on them would
    # fail its first try and its retry alike.
    assert [client.next_number("req") for _ in range(2)] == [3, 4]
    assert len(set(replica.callers)) == 3  # two closed connections, then one new


def _idle_connections_closed(client: PersistenceClient) -> bool:
    idle = client._pool._idle  # what the pool holds is what this test is about
    return len(idle) == 2 and all(connection.dropped() for connection in idle)


def test_dropped_tells_an_open_idle_connection_from_a_closed_one() -> None:
    ours, theirs = socket.socketpair()
    connection = PooledConnection("persistence", 8080, BoundedResolver())
    connection.sock = ours
    assert not connection.dropped()
    theirs.sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")  # bytes nobody asked for
    assert connection.dropped()
    theirs.close()
    assert connection.dropped()
    ours.close()


def test_a_known_name_is_looked_up_again_in_the_background_only() -> None:
    answers = [["10.0.0.1"]]
    lookups: list[float] = []
    hung = threading.Event()

    def lookup(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        lookups.append(time.monotonic())
        if hung.is_set():
            time.sleep(3)  # a DNS server that stopped answering
            raise OSError("timed out")
        return [(0, 0, 0, "", (address, port)) for address in answers[-1]]

    resolver = BoundedResolver(lookup, fresh_for=0.2)
    assert resolver.addresses("persistence", 80, 1) == ["10.0.0.1"]
    for _ in range(50):  # fresh: no lookup at all
        resolver.addresses("persistence", 80, 1)
    assert len(lookups) == 1

    answers.append(["10.0.0.1", "10.0.0.2"])  # a second replica
    time.sleep(0.25)
    resolver.addresses("persistence", 80, 1)  # stale: answered at once, refreshed behind it
    wait_until(lambda: len(lookups) == 2, timeout=2, what="the background lookup")
    seen = wait_until(
        lambda: set(resolver.addresses("persistence", 80, 1)) == {"10.0.0.1", "10.0.0.2"},
        timeout=2,
        what="the new address",
    )
    assert seen

    hung.set()
    time.sleep(0.25)
    started = time.monotonic()
    for _ in range(20):  # DNS hangs: calls keep the last answer and never wait for it
        assert set(resolver.addresses("persistence", 80, 0.5)) == {"10.0.0.1", "10.0.0.2"}
    assert time.monotonic() - started < 0.1
    wait_until(lambda: len(lookups) == 3, timeout=2, what="the hung background lookup")
    for _ in range(20):
        resolver.addresses("persistence", 80, 0.5)
    assert len(lookups) == 3  # one refresh at a time, not one per call

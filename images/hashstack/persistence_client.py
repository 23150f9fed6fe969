"""hash's client for persistence: a keep-alive pool, a deadline, one retry on connection errors.

Pooled connections have a bounded life (MAX_REQUESTS_PER_CONNECTION, MAX_CONNECTION_AGE): each
new one looks persistence's name up again and starts at the next address, so calls spread over
every replica (a headless Service gives one address per ready pod; a ClusterIP Service balances
each new connection) and over the gunicorn workers of each (SO_REUSEPORT hashes each new
connection), and a new replica gets its share within seconds. docs/scaling.md has the figures.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from . import metrics
from .config import host_port

# Errors raised before persistence could have handed out a number: safe to try once more.
_CONNECTION_ERRORS = (NewConnectionError, ProtocolError)

# A pooled connection is closed after this many calls or seconds, whichever comes first, and the
# next call connects anew. Measured (docs/scaling.md): at 20 calls persistence's two workers
# split 51-52/48 under hash's load (100 calls: up to 62/38; unbounded: up to 99/1), and one
# connect per 20 calls keeps nearly all of keep-alive's gain. 3 s bounds how long a new replica
# waits for traffic at low load, and stays below gunicorn's 5 s keep-alive, so the client never
# reuses a connection the server is about to close.
MAX_REQUESTS_PER_CONNECTION = 20
MAX_CONNECTION_AGE = 3.0


class PersistenceError(Exception):
    """persistence failed; `status` is what hash answers (502 bad answer, 503 unavailable)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


Lookup = Callable[..., list[Any]]  # socket.getaddrinfo's signature


class BoundedResolver:
    """Name lookups that give up at the caller's deadline.

    glibc waits seconds for each DNS server that does not answer (a DNS server restarting is
    enough), and getaddrinfo cannot be interrupted: the lookup runs in a small thread pool
    and the request stops waiting for it when its time is up.
    """

    def __init__(self, lookup: Lookup = socket.getaddrinfo) -> None:
        self._lookup = lookup
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="resolve")
        self._turn = itertools.count()

    def addresses(self, host: str, port: int, timeout: float | None) -> list[str]:
        """Every address of `host`, starting at a different one each call (like DNS round
        robin), so new connections spread over the replicas behind a name."""
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        lookup = self._executor.submit(self._lookup, host, port, type=socket.SOCK_STREAM)
        try:
            found = lookup.result(timeout)
        except LookupTimeout:
            raise NewConnectionError(None, f"resolving {host} took over {timeout:.1f}s") from None  # type: ignore[arg-type]
        except OSError as error:
            raise NewConnectionError(None, f"cannot resolve {host}: {error}") from None  # type: ignore[arg-type]
        unique = list(dict.fromkeys(str(info[4][0]) for info in found))
        start = next(self._turn) % len(unique)
        return unique[start:] + unique[:start]


class CountedConnection(HTTPConnection):
    """A connection that knows how many calls its socket carried and since when it is open."""

    uses = 0
    connected_at = 0.0  # time.monotonic()

    def expired(self, max_uses: int, max_age: float) -> bool:
        if self.sock is None:
            return False
        return self.uses >= max_uses or time.monotonic() - self.connected_at >= max_age

    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)  # connects first when the socket was closed
        self.uses += 1

    def _new_conn(self) -> socket.socket:
        self.uses, self.connected_at = 0, time.monotonic()
        return super()._new_conn()


def _connection_class(resolver: BoundedResolver) -> type[CountedConnection]:
    class BoundedLookupConnection(CountedConnection):
        # urllib3 connects to _dns_host and sends `Host: host`: connect to each looked-up
        # address in turn instead, each with an equal share of the time left.
        def _new_conn(self) -> socket.socket:
            self.uses, self.connected_at = 0, time.monotonic()
            name, timeout = self._dns_host, self.timeout
            deadline = None if timeout is None else time.monotonic() + timeout
            addresses = resolver.addresses(name, self.port, timeout)
            failure: Exception | None = None
            try:
                for index, address in enumerate(addresses):
                    if deadline is not None:
                        self.timeout = (deadline - time.monotonic()) / (len(addresses) - index)
                    self._dns_host = address
                    try:
                        return super()._new_conn()
                    except ConnectTimeoutError as error:  # NewConnectionError is one too
                        failure = error
            finally:
                self._dns_host, self.timeout = name, timeout
            assert failure is not None
            raise failure

    return BoundedLookupConnection


class RotatingPool(urllib3.HTTPConnectionPool):
    """A keep-alive pool whose connections are closed (and made anew on their next call) after
    `max_uses` calls or `max_age` seconds."""

    max_uses = MAX_REQUESTS_PER_CONNECTION
    max_age = MAX_CONNECTION_AGE

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        if isinstance(conn, CountedConnection) and conn.expired(self.max_uses, self.max_age):
            conn.close()  # the call below connects again: a fresh lookup, the next address
        return conn


class PersistenceClient:
    def __init__(
        self,
        base_url: str,
        timeout: float,
        pool_size: int = 8,
        resolver: BoundedResolver | None = None,
        max_uses: int = MAX_REQUESTS_PER_CONNECTION,
        max_age: float = MAX_CONNECTION_AGE,
    ) -> None:
        self._timeout = timeout
        host, port = host_port(base_url, 80)
        self._pool = RotatingPool(host, port, maxsize=pool_size, block=False, retries=False)
        self._pool.ConnectionCls = _connection_class(resolver or BoundedResolver())
        self._pool.max_uses, self._pool.max_age = max_uses, max_age

    def next_number(self, request_id: str) -> int:
        response = self._get("/", request_id)
        if response.status == 200:
            return _number_from(response.data)
        cause = _error_from(response.data) or f"HTTP {response.status}"
        # persistence said it is unavailable (etcd down): so are we. Anything else is a bad answer.
        status = 503 if response.status == 503 else 502
        metrics.UPSTREAM_ERRORS.labels("persistence", f"http_{response.status}").inc()
        raise PersistenceError(f"persistence answered {response.status}: {cause}", status)

    def check(self, request_id: str) -> None:
        response = self._get("/healthz", request_id)
        if response.status != 200:
            raise PersistenceError(f"persistence /healthz answered {response.status}", 503)

    def _get(self, path: str, request_id: str) -> urllib3.BaseHTTPResponse:
        headers = {"X-Request-ID": request_id, "Accept": "application/json"}
        # One deadline for the lookup, the connection, the retry and the answer.
        deadline = time.monotonic() + self._timeout
        failure: Exception | None = None
        for _attempt in (1, 2):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return self._pool.urlopen(
                    "GET", path, headers=headers, timeout=urllib3.Timeout(total=remaining)
                )
            except _CONNECTION_ERRORS as error:  # before ConnectTimeoutError: its subclass
                failure = error  # nothing was sent yet: try once more, within the deadline
            except (ReadTimeoutError, ConnectTimeoutError):
                metrics.UPSTREAM_ERRORS.labels("persistence", "timeout").inc()
                raise PersistenceError("persistence did not answer in time", 503) from None
            except HTTPError as error:
                metrics.UPSTREAM_ERRORS.labels("persistence", "http_error").inc()
                raise PersistenceError(f"persistence call failed: {_reason(error)}", 503) from None
        metrics.UPSTREAM_ERRORS.labels("persistence", "unreachable").inc()
        reason = _reason(failure) if failure else "no time left to connect"
        raise PersistenceError(f"persistence unreachable: {reason}", 503)


def _number_from(body: bytes) -> int:
    try:
        number = json.loads(body)["data"]
    except (ValueError, KeyError, TypeError):
        raise PersistenceError(
            "persistence answered something that is not {'data': N}", 502
        ) from None
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise PersistenceError(f"persistence answered a bad number: {number!r}", 502)
    return number


def _error_from(body: bytes) -> str | None:
    try:
        message = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    return str(message) if message else None


def _reason(error: Exception) -> str:
    # urllib3 wraps the socket error; its innermost reason reads best ("Connection refused").
    reason: object = getattr(error, "reason", None) or error
    while getattr(reason, "reason", None) is not None:
        reason = getattr(reason, "reason")  # noqa: B009
    text = str(reason)
    return text.split(": ", 1)[-1] if "object at 0x" in text else text

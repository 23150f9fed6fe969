"""hash's client for persistence: a keep-alive pool, a deadline, one retry on connection errors.

Pooled connections have a bounded life (PERSISTENCE_MAX_CALLS_PER_CONNECTION and
PERSISTENCE_MAX_CONNECTION_AGE in hashstack.config): each new one starts at the next address
of persistence's name (looked up again at most once a second, in the background), so calls
spread over every replica (a headless Service gives one address per ready pod; a ClusterIP
Service balances each new connection) and over the gunicorn workers of each (SO_REUSEPORT
hashes each new connection), and a new replica gets its share within seconds. docs/scaling.md
has the figures.
"""

from __future__ import annotations

import http.client
import ipaddress
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout
from dataclasses import dataclass
from typing import Any, NoReturn

from . import metrics, tracing
from .config import Settings, host_port


class PersistenceError(Exception):
    """persistence failed; `status` is what hash answers (502 bad answer, 503 unavailable)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ConnectFailed(Exception):
    """No connection was made, so nothing was sent: safe to try again. `timed_out`: every
    address let the time run out (an unreachable network), rather than refusing."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


Lookup = Callable[..., list[Any]]  # socket.getaddrinfo's signature


# How long the addresses of a name are used before it is looked up again, in the background:
# a new connection never waits for DNS once the name was resolved, and a DNS server that is
# slow or restarting costs no request while the last answer is known. 1 s: a new persistence
# pod gets calls about a second after its DNS record appears.
ADDRESSES_FRESH_FOR = 1.0


@dataclass
class _Known:
    addresses: list[str]
    looked_up_at: float  # time.monotonic()
    refreshing: bool = False


class BoundedResolver:
    """Name lookups that give up at the caller's deadline, and answers kept for `fresh_for`
    seconds (0: look up on every call).

    glibc waits seconds for each DNS server that does not answer (a DNS server restarting is
    enough), and getaddrinfo cannot be interrupted: the lookup runs in a small thread pool
    and the request stops waiting for it when its time is up. Only the first lookup of a
    name is waited for; later ones refresh the known answer in the background.
    """

    def __init__(
        self, lookup: Lookup = socket.getaddrinfo, fresh_for: float = ADDRESSES_FRESH_FOR
    ) -> None:
        self._lookup = lookup
        self._fresh_for = fresh_for
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="resolve")
        self._turn = itertools.count()
        self._known: dict[tuple[str, int], _Known] = {}
        self._lock = threading.Lock()

    def addresses(self, host: str, port: int, timeout: float | None) -> list[str]:
        """Every address of `host`, starting at a different one each call (like DNS round
        robin), so new connections spread over the replicas behind a name."""
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        known = self._known.get((host, port))
        if known is None:
            found = self._wait_for_lookup(host, port, timeout)
        else:
            found = known.addresses
            if time.monotonic() - known.looked_up_at >= self._fresh_for:
                self._refresh(host, port, known)
        start = next(self._turn) % len(found)
        return found[start:] + found[:start]

    def _wait_for_lookup(self, host: str, port: int, timeout: float | None) -> list[str]:
        lookup = self._executor.submit(self._look_up, host, port)
        try:
            return lookup.result(timeout)
        except LookupTimeout:
            raise ConnectFailed(f"resolving {host} took over {timeout:.1f}s") from None
        except OSError as error:
            raise ConnectFailed(f"cannot resolve {host}: {error}") from None

    def _look_up(self, host: str, port: int) -> list[str]:
        found = self._lookup(host, port, type=socket.SOCK_STREAM)
        unique = list(dict.fromkeys(str(info[4][0]) for info in found))
        if not unique:
            raise OSError("no address")
        if self._fresh_for > 0:
            with self._lock:
                self._known[(host, port)] = _Known(unique, time.monotonic())
        return unique

    def _refresh(self, host: str, port: int, known: _Known) -> None:
        with self._lock:
            if known.refreshing:
                return
            known.refreshing = True

        def refresh() -> None:
            try:
                self._look_up(host, port)  # replaces `known`
            except Exception:  # whatever failed: keep the last answer
                with self._lock:
                    known.looked_up_at, known.refreshing = time.monotonic(), False

        self._executor.submit(refresh)


class PooledConnection(http.client.HTTPConnection):
    """A keep-alive connection that knows how many calls it carried and since when it is open,
    and connects to each looked-up address of its host in turn (the Host header keeps the name).
    """

    def __init__(self, host: str, port: int, resolver: BoundedResolver) -> None:
        super().__init__(host, port)
        self._resolver = resolver
        self.uses = 0
        self.connected_at = 0.0  # time.monotonic()

    def expired(self, max_uses: int, max_age: float) -> bool:
        return self.uses >= max_uses or time.monotonic() - self.connected_at >= max_age

    def dropped(self) -> bool:
        """Whether the server closed this idle connection (gunicorn's keep-alive ran out, or
        the replica went away): readable with nothing to read, or with bytes nobody asked for."""
        assert self.sock is not None
        self.sock.setblocking(False)  # a socket with a timeout would wait for data first
        try:
            self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False  # nothing to read: still open
        except OSError:
            pass
        return True

    def connect_before(self, deadline: float) -> None:
        """Connect, giving each address an equal share of the time left."""
        addresses = self._resolver.addresses(self.host, self.port, deadline - time.monotonic())
        failures: list[str] = []
        timed_out = 0
        for index, address in enumerate(addresses):
            share = (deadline - time.monotonic()) / (len(addresses) - index)
            if share <= 0:
                break
            try:
                sock = socket.create_connection((address, self.port), timeout=share)
            except TimeoutError:
                timed_out += 1
                failures.append(f"{address}: timed out")
                continue
            except OSError as error:
                failures.append(f"{address}: {error.strerror or error}")
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            self.uses, self.connected_at = 0, time.monotonic()
            return
        reason = "; ".join(failures) or "no time left to connect"
        raise ConnectFailed(f"cannot connect to {reason}", timed_out == len(addresses))


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class ConnectionPool:
    """Idle keep-alive connections to one host, most recently used first. A connection is
    closed after `max_uses` calls or `max_age` seconds and made anew on its next call, to the
    next address of the name. Not urllib3: its per-call bookkeeping cost hash about 7% of its
    throughput (docs/scaling.md)."""

    def __init__(
        self,
        host: str,
        port: int,
        size: int,
        resolver: BoundedResolver,
        max_uses: int,
        max_age: float,
    ) -> None:
        self._host, self._port, self._size, self._resolver = host, port, size, resolver
        self._max_uses, self._max_age = max_uses, max_age
        self._idle: list[PooledConnection] = []
        self._lock = threading.Lock()

    def get(self, path: str, headers: dict[str, str], deadline: float) -> Answer:
        """One GET. Raises ConnectFailed (nothing sent), ConnectionError (the connection broke
        before an answer: a stale keep-alive connection or a replica that went away),
        TimeoutError, or http.client.HTTPException."""
        connection = self._take()
        try:
            if connection.sock is None:
                connection.connect_before(deadline)
            connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            connection.request("GET", path, headers=headers)
            connection.uses += 1
            response = connection.getresponse()
            answer = Answer(response.status, response.read())
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        self._give_back(connection)
        return answer

    def _take(self) -> PooledConnection:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            return PooledConnection(self._host, self._port, self._resolver)
        if connection.sock is not None and (
            connection.expired(self._max_uses, self._max_age) or connection.dropped()
        ):
            connection.close()  # connects again on this call
        return connection

    def _give_back(self, connection: PooledConnection) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(connection)
                return
        connection.close()


class PersistenceClient:
    def __init__(
        self,
        base_url: str,
        timeout: float,
        pool_size: int = 8,
        resolver: BoundedResolver | None = None,
        max_uses: int = Settings.persistence_max_calls_per_connection,
        max_age: float = Settings.persistence_max_connection_age,
    ) -> None:
        self._timeout = timeout
        host, port = host_port(base_url, 80)
        self._pool = ConnectionPool(
            host, port, pool_size, resolver or BoundedResolver(), max_uses, max_age
        )

    def next_number(self, request_id: str) -> int:
        with tracing.span("GET persistence /", {"url.path": "/"}, client=True):
            answer = self._get("/", request_id)
        if answer.status == 200:
            return _number_from(answer.body)
        cause = _error_from(answer.body) or f"HTTP {answer.status}"
        # persistence said it is unavailable (etcd down): so are we. Anything else is a bad answer.
        status = 503 if answer.status == 503 else 502
        metrics.UPSTREAM_ERRORS.labels("persistence", f"http_{answer.status}").inc()
        raise PersistenceError(f"persistence answered {answer.status}: {cause}", status)

    def check(self, request_id: str) -> None:
        answer = self._get("/healthz", request_id)
        if answer.status != 200:
            raise PersistenceError(f"persistence /healthz answered {answer.status}", 503)

    def _get(self, path: str, request_id: str) -> Answer:
        headers = {"X-Request-ID": request_id, "Accept": "application/json"}
        tracing.inject(headers)
        # One deadline for the lookup, the connection, the retry and the answer.
        deadline = time.monotonic() + self._timeout
        failure = "no time left to connect"
        for _attempt in (1, 2):
            if deadline - time.monotonic() <= 0:
                break
            try:
                return self._pool.get(path, headers, deadline)
            except ConnectFailed as error:
                if error.timed_out:
                    return self._fail("timeout", "persistence did not answer in time")
                failure = str(error)  # nothing was sent yet: try once more, within the deadline
            except ConnectionError as error:
                # Broken before an answer came: at worst persistence handed out a number nobody
                # got (a gap, never a repeat). A stale pooled connection ends here too.
                failure = f"connection lost: {error.strerror or error}"
            except TimeoutError:
                return self._fail("timeout", "persistence did not answer in time")
            except (http.client.HTTPException, OSError) as error:
                return self._fail("http_error", f"persistence call failed: {error!r}")
        return self._fail("unreachable", f"persistence unreachable: {failure}")

    @staticmethod
    def _fail(cause: str, message: str) -> NoReturn:
        metrics.UPSTREAM_ERRORS.labels("persistence", cause).inc()
        raise PersistenceError(message, 503)


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

"""Latency at a fixed offered load, measured open-loop (the way wrk2 does; wrk2 is not in Debian).

wrk cannot hold a rate: a connection sends its next request only when the last answer is in, so
a slow server is simply asked less and its stalls never show in the percentiles ("coordinated
omission"). Here request i is due at start + i/rate whatever happened before; it goes out on an
idle keep-alive connection, or waits for one, and its latency counts from when it was DUE. A
server that falls behind therefore shows its full queueing delay.

One Python thread drives all connections with a selector. It costs about 1/20 of a core at
2,000 req/s, and it measures its own lateness (`generator_lag_ms`: how late a request went out
although a connection was free) so a run where the generator itself fell behind can be told
apart from a slow server.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

HEADER_END = b"\r\n\r\n"
Fail = Callable[["_Connection", str], None]


@dataclass
class OpenLoopResult:
    rate: float
    seconds: float
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, from when each was due
    generator_lag: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    bodies: list[bytes] = field(default_factory=list)  # every 200 answer's body when kept

    @property
    def achieved_rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values()) + sum(n for s, n in self.statuses.items() if s != 200)

    def percentile_ms(self, q: float, values: list[float] | None = None) -> float:
        data = sorted(self.latencies if values is None else values)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, int(q / 100 * len(data)))] * 1000

    def summary(self) -> dict[str, object]:
        return {
            "offered_rps": round(self.rate, 1),
            "achieved_rps": round(self.achieved_rate, 1),
            "measured": len(self.latencies),
            "p50_ms": round(self.percentile_ms(50), 3),
            "p90_ms": round(self.percentile_ms(90), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "max_ms": round(self.percentile_ms(100), 3),
            "generator_lag_p99_ms": round(self.percentile_ms(99, self.generator_lag), 3),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
        }


class _Connection:
    def __init__(self, address: tuple[str, int], request: bytes) -> None:
        self.address = address
        self.request = request
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.due = 0.0  # when the request in flight was due; 0.0 when idle

    def open(self) -> socket.socket:
        self.sock = socket.create_connection(self.address, timeout=2.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buffer.clear()
        self.due = 0.0

    def response(self) -> tuple[int, bytes, bool] | None:
        """(status, body, server closes) once a whole response is buffered, else None."""
        end = self.buffer.find(HEADER_END)
        if end < 0:
            return None
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return None
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        return status, body, headers.get("connection") == "close"


def run_open_loop(
    port: int,
    rate: float,
    seconds: float,
    *,
    path: str = "/",
    connections: int = 32,
    warmup: float = 1.0,
    timeout: float = 5.0,
    keep_bodies: bool = False,
) -> OpenLoopResult:
    """Offer `rate` req/s to 127.0.0.1:port for warmup + seconds; measure after the warm-up."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: hashstack-bench\r\n\r\n"
    ).encode()
    address = ("127.0.0.1", port)
    result = OpenLoopResult(rate=rate, seconds=seconds)
    selector = selectors.DefaultSelector()
    pool = [_Connection(address, request) for _ in range(connections)]
    idle: deque[_Connection] = deque()
    for connection in pool:
        selector.register(connection.open(), selectors.EVENT_READ, connection)
        idle.append(connection)

    total = int(rate * (warmup + seconds))
    start = time.perf_counter() + 0.05
    measured_from = start + warmup
    next_index = 0
    waiting: deque[float] = deque()  # due times of requests no connection was free for
    next_timeout_check = start

    def fail(connection: _Connection, reason: str) -> None:
        if connection.due >= measured_from:
            result.errors[reason] += 1
        if connection.sock is not None:
            selector.unregister(connection.sock)
        connection.close()
        try:
            selector.register(connection.open(), selectors.EVENT_READ, connection)
            idle.append(connection)
        except OSError:
            result.errors["connect"] += 1
            pool.remove(connection)

    while True:
        now = time.perf_counter()
        while next_index < total and start + next_index / rate <= now:
            due = start + next_index / rate
            next_index += 1
            if idle and not waiting:
                # A free connection and still late: the generator's own delay.
                if due >= measured_from:
                    result.generator_lag.append(now - due)
                _send(idle.popleft(), due, result, fail)
            else:
                waiting.append(due)
        while waiting and idle:
            _send(idle.popleft(), waiting.popleft(), result, fail)
        if next_index >= total and not waiting and not any(c.due for c in pool):
            break
        if not pool:
            raise RuntimeError(f"could not connect to 127.0.0.1:{port}")
        if now >= next_timeout_check:
            next_timeout_check = now + 0.1
            for connection in [c for c in pool if c.due and now - c.due > timeout]:
                fail(connection, "timeout")
        wake = start + next_index / rate - now if next_index < total else 0.05
        for key, _ in selector.select(max(0.0, min(wake, 0.05))):
            _receive(key.data, result, fail, keep_bodies, measured_from, selector, idle)
    selector.close()
    for connection in pool:
        connection.close()
    return result


def _send(connection: _Connection, due: float, result: OpenLoopResult, fail: Fail) -> None:
    connection.due = due
    result.sent += 1
    try:
        assert connection.sock is not None
        connection.sock.send(connection.request)  # ~80 bytes: fits any socket buffer at once
    except OSError:
        fail(connection, "send")


def _receive(
    connection: _Connection,
    result: OpenLoopResult,
    fail: Fail,
    keep_bodies: bool,
    measured_from: float,
    selector: selectors.BaseSelector,
    idle: deque[_Connection],
) -> None:
    assert connection.sock is not None
    try:
        chunk = connection.sock.recv(65536)
    except BlockingIOError:
        return
    except OSError:
        fail(connection, "read")
        return
    if not chunk:
        if connection.due:
            fail(connection, "closed")
        else:  # an idle keep-alive connection the server closed: open another
            selector.unregister(connection.sock)
            connection.close()
            idle.remove(connection)
            selector.register(connection.open(), selectors.EVENT_READ, connection)
            idle.append(connection)
        return
    connection.buffer += chunk
    answer = connection.response()
    if answer is None:
        return
    status, body, closing = answer
    done = time.perf_counter()
    if connection.due >= measured_from:
        result.latencies.append(done - connection.due)
        result.statuses[status] += 1
    if keep_bodies and status == 200:
        result.bodies.append(body)
    connection.due = 0.0
    if closing:
        selector.unregister(connection.sock)
        connection.close()
        selector.register(connection.open(), selectors.EVENT_READ, connection)
    idle.append(connection)

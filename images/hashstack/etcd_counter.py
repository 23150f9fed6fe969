"""The counter kept in etcd: it only moves forward, through compare-and-swap transactions."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

# etcd3 0.12's generated protobuf code is refused by protobuf >= 4's compiled (upb) backend.
# We keep current protobuf (security fixes, wheels for every Python) and select its pure-Python
# backend, which measured as fast as protobuf 3.20 here; pinning 3.20 would mean an unsupported
# release with no binary wheel for Python 3.11. Must happen before protobuf is first imported.
os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"

import etcd3
import etcd3.exceptions
import grpc

from . import metrics
from .config import host_port
from .counter import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

ETCD_ERRORS = (etcd3.exceptions.Etcd3Exception, grpc.RpcError)
# Reconnect quickly after etcd comes back; gRPC's default backoff grows to two minutes.
GRPC_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class CounterCorrupt(StoreUnavailable):
    """The counter key holds something other than a whole number."""


@dataclass(frozen=True)
class _Seen:
    exists: bool
    last: int


@dataclass(frozen=True)
class EtcdTLS:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


class EtcdCounter:
    """The last number handed out anywhere, stored under one key.

    reserve(n) moves it from `last` to `last + n` only if it still holds `last` (the value only
    ever grows, so an unchanged value means nobody moved it): two callers never get the same
    numbers, whatever the number of processes, replicas or restarts.
    """

    def __init__(
        self,
        endpoints: tuple[str, ...],
        key: str,
        timeout: float,
        tls: EtcdTLS | None = None,
    ) -> None:
        self._key = key
        self._timeout = timeout
        self._tls = tls or EtcdTLS()
        self._endpoints = endpoints
        self._clients: dict[str, etcd3.Etcd3Client] = {}
        self._current = 0
        self._lock = threading.Lock()
        # The value we last saw (None: the key did not exist); the next CAS tries it directly,
        # saving a read per block when this process is the only writer.
        self._seen: _Seen | None = None

    def reserve(self, count: int) -> range:
        deadline = time.monotonic() + self._timeout
        while True:
            seen = self._seen if self._seen is not None else self._with_failover(self._read)
            won, current = self._with_failover(partial(self._swap, seen=seen, count=count))
            self._seen = current
            if won:
                return range(seen.last + 1, seen.last + count + 1)
            metrics.COUNTER_CONFLICTS.inc()
            if time.monotonic() > deadline:
                raise StoreUnavailable("etcd: the counter stayed contended past the timeout")
            time.sleep(random.uniform(0, 0.002))  # de-synchronise competing processes

    def check(self) -> None:
        self._with_failover(self._read)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _read(self, client: etcd3.Etcd3Client) -> _Seen:
        value, _ = client.get(self._key)
        return _Seen(exists=value is not None, last=0 if value is None else self._parse(value))

    def _swap(self, client: etcd3.Etcd3Client, seen: _Seen, count: int) -> tuple[bool, _Seen]:
        txn = client.transactions
        unchanged = (
            txn.value(self._key) == str(seen.last) if seen.exists else (txn.version(self._key) == 0)
        )
        won, responses = client.transaction(
            compare=[unchanged],
            success=[txn.put(self._key, str(seen.last + count))],
            failure=[txn.get(self._key)],
        )
        if won:
            return True, _Seen(exists=True, last=seen.last + count)
        found = responses[0]
        if not found:
            return False, _Seen(exists=False, last=0)
        value, _ = found[0]
        return False, _Seen(exists=True, last=self._parse(value))

    def _parse(self, raw: bytes) -> int:
        try:
            return int(raw)
        except ValueError:
            raise CounterCorrupt(
                f"etcd: key {self._key} holds {raw[:40]!r}, not a number"
            ) from None

    def _with_failover(self, call: Callable[[etcd3.Etcd3Client], T]) -> T:
        # Try each endpoint once, starting with the one that answered last.
        errors: list[str] = []
        for attempt in range(len(self._endpoints)):
            index = (self._current + attempt) % len(self._endpoints)
            endpoint = self._endpoints[index]
            started = time.perf_counter()
            try:
                result = call(self._client(endpoint))
            except ETCD_ERRORS as error:
                metrics.ETCD_LATENCY.labels("error").observe(time.perf_counter() - started)
                errors.append(f"{endpoint}: {_describe(error)}")
                continue
            metrics.ETCD_LATENCY.labels("ok").observe(time.perf_counter() - started)
            self._current = index
            return result
        self._seen = None  # after a failure, read the key again rather than trust the cache
        raise StoreUnavailable("etcd unavailable (" + "; ".join(errors) + ")")

    def _client(self, endpoint: str) -> etcd3.Etcd3Client:
        with self._lock:
            client = self._clients.get(endpoint)
            if client is None:
                host, port = host_port(endpoint, 2379)
                client = etcd3.client(
                    host=host,
                    port=port,
                    timeout=self._timeout,
                    ca_cert=self._tls.ca_file,
                    cert_key=self._tls.key_file,
                    cert_cert=self._tls.cert_file,
                    grpc_options=GRPC_OPTIONS,
                )
                self._clients[endpoint] = client
            return client


def _describe(error: BaseException) -> str:
    if isinstance(error, etcd3.exceptions.ConnectionFailedError):
        return "connection failed"
    if isinstance(error, etcd3.exceptions.ConnectionTimeoutError):
        return "timed out"
    return type(error).__name__

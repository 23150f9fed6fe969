"""The processes the benchmark measures, started through ci/localstack.py (the same launcher as
`make up` and the tests): one etcd, and hello, persistence and hash under gunicorn."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "ci") not in sys.path:
    sys.path.insert(0, str(ROOT / "ci"))

from otlp_sink import OtlpSink  # noqa: E402

from localstack import (  # noqa: E402 (needs ci/ on the path first)
    EtcdMember,
    Service,
    etcd_cluster,
    free_port,
    wait_until_answers,
)

__all__ = ["BASELINE_CONFIG", "PROJECT_CONFIG", "ROOT", "BenchStack", "OtlpSink", "Target"]

PROJECT_CONFIG = "python:hashstack.gunicorn_conf"
BASELINE_CONFIG = "python:benchmarks.baseline_gunicorn"


@dataclass
class BenchService(Service):
    """A Service that may run another gunicorn config module (the pre-fix baseline)."""

    config: str = PROJECT_CONFIG

    def spawn(self, command: list[str], env: Mapping[str, str]) -> None:
        command = [self.config if part == PROJECT_CONFIG else part for part in command]
        super().spawn(command, {**env, "PYTHONPATH": str(ROOT)})


@dataclass
class Target:
    """What wrk calls; `upstream` is the persistence behind a hash; numbers from targets with
    the same `counter` must never repeat."""

    name: str
    label: str
    service: Service
    upstream: Service | None = None
    counter: str | None = None

    @property
    def url(self) -> str:
        return f"{self.service.url}/"


@dataclass
class BenchStack:
    base_dir: Path
    # Where hash-traced and its persistence export their spans (ci/otlp_sink.py).
    sink: OtlpSink
    etcd: EtcdMember = field(init=False)
    targets: dict[str, Target] = field(init=False)
    processes: list[Service] = field(init=False)

    def __post_init__(self) -> None:
        (self.etcd,) = etcd_cluster(self.base_dir / "etcd", size=1)
        on_etcd = {"ETCD_ENDPOINTS": self.etcd.client_url, "COUNTER_KEY": "/hashstack-bench/n"}
        hello = self._service("hello", "hello")
        persistence = self._service("persistence", "persistence", **on_etcd)
        persistence_1w = self._service(
            "persistence-1w", "persistence", WEB_CONCURRENCY="1", **on_etcd
        )
        persistence_memory = self._service("persistence-memory", "persistence", STORE="memory")
        traced = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": self.sink.endpoint}
        persistence_traced = self._service("persistence-traced", "persistence", **on_etcd, **traced)
        self.targets = {
            "hello": Target("hello", "hello", hello),
            "persistence": Target("persistence", "persistence (etcd)", persistence, None, "etcd"),
            "hash": Target(
                "hash", "hash (etcd)", self._hash("hash", persistence), persistence, "etcd"
            ),
            "hash-memory": Target(
                "hash-memory",
                "hash (memory store, 1 persistence worker)",
                self._hash("hash-memory", persistence_memory),
                persistence_memory,
                "memory",
            ),
            "hash-etcd-1w": Target(
                "hash-etcd-1w",
                "hash (etcd, 1 persistence worker)",
                self._hash("hash-etcd-1w", persistence_1w),
                persistence_1w,
                "etcd",
            ),
            "hash-traced": Target(
                "hash-traced",
                "hash (etcd, tracing on)",
                self._hash("hash-traced", persistence_traced, **traced),
                persistence_traced,
                "etcd",
            ),
        }
        upstreams = [persistence, persistence_1w, persistence_memory, persistence_traced]
        self.processes = [hello, *upstreams] + [
            t.service for t in self.targets.values() if t.name.startswith("hash")
        ]

    def _service(self, name: str, service: str, **env: str) -> BenchService:
        return BenchService(
            name, self.base_dir / f"{name}.log", service=service, port=free_port(), env=env
        )

    def _hash(self, name: str, persistence: Service, **env: str) -> BenchService:
        return self._service(name, "hash", PERSISTENCE_URL=persistence.url, **env)

    def start(self) -> None:
        self.etcd.start()
        for process in self.processes:
            process.start(wait=False)
        for process in self.processes:
            process.wait_serving()
        for target in self.targets.values():
            if target.upstream is not None:
                wait_until_answers(f"{target.service.url}/readyz", 30)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop(timeout=10)
        self.etcd.stop()

    def settle(self, quiet: float = 1.0, timeout: float = 15.0) -> None:
        """Until the traced services have exported what they queued (no export for `quiet`
        seconds), so their exporters' CPU does not count against the next measurement."""
        deadline = time.monotonic() + timeout
        seen = -1
        while seen != self.sink.exports and time.monotonic() < deadline:
            seen = self.sink.exports
            time.sleep(quiet)

    def fresh_hello(self, config: str) -> BenchService:
        """A hello of its own, for the worker-balance comparison (fresh start each time)."""
        name = "hello-baseline" if config == BASELINE_CONFIG else "hello-fixed"
        process = self._service(name, "hello")
        process.config = config
        return process

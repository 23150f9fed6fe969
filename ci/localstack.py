#!/usr/bin/env python3
"""The local stack: a real etcd and the three services under gunicorn, all on 127.0.0.1.

`make up` runs `python ci/localstack.py up`; the integration tests, the fault suite and the
benchmarks import this module to start and stop the same processes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port that was free a moment ago (closed again: another process may take it first).
    Prefer held_port() for etcd and the services."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# Sockets that keep ports from held_port() taken until this process exits.
_HELD: list[socket.socket] = []


def held_port() -> int:
    """A free loopback port that stays held: bound with SO_REUSEADDR and never listening, for
    the rest of this process. Nothing else is given it (a plain bind fails), while etcd and
    gunicorn, which set SO_REUSEADDR themselves, can still listen on it, and again after a
    restart."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    _HELD.append(sock)
    return int(sock.getsockname()[1])


def http_get(
    url: str, timeout: float = 2.0, headers: Mapping[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) of a GET; HTTP errors are answers too, not exceptions."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def wait_until_answers(
    url: str, timeout: float, expect: int = 200, alive: Callable[[], bool] | None = None
) -> None:
    """Until `url` answers `expect`; TimeoutError after `timeout` s, or as soon as `alive`
    (the process that should answer) says it has exited."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise TimeoutError(f"{url}: the process exited before it answered {expect}")
        try:
            status, body, _ = http_get(url, timeout=1.0)
            if status == expect:
                return
            last = f"HTTP {status} {body[:200]!r}"
        except OSError as error:
            last = str(error)
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {expect} within {timeout:.0f}s (last: {last})")


@dataclass
class Supervised:
    """A child process in its own process group, its output in a log file."""

    name: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def spawn(self, command: list[str], env: Mapping[str, str]) -> None:
        """Start `command` in a new process group, its output appended to the log."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,  # our signals reach the whole group, Ctrl-C does not
            )

    def wait_answering(self, url: str, timeout: float = 30.0) -> None:
        """Until `url` answers 200; TimeoutError with the end of this process' log otherwise."""
        try:
            wait_until_answers(url, timeout, alive=lambda: self.running)
        except TimeoutError as error:
            raise TimeoutError(
                f"{error}\n--- {self.name} log ---\n{self.log_text()[-3000:]}"
            ) from None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, signum: int) -> None:
        if self.running:
            os.killpg(self.pid, signum)

    def stop(self, timeout: float = 25.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.process is None:
            return None
        if self.running:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait()
        self._reap_group()
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None:
            self.signal(signal.SIGKILL)
            self.process.wait()
            self._reap_group()

    def _reap_group(self) -> None:
        # Workers of a killed gunicorn master may outlive it for a moment: end the group.
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class EtcdMember(Supervised):
    data_dir: Path = Path()
    client_port: int = 0
    peer_port: int = 0
    initial_cluster: str = ""

    @property
    def client_url(self) -> str:
        return f"http://{LOOPBACK}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.peer_port}"

    def start(self, wait: bool = True) -> EtcdMember:
        binary = shutil.which("etcd")
        if binary is None:
            raise RuntimeError("etcd is not installed: run ci/install-deps.sh (Debian etcd-server)")
        command = [
            binary,
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={self.initial_cluster or f'{self.name}={self.peer_url}'}",
            "--initial-cluster-state=new",  # ignored once the data dir holds a member
            "--initial-cluster-token=hashstack-local",
            "--auto-compaction-mode=revision",
            "--auto-compaction-retention=1000",
            "--log-level=warn",
        ]
        self.spawn(command, os.environ)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        wait_until_answers(f"{self.client_url}/health", timeout)


def etcd_cluster(base_dir: Path, size: int = 1, prefix: str = "etcd") -> list[EtcdMember]:
    """Members of one cluster (not started): ports chosen now, data under base_dir."""
    members = [
        EtcdMember(
            name=f"{prefix}{index}",
            log_path=base_dir / f"{prefix}{index}.log",
            data_dir=base_dir / f"{prefix}{index}.data",
            client_port=held_port(),
            peer_port=held_port(),
        )
        for index in range(size)
    ]
    cluster = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for member in members:
        member.initial_cluster = cluster
    return members


def start_etcd_cluster(members: list[EtcdMember]) -> None:
    for member in members:
        member.start(wait=False)  # a member of several waits for its peers before it is healthy
    for member in members:
        member.wait_healthy()


@dataclass
class Service(Supervised):
    """One of hello, persistence, hash under gunicorn with the project's gunicorn config."""

    service: str = "hello"
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, wait: bool = True) -> Service:
        metrics_dir = tempfile.mkdtemp(prefix=f"hashstack-{self.name}-metrics-")
        env = {
            **os.environ,
            "HOST": LOOPBACK,
            "PORT": str(self.port),
            "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
            **self.env,
        }
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "python:hashstack.gunicorn_conf",
            f"hashstack.{self.service}:create_app()",
        ]
        self.spawn(command, env)
        if wait:
            self.wait_serving()
        return self

    def wait_serving(self, timeout: float = 30.0) -> None:
        self.wait_answering(f"{self.url}/healthz", timeout)

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: the master's children."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


@dataclass
class LocalStack:
    """etcd plus hello, persistence and hash, wired together."""

    base_dir: Path
    # 0: a held free port (held_port); `make up` passes its fixed defaults.
    hello_port: int = 0
    persistence_port: int = 0
    hash_port: int = 0
    etcd_client_port: int = 0
    etcd_peer_port: int = 0
    block_size: int = 100
    store: str = "etcd"
    etcd: EtcdMember = field(init=False)
    services: list[Service] = field(init=False)

    def __post_init__(self) -> None:
        for name in ("hello_port", "persistence_port", "hash_port", "etcd_client_port",
                     "etcd_peer_port"):  # fmt: skip
            if not getattr(self, name):
                setattr(self, name, held_port())
        self.etcd = EtcdMember(
            name="hashstack-local",
            log_path=self.base_dir / "etcd.log",
            data_dir=self.base_dir / "etcd.data",
            client_port=self.etcd_client_port,
            peer_port=self.etcd_peer_port,
        )
        common = {"BLOCK_SIZE": str(self.block_size), "STORE": self.store}
        self.services = [
            Service("hello", self.base_dir / "hello.log", service="hello", port=self.hello_port),
            Service(
                "persistence",
                self.base_dir / "persistence.log",
                service="persistence",
                port=self.persistence_port,
                env={**common, "ETCD_ENDPOINTS": self.etcd.client_url},
            ),
            Service(
                "hash",
                self.base_dir / "hash.log",
                service="hash",
                port=self.hash_port,
                env={"PERSISTENCE_URL": f"http://{LOOPBACK}:{self.persistence_port}"},
            ),
        ]

    def start(self, progress: bool = False) -> None:
        say = print if progress else (lambda *_, **__: None)
        if self.store == "etcd":
            say(f"starting etcd on {self.etcd.client_url} (data: {self.etcd.data_dir})", flush=True)
            self.etcd.start()
        for service in self.services:
            say(f"starting {service.name} on {service.url}", flush=True)
            service.start(wait=False)
        for service in self.services:
            service.wait_serving()
        wait_until_answers(f"http://{LOOPBACK}:{self.hash_port}/readyz", 30)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.etcd.stop()

    def urls(self) -> dict[str, str]:
        return {service.name: f"{service.url}/" for service in self.services}


@contextmanager
def running(stack: LocalStack) -> Iterator[LocalStack]:
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def _up(args: argparse.Namespace) -> int:
    stack = LocalStack(
        base_dir=Path(args.data).resolve(),
        hello_port=args.hello_port,
        persistence_port=args.persistence_port,
        hash_port=args.hash_port,
        etcd_client_port=args.etcd_port,
        etcd_peer_port=args.etcd_peer_port,
        block_size=args.block_size,
    )
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    watched: list[Supervised] = [stack.etcd, *stack.services]
    try:
        stack.start(progress=True)
        if args.monitoring:
            # Scrapes as the chart's ServiceMonitors say, with the chart's alert rules.
            from monitoring import start_monitoring

            prometheus = start_monitoring(stack, args.scrape_interval, args.prometheus_port)
            watched.append(prometheus)
        print("hashstack is up:", flush=True)
        for name, url in stack.urls().items():
            print(f"  {name:<12} {url}", flush=True)
        print(f"  {'etcd':<12} {stack.etcd.client_url}", flush=True)
        if args.monitoring:
            print(f"  {'prometheus':<12} {prometheus.url}/", flush=True)
        print(f"logs in {stack.base_dir}; press Ctrl-C to stop", flush=True)
        while not stopping:
            for process in watched:
                if not process.running:
                    print(f"{process.name} exited; see {process.log_path}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        print("stopping...", flush=True)
        return 0
    except (RuntimeError, TimeoutError) as error:
        print(f"make up: {error}", file=sys.stderr)
        return 1
    finally:
        for process in watched[len(stack.services) + 1 :]:
            process.stop()
        stack.stop()
        print("stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run etcd and the three services until Ctrl-C")
    up.add_argument("--data", default=str(ROOT / ".cache" / "up"), help="logs and etcd data")
    up.add_argument("--hello-port", type=int, default=8080)
    up.add_argument("--persistence-port", type=int, default=8081)
    up.add_argument("--hash-port", type=int, default=8082)
    up.add_argument("--etcd-port", type=int, default=2379)
    up.add_argument("--etcd-peer-port", type=int, default=2380)
    up.add_argument("--block-size", type=int, default=100)
    up.add_argument(
        "--monitoring",
        action="store_true",
        help="also run Prometheus, scraping as the chart's ServiceMonitors say (MONITORING=1)",
    )
    up.add_argument("--prometheus-port", type=int, default=9090)
    up.add_argument(
        "--scrape-interval",
        default=None,
        help="default: the chart's metrics.serviceMonitor.interval",
    )
    args = parser.parse_args(argv)
    return _up(args)


if __name__ == "__main__":
    sys.exit(main())

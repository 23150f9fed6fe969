"""The local stack for tests: ci/localstack.py's processes (the one supervisor, also behind
`make up` and the benchmarks) started on held free ports and always stopped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from localstack import (
    EtcdMember,
    LocalStack,
    Service,
    Supervised,
    etcd_cluster,
    held_port,
    start_etcd_cluster,
    wait_until_answers,
)

__all__ = [
    "EtcdMember",
    "LocalStack",
    "Processes",
    "Service",
    "Services",
    "Supervised",
    "etcd_cluster",
    "held_port",
    "require_etcd",
    "start_etcd_cluster",
    "wait_until_answers",
]


def require_etcd() -> None:
    """Fail (not skip): `make test` installs etcd, so its absence is a broken setup."""
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed: `make test` installs Debian's etcd-server")


class Services:
    """Starts hello, persistence or hash under gunicorn on held ports, logs under `base`;
    stop_all() stops them in reverse order. `defaults`: environment every service gets."""

    def __init__(self, base: Path, **defaults: str) -> None:
        self.base = base
        self.defaults = defaults
        self.started: list[Service] = []

    def start(
        self, service: str, name: str | None = None, wait: bool = True, **env: str
    ) -> Service:
        name = name or f"{service}{len(self.started)}"
        process = Service(
            name,
            self.base / f"{name}.log",
            service=service,
            port=held_port(),
            env={**self.defaults, **env},
        )
        self.started.append(process)
        return process.start(wait=wait)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop(timeout=10)


class Processes:
    """Other programs (a registry, haproxy, an entrypoint script) under the same supervisor:
    own process group, output in <workdir>/<name>.log; stop() ends them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Supervised] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Supervised:
        process = Supervised(name, self.workdir / f"{name}.log")
        process.spawn(args, env)
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.started):
            process.stop(timeout=10)

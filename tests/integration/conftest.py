"""Real etcd and real gunicorn processes on 127.0.0.1, on free ports, torn down after each test."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from localstack import EtcdMember, Service, etcd_cluster, free_port, start_etcd_cluster


@pytest.fixture(autouse=True)
def _needs_etcd() -> None:
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed: `make test` installs Debian's etcd-server")


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdMember]:
    (member,) = etcd_cluster(tmp_path / "etcd", size=1)
    member.start()
    yield member
    member.stop()


StartService = Callable[..., Service]


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    started: list[Service] = []

    def start(service: str, name: str | None = None, wait: bool = True, **env: str) -> Service:
        name = name or f"{service}{len(started)}"
        process = Service(
            name, tmp_path / f"{name}.log", service=service, port=free_port(), env=dict(env)
        )
        started.append(process)
        return process.start(wait=wait)

    yield start
    for process in reversed(started):
        process.stop(timeout=10)


@pytest.fixture
def etcd_trio(tmp_path: Path) -> Iterator[list[EtcdMember]]:
    members = etcd_cluster(tmp_path / "trio", size=3)
    start_etcd_cluster(members)
    yield members
    for member in members:
        member.stop()

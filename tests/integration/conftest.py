"""Fixtures (only): real etcd and real gunicorn processes on 127.0.0.1, on held free ports, torn
down after each test (tests/support/stack.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.stack import (
    EtcdMember,
    Service,
    Services,
    etcd_cluster,
    require_etcd,
    start_etcd_cluster,
)

_needs_etcd = pytest.fixture(autouse=True)(require_etcd)


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdMember]:
    (member,) = etcd_cluster(tmp_path / "etcd", size=1)
    member.start()
    yield member
    member.stop()


StartService = Callable[..., Service]


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    services = Services(tmp_path)
    yield services.start
    services.stop_all()


@pytest.fixture
def etcd_trio(tmp_path: Path) -> Iterator[list[EtcdMember]]:
    members = etcd_cluster(tmp_path / "trio", size=3)
    start_etcd_cluster(members)
    yield members
    for member in members:
        member.stop()

"""Fixtures (only) for the fault suite: real etcd and gunicorn on 127.0.0.1 (FAULTS_LONG=1:
the long run)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.stack import EtcdMember, Service, Services, require_etcd

from .timeline import RECOVERY, REQUEST_TIMEOUT, STAY

LONG = os.environ.get("FAULTS_LONG", "") not in ("", "0", "false")


@dataclass(frozen=True)
class Intensity:
    cycles: int  # how often each fault is injected
    observe: float  # seconds of load watched after each injection
    callers: int  # client threads


# Each watch outlasts the recovery allowance (timeline.RECOVERY) by timeline.STAY seconds, so
# the "stays recovered" check sees answers in the short run too (an empty window fails).
SHORT = Intensity(cycles=1, observe=RECOVERY + STAY, callers=4)
FULL = Intensity(cycles=3, observe=RECOVERY + 3.0, callers=8)


_needs_etcd = pytest.fixture(autouse=True)(require_etcd)


@pytest.fixture
def intensity() -> Intensity:
    return FULL if LONG else SHORT


StartService = Callable[..., Service]


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    services = Services(tmp_path, REQUEST_TIMEOUT=str(REQUEST_TIMEOUT))
    yield services.start
    services.stop_all()


@pytest.fixture
def stop_members() -> Iterator[list[EtcdMember]]:
    members: list[EtcdMember] = []
    yield members
    for member in members:
        member.stop()

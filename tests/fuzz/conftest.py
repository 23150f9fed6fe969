"""The three services under gunicorn, with etcd, started once for the whole fuzz module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Service, Services, etcd_cluster, require_etcd, wait_until_answers


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    require_etcd()
    base: Path = tmp_path_factory.mktemp("fuzz")
    (etcd,) = etcd_cluster(base / "etcd", size=1)
    etcd.start()

    services = Services(base)
    try:
        persistence = services.start("persistence", "persistence", ETCD_ENDPOINTS=etcd.client_url)
        started = {
            "hello": services.start("hello", "hello"),
            "persistence": persistence,
            "hash": services.start("hash", "hash", PERSISTENCE_URL=persistence.url),
        }
        wait_until_answers(f"{started['hash'].url}/readyz", 30)
        yield started
    finally:
        services.stop_all()
        etcd.stop()

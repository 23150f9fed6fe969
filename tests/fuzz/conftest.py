"""The three services under gunicorn, with etcd, started once for the whole fuzz module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from localstack import Service, etcd_cluster, free_port, wait_until_answers


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed: `make test` installs Debian's etcd-server")
    base: Path = tmp_path_factory.mktemp("fuzz")
    (etcd,) = etcd_cluster(base / "etcd", size=1)
    etcd.start()

    def service(name: str, **env: str) -> Service:
        return Service(name, base / f"{name}.log", service=name, port=free_port(), env=env)

    persistence = service("persistence", ETCD_ENDPOINTS=etcd.client_url)
    started = {
        "hello": service("hello"),
        "persistence": persistence,
        "hash": service("hash", PERSISTENCE_URL=persistence.url),
    }
    try:
        for process in started.values():
            process.start()
        wait_until_answers(f"{started['hash'].url}/readyz", 30)
        yield started
    finally:
        for process in reversed(started.values()):
            process.stop(timeout=10)
        etcd.stop()

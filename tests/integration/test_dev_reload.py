"""The dev reload (GUNICORN_RELOAD=true, hashstack.devreload) on real gunicorn: an edited
source is served by a new worker, and no call fails while the workers are swapped; a file that
does not compile leaves the running worker serving."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from hashstack import devreload
from localstack import Service, held_port, http_get
from tests.support.caller import Caller
from tests.support.paths import ROOT
from tests.support.wait import wait_until

GREETING = re.compile(r"Hello, [^\"!]*!")


def says(url: str, text: str) -> bool:
    try:
        return http_get(url, timeout=2)[1].decode() == text
    except OSError:
        return False


DEV = {"GUNICORN_RELOAD": "true", "WEB_CONCURRENCY": "1", "LOG_LEVEL": "info"}


def dev_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, **env: str) -> Service:
    """`name` from a copy of the package (the dev pod's writable /app), in dev mode."""
    if not (tmp_path / "app").exists():
        shutil.copytree(ROOT / "images" / "hashstack", tmp_path / "app" / "hashstack")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "app"))
    return Service(
        name, tmp_path / f"{name}.log", service=name, port=held_port(), env={**DEV, **env}
    ).start()


@pytest.fixture
def dev_hello(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    service = dev_service(tmp_path, monkeypatch, "hello")
    yield service, tmp_path / "app" / "hashstack" / "hello.py"
    service.stop()


def edit(path: Path, text: str) -> None:
    path.write_text(GREETING.sub(text, path.read_text(), count=1))


def test_edit_is_served_by_a_new_worker_without_a_failed_call(dev_hello):
    service, source = dev_hello
    url = service.url + "/"
    assert says(url, "Hello, World!")
    with Caller(url) as caller:
        for i in range(3):
            text = f"Hello, edit {i}!"
            edit(source, text)
            wait_until(lambda t=text: says(url, t), 20, f"{url} saying {text!r}", interval=0.02)
            time.sleep(0.5)  # the old worker's graceful stop happens in here
    log = service.log_text()
    assert caller.calls > 50
    assert caller.failures == [], f"{caller.failures[:5]}\n{log[-3000:]}"
    assert log.count("dev reload: new worker") == 3, log[-3000:]


def test_code_that_does_not_compile_keeps_the_old_worker(dev_hello):
    service, source = dev_hello
    url = service.url + "/"
    good = source.read_text()
    source.write_text(good + "\ndef broken(:\n")
    wait_until(lambda: "does not compile" in service.log_text(), 20, "the compile error logged")
    assert says(url, "Hello, World!")
    assert "hello.py:" in service.log_text()
    source.write_text(GREETING.sub("Hello, fixed!", good, count=1))
    wait_until(lambda: says(url, "Hello, fixed!"), 20, "the fixed code served", interval=0.05)


def test_the_masters_preload_is_what_the_package_imports():
    names = devreload.imported_modules()
    assert "flask" in names
    assert "etcd3" in names
    assert not [n for n in names if n.split(".")[0] == "hashstack"]


def test_persistence_keeps_counting_across_a_reload(tmp_path, monkeypatch, etcd):
    """The master imported etcd3 and grpc before forking: a reloaded worker still talks to
    etcd, and the numbers keep rising (a new worker reserves a new block)."""
    service = dev_service(tmp_path, monkeypatch, "persistence", ETCD_ENDPOINTS=etcd.client_url)
    try:
        url = service.url + "/"

        def number() -> int:
            status, body, _ = http_get(url, timeout=5)
            assert status == 200, body
            return int(json.loads(body)["data"])

        before = [number() for _ in range(3)]
        source = tmp_path / "app" / "hashstack" / "persistence.py"
        with Caller(url) as caller:
            source.write_text(source.read_text() + "\n# edited\n")
            wait_until(lambda: "new worker" in service.log_text(), 20, "the reload", interval=0.05)
            time.sleep(1.0)
        after = [number() for _ in range(3)]
        assert caller.failures == [], caller.failures[:5]
        assert len(set(before + after)) == 6
        assert min(after) > max(before)
    finally:
        service.stop()


def test_every_worker_gets_the_new_code(tmp_path, monkeypatch):
    """With two workers both are replaced, one at a time: afterwards no call gets the old text."""
    service = dev_service(tmp_path, monkeypatch, "hello", WEB_CONCURRENCY="2")
    source = tmp_path / "app" / "hashstack" / "hello.py"
    url = service.url + "/"
    try:
        with Caller(url) as caller:
            edit(source, "Hello, both!")
            wait_until(
                lambda: service.log_text().count("dev reload: new worker") == 2,
                30,
                "two new workers",
                interval=0.05,
            )
            time.sleep(1.0)
        answers = {http_get(url, timeout=5)[1].decode() for _ in range(40)}
        assert answers == {"Hello, both!"}
        assert caller.failures == [], caller.failures[:5]
    finally:
        service.stop()

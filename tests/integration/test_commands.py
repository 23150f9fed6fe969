"""The seed's command lines and plain gunicorn both start the services."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localstack import Service, held_port, http_get, wait_until_answers


def run_command(tmp_path: Path, name: str, argv: list[str], **env: str) -> Service:
    # A Service whose command line is given: start it like the seed did.
    process = Service(name, tmp_path / f"{name}.log", port=0)
    process.spawn(argv, {**os.environ, "HOST": "127.0.0.1", **env})
    return process


def test_seed_command_lines_serve(tmp_path: Path, etcd) -> None:
    hello_port, persistence_port, hash_port = held_port(), held_port(), held_port()
    python = sys.executable
    started = [
        run_command(tmp_path, "hello", [python, "-m", "hashstack.hello", str(hello_port)]),
        run_command(
            tmp_path,
            "persistence",
            [python, "-m", "hashstack.persistence", str(persistence_port)],
            ETCD_ENDPOINTS=etcd.client_url,
        ),
        run_command(
            tmp_path,
            "hash",
            [python, "-m", "hashstack.hash", str(hash_port), f"localhost:{persistence_port}"],
        ),
    ]
    try:
        for port in (hello_port, persistence_port, hash_port):
            wait_until_answers(f"http://127.0.0.1:{port}/healthz", 30)
        assert http_get(f"http://127.0.0.1:{hello_port}/")[1] == b"Hello, World!"
        assert b'"data":1' in http_get(f"http://127.0.0.1:{persistence_port}/")[1]
        # hash's call may reach the other persistence worker, which reserves its own block.
        answer = json.loads(http_get(f"http://127.0.0.1:{hash_port}/")[1])["data"]
        assert answer["number"] > 1
        assert answer["hash"] == hashlib.sha256(str(answer["number"]).encode()).hexdigest()
    finally:
        for process in started:
            process.stop(10)


def test_plain_gunicorn_serves_the_factory(tmp_path: Path) -> None:
    port = held_port()
    process = run_command(
        tmp_path,
        "plain",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "hashstack.hello:create_app()",
        ],
    )
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/", 30)
        assert http_get(f"http://127.0.0.1:{port}/")[1] == b"Hello, World!"
    finally:
        process.stop(10)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["-m", "hashstack.hello", "8080", "extra"], {}, "usage: python -m hashstack.hello"),
        (["-m", "hashstack.hash", "http"], {}, "PORT='http'"),
        (["-m", "hashstack.persistence"], {"BLOCK_SIZE": "zero"}, "BLOCK_SIZE"),
        (
            [
                "-m",
                "gunicorn",
                "-c",
                "python:hashstack.gunicorn_conf",
                "hashstack.hello:create_app()",
            ],
            {"REQUEST_TIMEOUT": "soon"},
            "REQUEST_TIMEOUT",
        ),
    ],
)
def test_bad_command_lines_and_settings_fail_clearly(argv, env, message) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [sys.executable, *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_memory_store_warns_and_runs_one_worker(tmp_path: Path) -> None:
    process = Service(
        "memory",
        tmp_path / "memory.log",
        service="persistence",
        port=held_port(),
        env={"STORE": "memory", "WEB_CONCURRENCY": "4"},
    )
    process.start()
    try:
        assert [http_get(f"{process.url}/")[1] for _ in range(3)] == [
            b'{"data":1}\n',
            b'{"data":2}\n',
            b'{"data":3}\n',
        ]
        assert "STORE=memory" in process.log_text()
        assert len(process.worker_pids()) == 1
    finally:
        process.stop(10)

"""`make up`, as a user runs it: it prints the URLs, hash answers there, Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from localstack import ROOT, held_port, http_get
from tests.support.monitoring import require_prometheus
from tests.support.wait import wait_until


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(f"{cmdline.parent.name}: {args}")
    return found


def scraped_jobs(prometheus: str) -> set[str]:
    _, body, _ = http_get(f"{prometheus}/api/v1/query?query=up%3D%3D1")
    return {series["metric"]["job"] for series in json.loads(body)["data"]["result"]}


@pytest.mark.parametrize("monitoring", ["0", "1"], ids=["plain", "monitoring"])
def test_make_up_serves_and_ctrl_c_stops_everything(tmp_path: Path, monitoring: str) -> None:
    """MONITORING=1: Prometheus too, at the URL it prints, scraping every service."""
    data = tmp_path / "up"
    names = ["hello", "persistence", "hash", "etcd", "etcd-peer"]
    if monitoring == "1":
        require_prometheus()
        names.append("prometheus")
    ports = {name: held_port() for name in names}
    args = " ".join(f"--{name}-port {port}" for name, port in ports.items())
    if monitoring == "1":
        args += " --scrape-interval 1s"
    make = subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            "up",
            f"MONITORING={monitoring}",
            f"UP_ARGS=--data {data} {args}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a terminal's Ctrl-C signals the whole foreground group
    )
    assert make.stdout is not None
    output: list[str] = []
    hash_url = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and hash_url is None:
        line = make.stdout.readline()
        if not line:
            break
        output.append(line)
        match = re.match(r"\s+hash\s+(http://\S+)", line)
        if match:
            hash_url = match.group(1)
    try:
        assert hash_url, "".join(output)
        assert hash_url == f"http://127.0.0.1:{ports['hash']}/"
        status, body, _ = http_get(hash_url)
        assert status == 200
        assert json.loads(body)["data"]["number"] == 1
        if monitoring == "1":
            rest = [make.stdout.readline() for _ in range(2)]
            prometheus = f"http://127.0.0.1:{ports['prometheus']}"
            assert any(re.match(rf"\s+prometheus\s+{prometheus}/$", line) for line in rest), rest
            wait_until(
                lambda: (
                    {"hashstack-hash", "hashstack-persistence", "hashstack-hello"}
                    <= scraped_jobs(prometheus)
                ),
                30,
                "Prometheus scraping every service",
            )
    finally:
        os.killpg(make.pid, signal.SIGINT)
        rest, _ = make.communicate(timeout=60)
    assert "stopped" in rest
    # make returns when localstack has reaped its groups; a child may take a moment to vanish.
    wait_until(lambda: processes_mentioning(str(data)) == [], 10, "every process of `make up` gone")
    for port in ports.values():
        try:
            http_get(f"http://127.0.0.1:{port}/", timeout=1)
        except OSError:
            continue
        raise AssertionError(f"port {port} still answers after Ctrl-C")

"""Closed-loop maximum throughput with wrk (Debian's wrk 4.1): each connection sends its next
request as soon as the previous answer is in, so req/s is what the server can do at that
concurrency on this machine."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

REPORT_SCRIPT = Path(__file__).with_name("report.lua")
MARKER = "HASHSTACK-WRK "


@dataclass(frozen=True)
class WrkResult:
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]  # connect/read/write/timeout and status (answers >= 400)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "error_count": self.error_count}


def wrk_binary() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: run ci/install-deps.sh (Debian package wrk)")
    return binary


def start_wrk(
    url: str, connections: int, seconds: float, timeout: float = 5.0
) -> subprocess.Popen[str]:
    host = urlsplit(url).hostname
    if host != "127.0.0.1":
        raise ValueError(f"the benchmark only targets 127.0.0.1, not {host}")
    threads = min(2, connections)  # one per core; wrk needs at least one connection per thread
    command = [
        wrk_binary(),
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout))}s",
        f"--script={REPORT_SCRIPT}",
        url,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_wrk(process: subprocess.Popen[str], connections: int) -> WrkResult:
    output, _ = process.communicate()
    lines = [line for line in output.splitlines() if line.startswith(MARKER)]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed (exit {process.returncode}):\n{output}")
    raw = json.loads(lines[-1][len(MARKER) :])
    seconds = raw["duration_us"] / 1e6
    return WrkResult(
        connections=connections,
        requests=raw["requests"],
        seconds=seconds,
        rps=raw["requests"] / seconds if seconds else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors={key: raw[key] for key in ("connect", "read", "write", "timeout", "status")},
    )

"""The PNG in docs/benchmarks.md: throughput and p99 against concurrency, one line per service."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on CI machines
import matplotlib.pyplot as plt

LABELS = {
    "hello": "hello",
    "persistence": "persistence (etcd)",
    "hash": "hash (etcd)",
    "hash-memory": "hash (memory store)",
}


def _series(rows: list[dict[str, Any]], target: str, key: str) -> tuple[list[int], list[float]]:
    by_connections: dict[int, list[float]] = {}
    for row in rows:
        if row["target"] == target:
            by_connections.setdefault(row["connections"], []).append(row[key])
    xs = sorted(by_connections)
    return xs, [statistics.median(by_connections[x]) for x in xs]


def plot(result: dict[str, Any], path: Path) -> None:
    rows = result["throughput"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for target, label in LABELS.items():
        xs, rps = _series(rows, target, "rps")
        if not xs:
            continue
        left.plot(xs, rps, marker="o", label=label)
        right.plot(xs, _series(rows, target, "p99_ms")[1], marker="o", label=label)
    ticks = sorted({row["connections"] for row in rows})
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xticks(ticks, [str(t) for t in ticks])
        axis.set_xlabel("concurrent connections (wrk)")
        axis.grid(True, which="both", alpha=0.3)
    left.set_ylabel("requests per second")
    left.set_ylim(bottom=0)
    left.set_title("maximum throughput")
    right.set_yscale("log")
    right.set_ylabel("p99 latency (ms)")
    right.set_title("p99 latency, closed loop")
    left.legend(fontsize="small")
    cpus = result["machine"]["cpus"]
    figure.suptitle(
        f"hashstack on {cpus} CPUs, 127.0.0.1, median of {result['plan']['repeats']} rounds "
        f"({result['when']})",
        fontsize="medium",
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)

#!/usr/bin/env python3
"""docs/images/dashboard.png: the Grafana dashboard's own queries, plotted with matplotlib from
real data of the local stack under load.

Grafana and Prometheus cannot run here, so this script is both: it starts the local stack
(real etcd and the three services under gunicorn on 127.0.0.1, ci/localstack.py), loads hash and
hello from client threads, stops etcd for a few seconds in the middle (so the error panels show
something real), scrapes every service's /metrics each second, and evaluates each query of
charts/hashstack/files/dashboard.json over those scrapes with ci/promql_lite.py.

    python ci/dashboard_png.py [--seconds 80] [--out docs/images/dashboard.png]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import matplotlib
import urllib3
from prometheus_client.parser import text_string_to_metric_families
from promql_lite import Scrapes, parse

from localstack import LOOPBACK, LocalStack, http_get, running

matplotlib.use("Agg")  # no display here
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "charts" / "hashstack" / "files" / "dashboard.json"
# What Grafana's $__rate_interval becomes for one-second scrapes (4 x the scrape interval).
WINDOWS = {"$__rate_interval": "5s"}


def scrape(stack: LocalStack, scrapes: Scrapes, when: float) -> None:
    # `job` as Prometheus would add it: the same metric from two services stays two series.
    for service in stack.services:
        _, body, _ = http_get(f"{service.url}/metrics", timeout=2.0)
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                labels = {**sample.labels, "job": service.name}
                scrapes.add(when, sample.name, labels, float(sample.value))


def load(urls: list[str], clients: int, stop: threading.Event, answers: dict[int, int]) -> None:
    lock = threading.Lock()

    def worker(offset: int) -> None:
        pool = urllib3.PoolManager(maxsize=1, retries=False, timeout=5.0)
        index = offset
        while not stop.is_set():
            url = urls[index % len(urls)]
            index += 1
            try:
                status = pool.request("GET", url).status
            except urllib3.exceptions.HTTPError:
                status = 0
            with lock:
                answers[status] = answers.get(status, 0) + 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def plot(
    board: dict[str, Any],
    scrapes: Scrapes,
    times: list[float],
    outage: tuple[float, float],
    out: Path,
) -> None:
    """One subplot per panel; `outage`: when etcd was stopped, in seconds from times[0]."""
    panels = board["panels"]
    rows = (len(panels) + 1) // 2
    figure, axes = plt.subplots(rows, 2, figsize=(13, 3.1 * rows), dpi=100, squeeze=False)
    start = times[0]
    for axis, panel in zip(axes.flat, panels, strict=False):
        unit = panel["fieldConfig"]["defaults"]["unit"]
        axis.axvspan(*outage, color="grey", alpha=0.15, label="etcd stopped")
        for target in panel["targets"]:
            node = parse(target["expr"])
            lines: dict[str, tuple[list[float], list[float]]] = {}
            for at in times:
                for labels, value in scrapes.evaluate(node, at, WINDOWS).items():
                    name = legend(target.get("legendFormat", ""), dict(labels)) or "value"
                    xs, ys = lines.setdefault(name, ([], []))
                    xs.append(at - start)
                    ys.append(value * 1000 if unit == "s" else value)  # seconds shown as ms
            for name, (xs, ys) in sorted(lines.items()):
                axis.plot(xs, ys, label=name, linewidth=1.2)
        axis.set_xlim(0, times[-1] - start)
        axis.set_title(panel["title"], fontsize=10)
        axis.set_ylabel({"s": "ms", "reqps": "req/s", "ops": "/s"}.get(unit, unit), fontsize=8)
        axis.set_xlabel("seconds", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=6, loc="upper left", ncol=2)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(
        "hashstack dashboard: its PromQL over real scrapes of the local stack under load "
        "(matplotlib; Grafana cannot run here)",
        fontsize=10,
    )
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=80.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "dashboard.png")
    args = parser.parse_args()
    board = json.loads(DASHBOARD.read_text())
    scrapes = Scrapes()
    answers: dict[int, int] = {}
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hashstack-dashboard-") as base:
        stack = LocalStack(Path(base), block_size=20)
        with running(stack):
            stop = threading.Event()
            urls = [f"http://{LOOPBACK}:{stack.hash_port}/"] * 3 + [
                f"http://{LOOPBACK}:{stack.hello_port}/"
            ]
            load(urls, args.clients, stop, answers)
            begin = time.monotonic()
            outage = (args.seconds * 0.55, args.seconds * 0.55 + 6)
            etcd_down = False
            try:
                while (elapsed := time.monotonic() - begin) < args.seconds:
                    if outage[0] <= elapsed < outage[1] and not etcd_down:
                        stack.etcd.stop()
                        etcd_down = True
                    elif elapsed >= outage[1] and etcd_down:
                        stack.etcd.start()
                        etcd_down = False
                    now = time.monotonic()
                    scrape(stack, scrapes, now)
                    times.append(now)
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
            finally:
                stop.set()
                if etcd_down:
                    stack.etcd.start()
    # The first seconds have no rate yet (a rate needs two scrapes inside its window).
    shown = times[5:]
    since_first = shown[0] - begin
    plot(board, scrapes, shown, (outage[0] - since_first, outage[1] - since_first), args.out)
    total = sum(answers.values())
    print(
        f"{len(times)} scrapes over {args.seconds:.0f} s, {total} requests "
        f"(by status: {dict(sorted(answers.items()))}), etcd stopped "
        f"{outage[0]:.0f}-{outage[1]:.0f} s; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

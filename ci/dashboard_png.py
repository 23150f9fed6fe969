"""docs/images/dashboard.png: the Grafana dashboard's own queries, answered by a real
Prometheus over the local stack under load, plotted with matplotlib.

It starts the local stack (real etcd and the three services under gunicorn on 127.0.0.1,
ci/localstack.py) and Prometheus scraping it every second as the chart's ServiceMonitors say
(ci/monitoring.py), loads hash and hello from client threads, stops etcd for a few seconds in
the middle (so the error panels show something real), then asks Prometheus for each query of
charts/hashstack/files/dashboard.json through /api/v1/query_range. `make docs` runs it.

    python ci/dashboard_png.py [--seconds 80] [--out docs/images/dashboard.png]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib
from monitoring import Load, Prometheus, grafana_variables, start_monitoring

from localstack import LOOPBACK, LocalStack, running

matplotlib.use("Agg")  # no display here
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "charts" / "hashstack" / "files" / "dashboard.json"
# What Grafana's $__rate_interval becomes for one-second scrapes (4 x the scrape interval).
RATE_INTERVAL = "4s"
SCRAPE_INTERVAL = "1s"


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def plot(
    board: dict[str, Any],
    prometheus: Prometheus,
    span: tuple[float, float],
    outage: tuple[float, float],
    out: Path,
) -> None:
    """One subplot per panel over `span` (Unix times); `outage`: when etcd was stopped, in
    seconds from span[0]."""
    panels = board["panels"]
    rows = (len(panels) + 1) // 2
    figure, axes = plt.subplots(rows, 2, figsize=(13, 3.1 * rows), dpi=100, squeeze=False)
    start, end = span
    for axis, panel in zip(axes.flat, panels, strict=False):
        unit = panel["fieldConfig"]["defaults"]["unit"]
        axis.axvspan(*outage, color="grey", alpha=0.15, label="etcd stopped")
        for target in panel["targets"]:
            expr = grafana_variables(target["expr"], RATE_INTERVAL)
            for series in prometheus.query_range(expr, start, end, 1.0):
                name = legend(target.get("legendFormat", ""), series["metric"]) or "value"
                points = [(float(t) - start, float(v)) for t, v in series["values"]]
                points = [(t, v) for t, v in points if not math.isnan(v)]
                xs = [t for t, _ in points]
                ys = [v * 1000 if unit == "s" else v for _, v in points]  # seconds shown as ms
                axis.plot(xs, ys, label=name, linewidth=1.2)
        axis.set_xlim(0, end - start)
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
        "hashstack dashboard: its PromQL answered by Prometheus 2.42 scraping the local stack "
        "under load (plotted with matplotlib; Grafana cannot run here)",
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
    with tempfile.TemporaryDirectory(prefix="hashstack-dashboard-") as base:
        stack = LocalStack(Path(base), block_size=20)
        with running(stack):
            prometheus = start_monitoring(stack, SCRAPE_INTERVAL)
            try:
                prometheus.wait_targets_up()
                urls = [f"http://{LOOPBACK}:{stack.hash_port}/"] * 3 + [
                    f"http://{LOOPBACK}:{stack.hello_port}/"
                ]
                load = Load(urls, args.clients)
                begin = time.time()
                outage = (args.seconds * 0.55, args.seconds * 0.55 + 6)
                try:
                    time.sleep(outage[0])
                    stack.etcd.stop()
                    time.sleep(outage[1] - outage[0])
                    stack.etcd.start()
                    time.sleep(max(0.0, args.seconds - (time.time() - begin)))
                finally:
                    load.stop()
                    if not stack.etcd.running:
                        stack.etcd.start()
                end = time.time()
                time.sleep(2)  # the last scrape and rule evaluation
                # The first seconds have no rate yet (a rate needs two scrapes in its window).
                shown = (begin + 5, end)
                plot(board, prometheus, shown, (outage[0] - 5, outage[1] - 5), args.out)
            finally:
                prometheus.stop()
    total = sum(load.answers.values())
    print(
        f"{args.seconds:.0f} s of load, {total} requests "
        f"(by status: {dict(sorted(load.answers.items()))}), etcd stopped "
        f"{outage[0]:.0f}-{outage[1]:.0f} s; Prometheus answered every panel; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

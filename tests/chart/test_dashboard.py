"""The Grafana dashboard: every query is valid PromQL (promtool), and a real Prometheus
scraping the local stack under load, as the chart's ServiceMonitors configure it
(ci/monitoring.py), answers each one with data, over labels the series really have."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pytest
from monitoring import Load, grafana_variables, start_monitoring

from localstack import LOOPBACK, LocalStack, running
from tests.support.monitoring import promtool, require_prometheus

from .hardening import render
from .k8s import named
from .rendering import CHART, RELEASE

DASHBOARD = CHART / "files" / "dashboard.json"
# Grafana's $__rate_interval for one-second scrapes (4 x the scrape interval).
RATE_INTERVAL = "4s"


def queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in board["panels"] for t in panel["targets"]]


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as the expression of a recording rule."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": grafana_variables(q, "1m")}
                    for i, q in enumerate(queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.json"
    path.write_text(json.dumps(rules))
    out = promtool("check", "rules", str(path))
    assert f"SUCCESS: {len(queries())} rules found" in out


def selectors(query: str) -> list[tuple[str, set[str]]]:
    """(metric, label names it is matched or grouped by) of each selector of a query."""
    grouped = {
        label.strip()
        for group in re.findall(r"\bby\s*\(([^)]*)\)", query)
        for label in group.split(",")
    }
    found = []
    for metric, matchers in re.findall(r"(hashstack_\w+)(?:\{([^}]*)\})?", query):
        matched = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
        found.append((metric, matched | grouped))
    return found


@pytest.mark.slow
@pytest.mark.etcd
def test_prometheus_answers_every_query_with_data(tmp_path: Path) -> None:
    """Under load, with etcd stopped for a while (so the error panels have something to
    show), every query returns at least one series with a value, and names only labels
    its series have."""
    require_prometheus()
    stack = LocalStack(tmp_path, block_size=20)
    with running(stack):
        prometheus = start_monitoring(stack, "1s")
        try:
            prometheus.wait_targets_up()
            load = Load(
                [f"http://{LOOPBACK}:{stack.hash_port}/"] * 3
                + [f"http://{LOOPBACK}:{stack.hello_port}/"]
            )
            begin = time.time()
            try:
                time.sleep(6)
                stack.etcd.stop()
                time.sleep(5)
                stack.etcd.start()
                time.sleep(6)
            finally:
                load.stop()
            end = time.time()
            time.sleep(1.5)  # the last scrape
            assert load.answers.get(200), load.answers
            assert load.answers.get(503), load.answers  # etcd's outage reached the callers
            for query in queries():
                expr = grafana_variables(query, RATE_INTERVAL)
                series = prometheus.query_range(expr, begin, end, 1.0)
                values = [float(v) for s in series for _, v in s["values"]]
                assert any(not math.isnan(v) and v > 0 for v in values), f"no data: {query}"
                for metric, labels in selectors(query):
                    have = set(prometheus.labels(metric)) | {"le"}
                    assert have > {"__name__"}, f"{query}: no series of {metric}"
                    assert labels <= have, f"{query}: {metric} has no {labels - have}"
        finally:
            prometheus.stop()


def test_dashboard_configmap_is_off_by_default_and_labelled_for_the_sidecar() -> None:
    assert not [o for o in render() if o["metadata"]["name"].endswith("-dashboard")]
    objects = render({"metrics": {"dashboard": {"enabled": True}}})
    configmap = named(objects, "ConfigMap", f"{RELEASE}-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["hashstack.json"]) == json.loads(DASHBOARD.read_text())

"""The Grafana dashboard: every query parses, and names only metrics and labels the services
export (hashstack.metrics, the module every service registers its metrics in)."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client.metrics import MetricWrapperBase
from promql_lite import parse, rates

import hashstack.metrics

from .hardening import render
from .k8s import named
from .rendering import CHART, RELEASE

DASHBOARD = CHART / "files" / "dashboard.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def exported() -> dict[str, set[str]]:
    """Sample names the services expose -> their label names (plus `le` on buckets): every
    metric object in hashstack.metrics (prometheus_client keeps name, type and label names in
    attributes without a public getter)."""
    found: dict[str, set[str]] = {}
    for metric in vars(hashstack.metrics).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        name, kind, labels = metric._name, metric._type, set(metric._labelnames)
        for suffix in SUFFIXES.get(kind, ()):
            found[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return found


def queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in board["panels"] for t in panel["targets"]]


def test_every_query_names_an_exported_metric_and_its_labels() -> None:
    metrics = exported()
    assert "hashstack_http_requests_total" in metrics
    assert "hashstack_etcd_request_duration_seconds_bucket" in metrics
    used = set()
    for query in queries():
        node = parse(query)
        for selector in rates(node):
            assert selector.metric in metrics, f"{query}: {selector.metric} is not exported"
            labels = metrics[selector.metric]
            for label, _, _ in selector.matchers:
                assert label in labels, f"{query}: {selector.metric} has no label {label}"
            used.add(selector.metric)
        by: Any = node
        while not hasattr(by, "metric"):
            if hasattr(by, "by"):
                missing = set(by.by) - metrics[rates(node)[0].metric]
                assert not missing, f"{query}: grouped by {missing}"
            by = by.inner
    # What the issue asks the dashboard to show, each from a real metric.
    assert {
        "hashstack_http_requests_total",
        "hashstack_http_request_duration_seconds_bucket",
        "hashstack_numbers_issued_total",
        "hashstack_blocks_reserved_total",
        "hashstack_etcd_request_duration_seconds_bucket",
    } <= used


def test_dashboard_configmap_is_off_by_default_and_labelled_for_the_sidecar() -> None:
    assert not [o for o in render() if o["metadata"]["name"].endswith("-dashboard")]
    objects = render({"metrics": {"dashboard": {"enabled": True}}})
    configmap = named(objects, "ConfigMap", f"{RELEASE}-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["hashstack.json"]) == json.loads(DASHBOARD.read_text())

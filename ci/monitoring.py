"""Prometheus and Alertmanager (the Debian packages) on 127.0.0.1 over the local stack,
configured the way the chart configures them in a cluster.

The scrape jobs come from the ServiceMonitors `helm template` renders: each endpoint's path,
interval, timeout and honorLabels, and the target labels the Prometheus Operator gives it
(`job` and `service` = the Service's name, `namespace`, `endpoint`, `pod`, `container`); so a
query or rule that works here sees the series it would see in a cluster. The rules are the
chart's PrometheusRule, as rendered. `make up MONITORING=1`, ci/dashboard_png.py and the
tests (tests/chart/test_dashboard.py, tests/chart/test_alerts.py) use this module.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
import yaml
from rendered import Rendered

from localstack import LOOPBACK, LocalStack, Supervised, held_port, http_get

# The release and namespace the local stack stands for (the same as the chart tests').
RELEASE = NAMESPACE = "hashstack"
PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"  # Debian's name for the alertmanager binary


def render_chart(*sets: str) -> list[dict[str, Any]]:
    """The chart's objects with its ServiceMonitors and PrometheusRule on (`sets`: more
    `key=value` settings)."""
    values = {"metrics.serviceMonitor.enabled": "true", "metrics.prometheusRule.enabled": "true"}
    values |= dict(value.split("=", 1) for value in sets)
    return list(Rendered.of(values, release=RELEASE, namespace=NAMESPACE).objects)


def rule_groups(objects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A Prometheus rules file holding the groups of every rendered PrometheusRule."""
    groups = [
        group
        for obj in objects
        if obj["kind"] == "PrometheusRule"
        for group in obj["spec"]["groups"]
    ]
    if not groups:
        raise ValueError("the rendered chart has no PrometheusRule")
    return {"groups": groups}


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if duration.endswith(unit) and duration[: -len(unit)].isdigit():
            return int(duration[: -len(unit)]) * units[unit]
    raise ValueError(f"not a duration: {duration!r}")


def scrape_configs(
    objects: Iterable[Mapping[str, Any]],
    targets: Mapping[str, str],
    interval: str | None = None,
) -> list[dict[str, Any]]:
    """One scrape job per ServiceMonitor endpoint and Service it selects, as the Operator
    generates it. `targets`: app.kubernetes.io/name (hello, persistence, hash) -> the
    host:port that serves its /metrics here. `interval` replaces the endpoints' own."""
    objects = list(objects)
    services = [o for o in objects if o["kind"] == "Service"]
    jobs = []
    for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
        meta, spec = monitor["metadata"], monitor["spec"]
        wanted = spec["selector"]["matchLabels"]
        for index, endpoint in enumerate(spec["endpoints"]):
            for service in services:
                labels = service["metadata"].get("labels", {})
                ports = {p.get("name") for p in service["spec"].get("ports", [])}
                if any(labels.get(k) != v for k, v in wanted.items()):
                    continue
                if endpoint["port"] not in ports:
                    continue  # the Operator finds no endpoint there (the headless Service)
                app = labels["app.kubernetes.io/name"]
                every = interval or endpoint.get("interval", "30s")
                timeout = endpoint.get("scrapeTimeout", every)
                if _seconds(timeout) > _seconds(every):
                    timeout = every
                name = service["metadata"]["name"]
                jobs.append(
                    {
                        "job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/{index}",
                        "honor_labels": bool(endpoint.get("honorLabels", False)),
                        "metrics_path": endpoint.get("path", "/metrics"),
                        "scrape_interval": every,
                        "scrape_timeout": timeout,
                        "static_configs": [
                            {
                                "targets": [targets[app]],
                                "labels": {
                                    "namespace": meta["namespace"],
                                    "service": name,
                                    "endpoint": endpoint["port"],
                                    "pod": f"{name}-local",
                                    "container": app,
                                },
                            }
                        ],
                        # The Operator's job label: the Service's name.
                        "relabel_configs": [{"target_label": "job", "replacement": name}],
                    }
                )
    if not jobs:
        raise ValueError("the rendered chart has no ServiceMonitor")
    return jobs


def stack_targets(stack: LocalStack) -> dict[str, str]:
    """Where each service of the local stack answers /metrics (its API port: the local stack
    sets no METRICS_PORT)."""
    return {s.service: f"{LOOPBACK}:{s.port}" for s in stack.services}


def etcd_job(stack: LocalStack, interval: str) -> dict[str, Any]:
    """etcd's own /metrics (etcd_server_has_leader): not from the chart, which ships no
    ServiceMonitor for etcd; labelled as a cluster's scrape of it would be."""
    return {
        "job_name": "etcd",
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "static_configs": [
            {
                "targets": [f"{LOOPBACK}:{stack.etcd.client_port}"],
                "labels": {"namespace": NAMESPACE, "job": f"{RELEASE}-etcd"},
            }
        ],
    }


class PrometheusError(RuntimeError):
    """Prometheus refused a query (the message is its own)."""


def _api(url: str, timeout: float = 10.0) -> Any:
    status, body, _ = http_get(url, timeout=timeout)
    answer = json.loads(body) if body else {}
    if status != 200 or answer.get("status") != "success":
        raise PrometheusError(f"{url}: HTTP {status}: {answer.get('error', body[:300])}")
    return answer["data"]


def _binary(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        raise RuntimeError(f"{name} is not installed: run ci/install-deps.sh (Debian {name})")
    return binary


@dataclass
class Alertmanager(Supervised):
    """Alertmanager with one route: every alert to `webhook` (a URL), if given."""

    port: int = field(default_factory=held_port)
    webhook: str = ""

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Alertmanager:
        work = self.log_path.parent / self.name
        work.mkdir(parents=True, exist_ok=True)
        receiver: dict[str, Any] = {"name": "default"}
        if self.webhook:
            receiver["webhook_configs"] = [{"url": self.webhook, "send_resolved": True}]
        config = {
            "route": {
                "receiver": "default",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "5s",
                "repeat_interval": "1h",
            },
            "receivers": [receiver],
        }
        (work / "alertmanager.yml").write_text(yaml.safe_dump(config))
        command = [
            _binary(ALERTMANAGER),
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--cluster.listen-address=",  # one instance: no gossip port
            "--log.level=warn",
        ]
        self.spawn(command, os.environ)
        self.wait_answering(f"{self.url}/-/ready")
        return self

    def alerts(self) -> list[dict[str, Any]]:
        _, body, _ = http_get(f"{self.url}/api/v2/alerts")
        return list(json.loads(body))


@dataclass
class Prometheus(Supervised):
    """Prometheus with the given scrape jobs and rules, evaluating every `interval`."""

    port: int = field(default_factory=held_port)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(
        self,
        jobs: list[dict[str, Any]],
        rules: Mapping[str, Any] | None = None,
        interval: str = "1s",
        alertmanager: Alertmanager | None = None,
    ) -> Prometheus:
        work = self.log_path.parent / self.name
        work.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": jobs,
        }
        if rules is not None:
            (work / "rules.yml").write_text(yaml.safe_dump(dict(rules), sort_keys=False))
            config["rule_files"] = [str(work / "rules.yml")]
        if alertmanager is not None:
            targets = [f"{LOOPBACK}:{alertmanager.port}"]
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": targets}]}]}
        (work / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        command = [
            _binary(PROMETHEUS),
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--log.level=warn",
        ]
        self.spawn(command, os.environ)
        self.wait_answering(f"{self.url}/-/ready")
        return self

    def wait_targets_up(self, timeout: float = 30.0) -> None:
        """Until every target was scraped and answered."""
        deadline = time.monotonic() + timeout
        while True:
            targets = _api(f"{self.url}/api/v1/targets")["activeTargets"]
            if targets and all(t["health"] == "up" for t in targets):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"targets not up within {timeout:.0f}s: {targets}")
            time.sleep(0.5)

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(
            _api(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))["result"]
        )

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """`/api/v1/query_range`: [{"metric": labels, "values": [[t, "value"], ...]}, ...]."""
        params = {"query": expr, "start": start, "end": end, "step": step}
        return list(
            _api(f"{self.url}/api/v1/query_range?" + urllib.parse.urlencode(params))["result"]
        )

    def labels(self, metric: str) -> list[str]:
        """The label names the series of `metric` have."""
        query = urllib.parse.urlencode({"match[]": metric})
        return list(_api(f"{self.url}/api/v1/labels?{query}"))

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts, as Prometheus' rule manager sees them."""
        return list(_api(f"{self.url}/api/v1/alerts")["alerts"])


def grafana_variables(expr: str, rate_interval: str) -> str:
    """A dashboard query as Prometheus takes it: Grafana's `$__rate_interval` replaced."""
    return expr.replace("$__rate_interval", rate_interval)


def start_monitoring(
    stack: LocalStack, interval: str | None = None, prometheus_port: int = 0
) -> Prometheus:
    """Prometheus scraping `stack` as the chart's ServiceMonitors say (every `interval`, or
    their own), with the chart's rules and etcd's own metrics."""
    objects = render_chart()
    every = interval or next(
        e.get("interval", "30s")
        for o in objects
        if o["kind"] == "ServiceMonitor"
        for e in o["spec"]["endpoints"]
    )
    jobs = [*scrape_configs(objects, stack_targets(stack), every), etcd_job(stack, every)]
    prometheus = Prometheus(
        "prometheus", stack.base_dir / "prometheus.log", port=prometheus_port or held_port()
    )
    return prometheus.start(jobs, rule_groups(objects), interval=every)


class Load:
    """`clients` threads calling `urls` in turn until stop(); `answers`: count by status
    (0: no answer)."""

    def __init__(self, urls: list[str], clients: int = 6) -> None:
        self.answers: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._call, args=(urls, i), daemon=True) for i in range(clients)
        ]
        for thread in self._threads:
            thread.start()

    def _call(self, urls: list[str], offset: int) -> None:
        pool = urllib3.PoolManager(maxsize=1, retries=False, timeout=5.0)
        index = offset
        while not self._stop.is_set():
            url = urls[index % len(urls)]
            index += 1
            try:
                status = pool.request("GET", url).status
            except urllib3.exceptions.HTTPError:
                status = 0
            with self._lock:
                self.answers[status] = self.answers.get(status, 0) + 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

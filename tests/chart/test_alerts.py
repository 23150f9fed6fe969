"""The chart's PrometheusRule: off by default; valid rules (promtool check); every alert fires
when it should and stays quiet when it should not (promtool test rules, alerts.test.yaml,
over the rules as the chart renders them); every alert has its runbook; and on the local
stack, a real Prometheus fires the etcd alert when etcd dies under load and a real
Alertmanager receives it."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from monitoring import (
    Alertmanager,
    Load,
    Prometheus,
    etcd_job,
    render_chart,
    rule_groups,
    scrape_configs,
    stack_targets,
)

from localstack import LOOPBACK, LocalStack, running
from tests.ci.doclinks import anchors
from tests.support.monitoring import promtool, require_prometheus
from tests.support.wait import wait_until

from .hardening import render
from .rendering import ROOT

TESTS = Path(__file__).with_name("alerts.test.yaml")
OPERATIONS = ROOT / "docs" / "operations.md"
ON = {"metrics": {"prometheusRule": {"enabled": True}}}


def alerts(rules: dict[str, Any]) -> list[str]:
    return [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rule_groups(render(ON))))
    return path


def test_off_by_default() -> None:
    assert not [o for o in render() if o["kind"] == "PrometheusRule"]


def test_rules_are_valid(rules_file: Path) -> None:
    out = promtool("check", "rules", str(rules_file))
    assert re.search(r"SUCCESS: \d+ rules found", out), out


def test_every_alert_fires_and_stays_quiet_as_tested(rules_file: Path, tmp_path: Path) -> None:
    tests = yaml.safe_load(TESTS.read_text())
    tests["rule_files"] = [str(rules_file)]
    # Each alert is tested firing and quiet.
    cases = [case for test in tests["tests"] for case in test["alert_rule_test"]]
    for alert in alerts(yaml.safe_load(rules_file.read_text())):
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in mine), f"{alert}: never tested firing"
        assert any(not case["exp_alerts"] for case in mine), f"{alert}: never tested quiet"
    path = tmp_path / "alerts.test.yaml"
    path.write_text(yaml.safe_dump(tests))
    out = promtool("test", "rules", str(path))
    assert "SUCCESS" in out, out


def test_a_broken_expectation_fails(rules_file: Path, tmp_path: Path) -> None:
    """promtool test rules catches a wrong expectation (so the passing run above means it)."""
    tests = yaml.safe_load(TESTS.read_text())
    tests["rule_files"] = [str(rules_file)]
    case = tests["tests"][0]["alert_rule_test"][1]
    case["exp_alerts"][0]["exp_labels"]["job"] = "hashstack-persistence"
    path = tmp_path / "broken.test.yaml"
    path.write_text(yaml.safe_dump(tests))
    with pytest.raises(AssertionError, match="HashstackErrorBudgetBurnFast"):
        promtool("test", "rules", str(path))


def test_every_alert_has_a_runbook(rules_file: Path) -> None:
    text = OPERATIONS.read_text()
    rules = yaml.safe_load(rules_file.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
            assert anchor in anchors(text), f"{rule['alert']}: no section #{anchor} there"


def test_alert_labels_and_durations_come_from_values() -> None:
    values = {
        "metrics": {
            "prometheusRule": {
                "enabled": True,
                "alertLabels": {"team": "numbers", "severity": "ignored"},
                "for": {"etcdUnavailable": "7m"},
                "slo": {"availability": 0.99},
            }
        }
    }
    (rule,) = [o for o in render(values) if o["kind"] == "PrometheusRule"]
    by_name = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert by_name["HashstackEtcdUnavailable"]["for"] == "7m"
    assert by_name["HashstackEtcdUnavailable"]["labels"] == {
        "severity": "critical",
        "team": "numbers",
    }
    assert "(1 - 0.99)" in by_name["HashstackErrorBudgetBurnFast"]["expr"]


class _Receiver(BaseHTTPRequestHandler):
    """Alertmanager's webhook: each notification's JSON body into `server.received`."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer((LOOPBACK, 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.etcd
def test_etcd_killed_under_load_fires_the_alert_into_alertmanager(
    tmp_path: Path, webhook: ThreadingHTTPServer
) -> None:
    """The chart's rules (its own `for` value shortened to 5s, the 1m rate windows as they
    ship) in a real Prometheus scraping the stack every second: while etcd runs nothing
    fires; once it is killed, HashstackEtcdUnavailable fires and Alertmanager, which
    Prometheus sends it to, passes it to its receiver."""
    require_prometheus()
    objects = render_chart("metrics.prometheusRule.for.etcdUnavailable=5s")
    stack = LocalStack(tmp_path, block_size=20)
    received: list[dict[str, Any]] = webhook.received  # type: ignore[attr-defined]
    with running(stack):
        alertmanager = Alertmanager(
            "alertmanager",
            tmp_path / "alertmanager.log",
            webhook=f"http://{LOOPBACK}:{webhook.server_address[1]}/",
        ).start()
        jobs = [*scrape_configs(objects, stack_targets(stack), "1s"), etcd_job(stack, "1s")]
        prometheus = Prometheus("prometheus", tmp_path / "prometheus.log")
        load = Load([f"http://{LOOPBACK}:{stack.hash_port}/"], clients=4)
        try:
            prometheus.start(jobs, rule_groups(objects), alertmanager=alertmanager)
            prometheus.wait_targets_up()
            time.sleep(10)
            assert not firing(prometheus), "an alert fired while everything was up"
            stack.etcd.kill()
            killed = time.monotonic()
            # The 1m rate window must lose its last good call, then 5s of `for`.
            wait_until(
                lambda: "HashstackEtcdUnavailable" in firing(prometheus),
                120,
                "HashstackEtcdUnavailable firing in Prometheus",
            )
            fired_after = time.monotonic() - killed
            wait_until(
                lambda: "HashstackEtcdUnavailable" in notified(received),
                30,
                "the alert reaching Alertmanager's receiver",
            )
            (alert,) = [
                a
                for a in alertmanager.alerts()
                if a["labels"]["alertname"] == "HashstackEtcdUnavailable"
            ]
            assert alert["status"]["state"] == "active"
            assert alert["labels"]["namespace"] == "hashstack"
            assert alert["annotations"]["runbook_url"].endswith("#hashstacketcdunavailable")
            assert 55 < fired_after < 120, fired_after
            assert load.answers.get(503), load.answers  # callers saw the outage too
        finally:
            load.stop()
            prometheus.stop()
            alertmanager.stop()


def firing(prometheus: Prometheus) -> set[str]:
    return {a["labels"]["alertname"] for a in prometheus.alerts() if a["state"] == "firing"}


def notified(received: list[dict[str, Any]]) -> set[str]:
    return {
        a["labels"]["alertname"]
        for n in received
        for a in n["alerts"]
        if n["status"] == "firing" and a["status"] == "firing"
    }

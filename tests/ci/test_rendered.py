"""ci/rendered.py, where the cluster suite and the scripts that talk to a release take names and
ports from: checked against the chart as real helm renders it, with changed values too (so a
literal could not pass)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from rendered import CHART, Port, Rendered

from tests.support.helm import installed_helms
from tests.support.paths import ROOT

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


@pytest.fixture(autouse=True)
def _helm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The helm ci/install-tools.sh pins, whatever PATH holds."""
    monkeypatch.setenv("HELM", str(installed_helms()["helm"]))


def test_api_and_metrics_ports_follow_the_values() -> None:
    default = Rendered.of()
    api = default.api_port("hash")
    env = default.env("hash")
    # The readiness probe's port is the one the image serves its API on (its PORT).
    assert api.number == int(env["PORT"])
    assert api.number != default.metrics_port("hash").number
    assert default.service_port("hash", api).number == VALUES["hash"]["service"]["port"]
    assert default.metrics_port("persistence").number == VALUES["metrics"]["port"]
    moved = Rendered.of({"metrics.port": "9191", "hash.service.port": "8000"})
    assert moved.metrics_port("persistence").number == 9191
    assert moved.service_port("hash", moved.api_port("hash")) == Port("http", 8000)
    assert moved.service_port("persistence", moved.metrics_port("persistence")).number == 9191


def test_names_selectors_and_images_of_a_release() -> None:
    rendered = Rendered.of(release="other")
    assert rendered.name("Deployment", "persistence") == "other-persistence"
    assert rendered.name("StatefulSet", "etcd") == "other-etcd"
    # The headless Service is left out: the one a client calls.
    assert rendered.service("persistence")["metadata"]["name"] == "other-persistence"
    workload = rendered.workload("hash")
    labels = workload["spec"]["template"]["metadata"]["labels"]
    assert rendered.selector("hash").items() <= labels.items()
    assert rendered.image("hash").endswith("/hashstack/hash:0.1.0")
    assert rendered.test_pods("etcd") == ["other-etcd-test-health"]
    with pytest.raises(LookupError):
        rendered.name("Deployment", "nothing")


def test_host_ports_and_kept_claims_by_topology() -> None:
    registry = Rendered.of(values_files=(ROOT / "ci" / "registry-flow" / "registry.yaml",))
    assert registry.host_ports("registry-proxy") == [(5000, "127.0.0.1")]
    assert Rendered.of({"registry.proxy.hostPort": "5123"}).host_ports("registry-proxy") == [
        (5123, None)
    ]
    kept, prefixes = Rendered.of().kept_claims()
    assert prefixes == ["data-hashstack-etcd-"]
    assert kept == {"hashstack-registry"}  # registry.persistence.keepOnUninstall: true
    assert Rendered.of({"registry.persistence.keepOnUninstall": "false"}).kept_claims()[0] == set()


def test_the_command_line_prints_one_fact() -> None:
    def query(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "ci" / "rendered.py"), *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert query("--release", "r", "name", "Service", "hash") == "r-hash"
    assert query("service-port", "registry") == "5000"
    assert query("--set", "hash.service.port=81", "service-port", "hash") == "81"
    assert query("service-port-ref", "hash") == "http"
    assert query("--set", "registry.proxy.hostPort=5002", "host-port", "registry-proxy") == "5002"
    missing = subprocess.run(
        [sys.executable, str(ROOT / "ci" / "rendered.py"), "name", "Service", "nothing"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "0 Service objects of nothing" in missing.stderr
    assert CHART.is_dir()

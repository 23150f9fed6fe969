"""`make e2e` without any cluster: a clear message and a non-zero exit, nothing built; and
what it would run on kind or another cluster (DRY_RUN=1), with the images it would deploy
rendered by the real helm."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support.helm import parse_docs, run_helm
from tests.support.paths import ROOT

from .test_cluster_suite import unreachable_kubeconfig


@pytest.mark.slow
def test_e2e_without_a_cluster_says_so_and_fails(tmp_path: Path) -> None:
    kubeconfig = unreachable_kubeconfig(tmp_path)
    # E2E_CLUSTER=current: never create a kind cluster from a test, even where kind exists.
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "E2E_CLUSTER": "current"}
    proc = subprocess.run(
        ["make", "--no-print-directory", "e2e"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "e2e: no reachable cluster" in proc.stderr, proc.stderr[-2000:]
    assert "ci/images.sh" not in proc.stderr  # failed before building anything


def test_e2e_rejects_an_unknown_mode() -> None:
    env = {**os.environ, "E2E_CLUSTER": "minikube-please"}
    proc = subprocess.run(
        ["ci/e2e.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "E2E_CLUSTER must be auto, kind or current" in proc.stderr


def dry_run(**env: str) -> list[list[str]]:
    """ci/e2e.sh's commands, printed by DRY_RUN=1 (nothing runs, no cluster needed)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("E2E_", "KIND_"))}
    proc = subprocess.run(
        ["ci/e2e.sh"], cwd=ROOT, env={**environ, "DRY_RUN": "1", "TAG": "abc", **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [shlex.split(line) for line in proc.stdout.splitlines() if line.strip()]


def find(commands: list[list[str]], *prefix: str) -> list[list[str]]:
    return [c for c in commands if c[: len(prefix)] == list(prefix)]


def rendered_images(set_args: list[str]) -> dict[str, str]:
    """Container name -> image of every workload `helm template` makes with these arguments."""
    out = run_helm("helm", "template", "hashstack", "charts/hashstack", *set_args, cwd=ROOT).stdout
    images = {}
    for doc in parse_docs(out):
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                images[f"{doc['metadata']['name']}/{container['name']}"] = container["image"]
    return images


def test_e2e_on_kind_points_only_the_three_services_at_the_pushed_images() -> None:
    commands = dry_run(E2E_CLUSTER="kind", E2E_MARK="cluster and not ha")
    assert find(commands, "ci/kind/cluster.sh", "up")
    # Both tags are pushed to kind's registry; localhost:5000 is left to the node proxy.
    pushes = find(commands, "env")
    assert ["env", "TAG=abc", "ci/images.sh", "push", "localhost:5001"] in pushes
    assert ["env", "TAG=abc-next", "ci/images.sh", "push", "localhost:5001"] in pushes
    assert not [c for c in commands if any("global.imageRegistry" in a for a in c)]
    (release,) = find(commands, "helm", "upgrade", "--install")
    images = rendered_images(release[release.index("--timeout") + 2 :])
    for service in ("hello", "persistence", "hash"):
        assert images[f"hashstack-{service}/{service}"] == f"localhost:5001/hashstack/{service}:abc"
    # Third-party images keep the chart's own references: nothing pushes them anywhere.
    defaults = rendered_images([])
    for name in (
        "hashstack-etcd/etcd",
        "hashstack-registry/registry",
        "hashstack-registry-proxy/proxy",
    ):
        assert images[name] == defaults[name]
        assert not images[name].startswith("localhost"), images[name]


def test_e2e_runs_ct_install_upgrade_with_the_same_images() -> None:
    commands = dry_run(E2E_CLUSTER="kind")
    assert find(commands, "ct", "lint", "--config", "ci/ct.yaml")
    (install,) = find(commands, "ct", "install")
    assert "--upgrade" in install
    extra = shlex.split(install[install.index("--helm-extra-set-args") + 1])
    (release,) = find(commands, "helm", "upgrade", "--install")
    assert extra[:-2] == release[release.index("--timeout") + 2 :]
    # No Prometheus Operator CRDs on kind: ha-values.yaml's ServiceMonitors are switched off.
    assert extra[-2:] == ["--set", "metrics.serviceMonitor.enabled=false"]


def test_e2e_hands_the_suite_its_images_tags_and_marker() -> None:
    commands = dry_run(
        E2E_CLUSTER="current", REGISTRY="push.example:5000", PULL_REGISTRY="node.example:5000",
        E2E_MARK="ha", E2E_CT="0", E2E_RELEASE="0",
    )  # fmt: skip
    assert not find(commands, "ci/kind/cluster.sh")
    assert ["env", "TAG=abc", "ci/images.sh", "push", "push.example:5000"] in commands
    (suite,) = [c for c in commands if "ci/test.sh" in c]
    assert suite[suite.index("ci/test.sh") :] == ["ci/test.sh", "-m", "ha", "-s", "tests/cluster"]
    assert "PYTEST_WORKERS=0" in suite  # one cluster, one release: no parallel workers
    assert {
        "HASHSTACK_REQUIRE_CLUSTER=1",
        "HASHSTACK_E2E_REGISTRY=node.example:5000",
        "HASHSTACK_E2E_TAG=abc",
        "HASHSTACK_E2E_NEXT_TAG=abc-next",
    } <= set(suite)
    assert not find(commands, "ct")
    assert not find(commands, "helm")

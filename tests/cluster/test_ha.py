"""The HA scenario (ci/ha-values.yaml) on several nodes: it installs with --wait, spreads
over the workers, and a node is drained under constant load through hash with no duplicate
and the failed-request count printed. Needs 3 schedulable workers (ci/kind/cluster.yaml);
the workflow's multi-node job runs it (E2E_MARK=ha)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pykube
import pytest
from pytest_helm_charts.k8s.deployment import wait_for_deployments_to_run
from pytest_helm_charts.k8s.stateful_set import wait_for_stateful_sets_to_run

from .helpers import SERVICES, Ledger
from .kube import CHART, RELEASE, HashClient, Helm, Rendered, image_overrides, render
from .load import MAX_FAILED, under_load

pytestmark = pytest.mark.ha

HA_VALUES = CHART / "ci" / "ha-values.yaml"
WAIT = 900


def values() -> dict[str, str]:
    # No ServiceMonitor CRD on a bare cluster; the images come from where ci/e2e.sh pushed them.
    return {
        **image_overrides(),
        "registry.enabled": "false",
        "metrics.serviceMonitor.enabled": "false",
    }


def rendered() -> Rendered:
    """The HA release as installed here: every name below comes from it."""
    return render(values(), values_files=(HA_VALUES,))


def schedulable_workers(api: pykube.HTTPClient) -> list[str]:
    names = []
    for node in pykube.Node.objects(api):
        taints = node.obj["spec"].get("taints", [])
        if node.obj["spec"].get("unschedulable") or any(
            t.get("effect") == "NoSchedule" for t in taints
        ):
            continue
        names.append(node.name)
    return sorted(names)


def kubectl(kube_config: str, *args: str, timeout: float = 600) -> str:
    proc = subprocess.run(
        ["kubectl", "--kubeconfig", kube_config, *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def ha_release(helm: Helm, api: pykube.HTTPClient, namespace: str) -> Iterator[str]:
    workers = schedulable_workers(api)
    if len(workers) < 3:
        pytest.skip(f"the HA scenario needs 3 schedulable workers, this cluster has {workers}")
    helm.upgrade_install(values(), values_files=(HA_VALUES,))
    yield RELEASE
    helm.run("uninstall", RELEASE, "--wait", "--timeout", "5m")


def pods_of(api: pykube.HTTPClient, namespace: str, name: str) -> list[pykube.Pod]:
    selector = rendered().selector(name)
    return list(pykube.Pod.objects(api, namespace=namespace).filter(selector=selector))


def test_ha_installs_and_spreads_over_the_workers(
    ha_release: str, api: pykube.HTTPClient, namespace: str
) -> None:
    wait_for_stateful_sets_to_run(api, [rendered().name("StatefulSet", "etcd")], namespace, WAIT)
    wait_for_deployments_to_run(
        api, [rendered().name("Deployment", s) for s in SERVICES], namespace, WAIT
    )
    for name in SERVICES:
        nodes = [p.obj["spec"].get("nodeName") for p in pods_of(api, namespace, name) if p.ready]
        assert len(nodes) == 3, f"{name}: {nodes}"
        assert len(set(nodes)) == 3, f"{name} is not spread over 3 nodes: {nodes}"
    budgets = {p.name for p in pykube.PodDisruptionBudget.objects(api, namespace=namespace)}
    assert {rendered().name("PodDisruptionBudget", s) for s in ("hash", "persistence")} <= budgets


def test_draining_a_node_under_load(
    ha_release: str,
    api: pykube.HTTPClient,
    namespace: str,
    kube_config: str,
    hash_client: HashClient,
    ledger: Ledger,
) -> None:
    (victim, *_) = sorted(
        p.obj["spec"]["nodeName"] for p in pods_of(api, namespace, "hash") if p.ready
    )
    try:
        with under_load(hash_client, ledger, f"kubectl drain {victim} under load") as run:
            # PDBs decide the pace; DaemonSets (e.g. kindnet) stay.
            kubectl(
                kube_config, "drain", victim, "--ignore-daemonsets", "--delete-emptydir-data",
                "--timeout=10m",
            )  # fmt: skip
        left = [
            p.name
            for p in pods_of(api, namespace, "hash")
            if p.obj["spec"].get("nodeName") == victim
        ]
        assert not left, f"hash pods still on the drained node: {left}"
    finally:
        kubectl(kube_config, "uncordon", victim)
    assert ledger.duplicates() == {}
    assert run.failed <= MAX_FAILED, run.summary()

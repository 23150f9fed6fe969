"""etcd scaling on a real cluster: `helm upgrade --reuse-values --set etcd.replicaCount=N`
for 1 -> 3 -> 1 while clients take numbers through hash the whole time. No number may come
twice, member 0 is never restarted, and `helm test` finds every member healthy after each
change. The loopback version of these scenarios runs everywhere:
tests/chart/test_etcd_membership.py. Runs under `make e2e`; skipped here: no cluster."""

from __future__ import annotations

import pykube
import pytest
from pytest_helm_charts.k8s.stateful_set import wait_for_stateful_sets_to_run

from .helpers import Ledger
from .kube import CHART, RELEASE, HashClient, Helm, Rendered, image_overrides, render
from .load import under_load

WAIT = 600


def rendered() -> Rendered:
    """The release as installed here: the StatefulSet's and the test Pod's names come from it."""
    return render({**image_overrides(), "etcd.replicaCount": "1"})


def etcd_set() -> str:
    return rendered().name("StatefulSet", "etcd")


def member_zero(api: pykube.HTTPClient, namespace: str) -> tuple[str, int]:
    """Member 0's pod UID and restart count: both stay put while the cluster is resized."""
    pod = pykube.Pod.objects(api, namespace=namespace).get(name=f"{etcd_set()}-0")
    statuses = pod.obj["status"].get("containerStatuses", [])
    return pod.metadata["uid"], sum(s.get("restartCount", 0) for s in statuses)


@pytest.fixture(scope="module")
def release(helm: Helm, api: pykube.HTTPClient, namespace: str) -> str:
    helm.upgrade_install({**image_overrides(), "etcd.replicaCount": "1"})
    wait_for_stateful_sets_to_run(api, [etcd_set()], namespace, WAIT)
    return RELEASE


@pytest.mark.parametrize("size", [3, 1])
def test_scaling_etcd_one_three_one_under_load(
    release: str,
    size: int,
    helm: Helm,
    api: pykube.HTTPClient,
    namespace: str,
    hash_client: HashClient,
    ledger: Ledger,
) -> None:
    before = member_zero(api, namespace)
    with under_load(hash_client, ledger, f"etcd.replicaCount -> {size}") as run:
        helm.run(
            "upgrade", RELEASE, str(CHART), "--reuse-values", "--wait", "--timeout", "10m",
            "--set", f"etcd.replicaCount={size}",
        )  # fmt: skip
        wait_for_stateful_sets_to_run(api, [etcd_set()], namespace, WAIT)
    [health] = rendered().test_pods("etcd")
    helm.run("test", RELEASE, "--filter", f"name={health}", timeout=300)
    assert ledger.duplicates() == {}
    assert run.calls > run.failed
    assert member_zero(api, namespace) == before  # scaling never restarted member 0

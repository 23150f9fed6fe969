"""The chart on a real cluster, end to end, in order: install, serve, survive pod loss,
scale, upgrade and roll back, helm test, uninstall. Every number any call returns goes
into one ledger, and no number may ever appear twice (that is the product's promise).

Runs under `make e2e` (kind, or the current kube context); skipped here: no cluster."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pykube
import pytest
from pytest_helm_charts.k8s.deployment import wait_for_deployments_to_run
from pytest_helm_charts.k8s.stateful_set import wait_for_stateful_sets_to_run

from tests.support.wait import wait_until as support_wait_until

from .helpers import SERVICES as SERVICE_NAMES
from .helpers import Ledger, kept_claims, leftovers
from .kube import RELEASE, HashClient, Helm, Rendered, image_overrides, render
from .load import MAX_FAILED, under_load

WAIT = 600  # seconds for a rollout on a loaded CI runner
THREADS = 8


def base_values() -> dict[str, str]:
    return {**image_overrides(), "persistence.replicaCount": "3"}


def rendered() -> Rendered:
    """The release as installed here: every name below comes from it."""
    return render(base_values())


def deployment_of(component: str) -> str:
    return rendered().name("Deployment", component)


def etcd_set() -> str:
    return rendered().name("StatefulSet", "etcd")


def services() -> list[str]:
    return [deployment_of(name) for name in SERVICE_NAMES]


def calls(client: HashClient, ledger: Ledger, count: int) -> list[int]:
    """`count` concurrent calls; every status goes into the ledger; returns the numbers."""
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: client.call(), range(count)))
    for status, number in results:
        ledger.record(status, number)
    return [n for s, n in results if s == 200 and n is not None]


def wait_until(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    try:
        support_wait_until(check, timeout, what, interval=2)
    except TimeoutError as error:
        pytest.fail(str(error))


def all_running(api: pykube.HTTPClient, namespace: str) -> None:
    wait_for_stateful_sets_to_run(api, [etcd_set()], namespace, WAIT)
    wait_for_deployments_to_run(api, services(), namespace, WAIT)


def deployment(api: pykube.HTTPClient, namespace: str, name: str) -> pykube.Deployment:
    return pykube.Deployment.objects(api, namespace=namespace).get(name=name)


def ready_pods(api: pykube.HTTPClient, namespace: str, component: str) -> list[pykube.Pod]:
    pods = pykube.Pod.objects(api, namespace=namespace).filter(
        selector=rendered().selector(component)
    )
    return [p for p in pods if p.ready and not p.metadata.get("deletionTimestamp")]


@pytest.fixture(scope="module")
def release(helm: Helm, api: pykube.HTTPClient, namespace: str) -> str:
    helm.upgrade_install(base_values())
    return RELEASE


def test_install_runs_every_workload(release: str, api: pykube.HTTPClient, namespace: str) -> None:
    all_running(api, namespace)
    assert deployment(api, namespace, deployment_of("persistence")).replicas == 3


def test_hash_answers_through_the_api_server_proxy(
    release: str, hash_client: HashClient, ledger: Ledger
) -> None:
    status, number = hash_client.call()
    assert status == 200, f"hash answered {status} through {hash_client.url}"
    assert number is not None
    ledger.record(status, number)


def test_1000_calls_across_three_persistence_replicas_are_unique(
    release: str, api: pykube.HTTPClient, namespace: str, hash_client: HashClient, ledger: Ledger
) -> None:
    assert len(ready_pods(api, namespace, "persistence")) == 3
    numbers = calls(hash_client, ledger, 1000)
    assert len(numbers) == 1000, f"failed calls: {dict(ledger.failures)}"
    assert len(set(numbers)) == 1000
    assert ledger.duplicates() == {}


def test_deleting_etcd_and_persistence_pods_mid_run(
    release: str, api: pykube.HTTPClient, namespace: str, hash_client: HashClient, ledger: Ledger
) -> None:
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            calls(hash_client, ledger, THREADS)

    def etcd_back(old_uid: str) -> bool:
        pod = pykube.Pod.objects(api, namespace=namespace).get_or_none(name=f"{etcd_set()}-0")
        return pod is not None and pod.metadata["uid"] != old_uid and pod.ready

    def persistence_back(old_uid: str) -> bool:
        pods = ready_pods(api, namespace, "persistence")
        return len(pods) == 3 and old_uid not in {p.metadata["uid"] for p in pods}

    before = len(ledger.numbers)
    worker = threading.Thread(target=hammer, daemon=True)
    worker.start()
    try:
        wait_until("calls before the deletions", lambda: len(ledger.numbers) > before + 100)
        etcd_pod = pykube.Pod.objects(api, namespace=namespace).get(name=f"{etcd_set()}-0")
        persistence_pod = ready_pods(api, namespace, "persistence")[0]
        etcd_pod.delete()
        persistence_pod.delete()
        # Recovery: a new etcd member on the same data, three ready persistence pods again
        # (none of them the deleted one), and calls that keep succeeding.
        wait_until("a new etcd pod", lambda: etcd_back(etcd_pod.metadata["uid"]))
        wait_until("3 persistence pods", lambda: persistence_back(persistence_pod.metadata["uid"]))
        all_running(api, namespace)
        after_recovery = len(ledger.numbers)
        wait_until("calls after recovery", lambda: len(ledger.numbers) > after_recovery + 100)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert ledger.duplicates() == {}
    fresh = calls(hash_client, ledger, 50)
    assert len(fresh) == 50, f"hash has not recovered: {dict(ledger.failures)}"
    assert ledger.duplicates() == {}


def test_scale_persistence_1_3_1(
    release: str,
    helm: Helm,
    api: pykube.HTTPClient,
    namespace: str,
    hash_client: HashClient,
    ledger: Ledger,
) -> None:
    # Through helm, as a user of the chart would: `kubectl scale` on a Helm-owned Deployment
    # is drift that the next server-side-applied upgrade (Helm 4) reports as a conflict.
    for replicas in (1, 3, 1):
        helm.upgrade_install({**base_values(), "persistence.replicaCount": str(replicas)})
        wait_for_deployments_to_run(api, [deployment_of("persistence")], namespace, WAIT)
        wait_until(
            f"{replicas} ready persistence pods",
            lambda n=replicas: len(ready_pods(api, namespace, "persistence")) == n,
        )
        assert deployment(api, namespace, deployment_of("persistence")).replicas == replicas
        assert len(calls(hash_client, ledger, 100)) == 100, f"at {replicas} replicas"
        assert ledger.duplicates() == {}


def test_helm_upgrade_with_changed_values_then_rollback(
    release: str,
    helm: Helm,
    api: pykube.HTTPClient,
    namespace: str,
    hash_client: HashClient,
    ledger: Ledger,
) -> None:
    before = {
        name: deployment(api, namespace, deployment_of(name)).replicas for name in SERVICE_NAMES
    }
    revision = helm.history()[-1]["revision"]
    changed = {f"{name}.replicaCount": str(before[name] + 1) for name in ("hello", "hash")}
    helm.upgrade_install({**base_values(), **changed})
    all_running(api, namespace)
    assert helm.history()[-1]["revision"] == revision + 1
    for name in ("hello", "hash"):
        assert deployment(api, namespace, deployment_of(name)).replicas == before[name] + 1
    assert len(calls(hash_client, ledger, 100)) == 100

    helm.run("rollback", RELEASE, str(revision), "--wait", "--timeout", "10m")
    all_running(api, namespace)
    last = helm.history()[-1]
    assert last["revision"] == revision + 2
    assert last["status"] == "deployed"
    assert {
        name: deployment(api, namespace, deployment_of(name)).replicas for name in SERVICE_NAMES
    } == before
    assert len(calls(hash_client, ledger, 100)) == 100
    assert ledger.duplicates() == {}


def test_upgrade_to_new_tags_and_config_under_load(
    release: str,
    helm: Helm,
    api: pykube.HTTPClient,
    namespace: str,
    hash_client: HashClient,
    ledger: Ledger,
) -> None:
    """Zero downtime: a new image tag for every service and a changed config value, rolled
    out while hash is called without pause. Prints the failed count and the slowest call."""
    next_tag = os.environ.get("HASHSTACK_E2E_NEXT_TAG", "")
    if not next_tag:
        pytest.skip("HASHSTACK_E2E_NEXT_TAG unset: no second image tag to upgrade to")
    changed = {f"{name}.config.LOG_LEVEL": "warning" for name in SERVICE_NAMES}
    with under_load(hash_client, ledger, "helm upgrade (new tags, LOG_LEVEL) under load") as run:
        helm.upgrade_install({**base_values(), **image_overrides(next_tag), **changed})
        all_running(api, namespace)
    for name in services():
        (container, *_) = deployment(api, namespace, name).obj["spec"]["template"]["spec"][
            "containers"
        ]
        assert container["image"].split("@")[0].endswith(f":{next_tag}"), container["image"]
    assert ledger.duplicates() == {}
    assert run.failed <= MAX_FAILED, run.summary()


def test_helm_test_passes(release: str, helm: Helm) -> None:
    # No --logs: the chart deletes test pods that succeed, and helm then fails to find
    # their logs. helm exits non-zero when a test fails; make sure tests actually ran.
    proc = helm.run("test", RELEASE, "--timeout", "5m")
    assert "Succeeded" in proc.stdout


def test_uninstall_leaves_only_the_pvcs(
    release: str, helm: Helm, api: pykube.HTTPClient, namespace: str
) -> None:
    helm.run("uninstall", RELEASE, "--wait", "--timeout", "5m")
    kinds = [
        pykube.Pod, pykube.Service, pykube.Deployment, pykube.StatefulSet, pykube.DaemonSet,
        pykube.ConfigMap, pykube.Secret, pykube.ServiceAccount, pykube.Job,
        pykube.PodDisruptionBudget, pykube.HorizontalPodAutoscaler, pykube.Ingress,
        pykube.Role, pykube.RoleBinding, pykube.PersistentVolumeClaim,
        pykube.object_factory(api, "networking.k8s.io/v1", "NetworkPolicy"),
    ]  # fmt: skip

    def left() -> list[str]:
        # List answers carry no `kind` per item: take it from the class.
        objs = [
            {"kind": kind.kind, "metadata": o.metadata}
            for kind in kinds
            for o in kind.objects(api, namespace=namespace)
        ]
        return leftovers(objs, keep_kinds=frozenset({"PersistentVolumeClaim"}))

    # Pods end a little after their Deployments; give them their grace period.
    wait_until("the release's objects to go", lambda: left() == [], timeout=180)
    claims = [p.name for p in pykube.PersistentVolumeClaim.objects(api, namespace=namespace)]
    kept_names, prefixes = rendered().kept_claims()
    kept, unexpected = kept_claims(claims, kept_names, prefixes)
    assert not unexpected, f"claims the chart does not keep on uninstall: {unexpected}"
    for prefix in prefixes:
        assert any(n.startswith(prefix) for n in kept), f"{prefix}N should outlive it: {claims}"
    # The claims the chart marks helm.sh/resource-policy: keep (the registry's, by default).
    assert kept_names <= set(kept), f"{kept_names} should outlive the release: {claims}"


def test_reinstall_keeps_counting_from_the_kept_data(
    release: str, helm: Helm, api: pykube.HTTPClient, namespace: str,
    hash_client: HashClient, ledger: Ledger,
) -> None:  # fmt: skip
    helm.upgrade_install(base_values())
    all_running(api, namespace)
    assert len(calls(hash_client, ledger, 100)) == 100
    # A fresh etcd would count from the start again and repeat earlier numbers.
    assert ledger.duplicates() == {}
    helm.run("uninstall", RELEASE, "--wait", "--timeout", "5m")

"""The total-loss restore on a real cluster: numbers taken through hash under load while the
backup CronJob (every minute) takes snapshots, then every etcd member's volume lost, then the
one command (ci/etcd-restore.sh). Every number after it must be above every number before,
and none twice. Names come from the chart as helm renders it. The loopback version, with
upstream etcd 3.5: tests/chart/test_etcd_restore.py. Runs under `make e2e`; skipped here: no
cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any

import pykube
import pytest
from pytest_helm_charts.k8s.stateful_set import wait_for_stateful_sets_to_run

from tests.support.wait import wait_until

from .helpers import Ledger
from .kube import CHART, RELEASE, ROOT, HashClient, Helm, image_overrides, render
from .load import under_load

VALUES = {
    "etcd.replicaCount": "3", "etcd.backup.enabled": "true", "etcd.backup.schedule": "* * * * *",
    "persistence.replicaCount": "2",
}  # fmt: skip
WAIT = 600


def one(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    (found,) = [
        o for o in objects
        if o["kind"] == kind and "etcd" in o["metadata"]["name"]
        and (component is None or o["metadata"]["name"].endswith(f"-{component}"))
    ]  # fmt: skip
    return found


def wait_for(check: Any, timeout: float, what: str) -> None:
    wait_until(check, timeout, what, interval=2)  # the API server, not a local process


def test_total_loss_then_the_one_command(
    helm: Helm, api: pykube.HTTPClient, namespace: str, hash_client: HashClient,
    ledger: Ledger, kube_config: str,
) -> None:  # fmt: skip
    if shutil.which(os.environ.get("KUBECTL", "kubectl")) is None:
        pytest.skip("kubectl is not on PATH (ci/install-tools.sh installs it)")
    objects = list(render(VALUES).objects)
    sts = one(objects, "StatefulSet")
    name, claim = (
        sts["metadata"]["name"],
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
    )
    cronjob = one(objects, "CronJob", "backup")["metadata"]["name"]
    helm.upgrade_install({**image_overrides(), **VALUES})
    helm.run("upgrade", RELEASE, str(CHART), "--reuse-values", "--wait", "--timeout", "10m")
    wait_for_stateful_sets_to_run(api, [name], namespace, WAIT)

    # The CronJob keeps one succeeded Job: count its distinct lastSuccessfulTime instead.
    successes: set[str] = set()

    def two_backups() -> bool:
        cron = pykube.CronJob.objects(api, namespace=namespace).get(name=cronjob)
        last = cron.obj.get("status", {}).get("lastSuccessfulTime")
        if last:
            successes.add(last)
        return len(successes) >= 2

    with under_load(hash_client, ledger, "numbers while two snapshots are taken"):
        wait_for(two_backups, 300, "two successful backup Jobs")
    old = list(ledger.numbers)
    assert old
    assert ledger.duplicates() == {}

    # Every member's volume lost: the pods go, their claims go, the pods come back empty.
    set_replicas = pykube.StatefulSet.objects(api, namespace=namespace).get(name=name)
    set_replicas.scale(0)
    wait_for(lambda: not list(pykube.Pod.objects(api, namespace=namespace).filter(
        selector=sts["spec"]["selector"]["matchLabels"])), WAIT, "etcd's pods gone")  # fmt: skip
    lost = {f"{claim}-{name}-{ordinal}" for ordinal in range(int(VALUES["etcd.replicaCount"]))}
    for lost_claim in sorted(lost):
        pykube.PersistentVolumeClaim.objects(api, namespace=namespace).get(name=lost_claim).delete()

    def claims_left() -> set[str]:  # a new query each time (a Query caches what it read)
        found = pykube.PersistentVolumeClaim.objects(api, namespace=namespace)
        return lost & {c.name for c in found}

    wait_for(lambda: not claims_left(), WAIT, "the member claims gone")
    set_replicas.reload()
    set_replicas.scale(int(VALUES["etcd.replicaCount"]))

    env = {**os.environ, "KUBECONFIG": kube_config}
    run = subprocess.run(
        [str(ROOT / "ci" / "etcd-restore.sh"), "-n", namespace, "--chart", str(CHART), RELEASE],
        env=env, capture_output=True, text=True, timeout=2400,
    )  # fmt: skip
    print(run.stderr)
    assert run.returncode == 0, run.stderr
    assert "counter restored" in run.stderr

    with under_load(hash_client, ledger, "numbers after the restore"):
        time.sleep(10)
    new = ledger.numbers[len(old) :]
    assert new
    assert min(new) > max(old)
    assert ledger.duplicates() == {}
    # The snapshots outlived it all.
    pykube.PersistentVolumeClaim.objects(api, namespace=namespace).get(name=f"{name}-backup")

"""Scale-out on a real cluster: persistence goes from 1 to 3 pods under constant load through
hash, and within 10 s of being ready every pod serves its fair share (0.5x-1.5x), measured from
each pod's own /metrics (hashstack_numbers_issued_total). No call fails, no number comes twice.

Runs under `make e2e` (kind, or the current kube context); skipped here: no cluster."""

from __future__ import annotations

import subprocess
import threading
import time

import pykube
from pytest_helm_charts.k8s.deployment import wait_for_deployments_to_run

from tests.support.numbers import issued_total

from .helpers import Ledger
from .kube import HashClient, Helm, Rendered, image_overrides, render

WAIT = 600  # seconds for a rollout on a loaded CI runner
WINDOW = 10.0  # seconds after the new pods are ready in which the shares are measured
FAIR = (0.5, 1.5)
THREADS = 8


def values(replicas: int) -> dict[str, str]:
    return {
        **image_overrides(),
        "persistence.replicaCount": str(replicas),
        "hash.replicaCount": "2",
    }


def rendered() -> Rendered:
    """The release as installed here (rendered once, when first asked: not at collection)."""
    return render(values(3))


def read_metrics() -> str:
    """Python for the pod's own interpreter that prints its /metrics (on the port the chart
    gives the image as METRICS_PORT): no port-forward, and no NetworkPolicy in the way."""
    url = f"http://127.0.0.1:{rendered().metrics_port('persistence').number}/metrics"
    return (
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
    )


def ready_persistence_pods(api: pykube.HTTPClient, namespace: str) -> list[str]:
    selector = rendered().selector("persistence")
    pods = pykube.Pod.objects(api, namespace=namespace).filter(selector=selector)
    return sorted(p.name for p in pods if p.ready and not p.metadata.get("deletionTimestamp"))


def issued(kube_config: str, namespace: str, pod: str) -> float:
    command = ["kubectl", "--kubeconfig", kube_config, "--namespace", namespace, "exec", pod,
               "--", "python", "-c", read_metrics()]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    found = issued_total(out)
    return 0.0 if found is None else found


def test_scale_persistence_1_to_3_under_load_spreads_the_calls(
    helm: Helm,
    api: pykube.HTTPClient,
    namespace: str,
    kube_config: str,
    hash_client: HashClient,
    ledger: Ledger,
) -> None:
    persistence = rendered().name("Deployment", "persistence")
    helm.upgrade_install(values(1))
    wait_for_deployments_to_run(
        api, [persistence, rendered().name("Deployment", "hash")], namespace, WAIT
    )
    stop = threading.Event()
    lock = threading.Lock()

    def load() -> None:
        while not stop.is_set():
            status, number = hash_client.call()
            with lock:
                ledger.record(status, number)

    threads = [threading.Thread(target=load, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        helm.upgrade_install(values(3))  # --wait: returns once the new pods are ready
        deadline = time.monotonic() + WAIT
        while len(ready_persistence_pods(api, namespace)) < 3:
            assert time.monotonic() < deadline, "3 ready persistence pods never came"
            time.sleep(1)
        pods = ready_persistence_pods(api, namespace)
        before = {pod: issued(kube_config, namespace, pod) for pod in pods}
        time.sleep(WINDOW)
        served = {pod: issued(kube_config, namespace, pod) - before[pod] for pod in pods}
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    total = sum(served.values())
    fair = total / len(served)
    table = "\n".join(f"{pod:<48} {n:>7.0f} {n / fair:>6.2f}x fair" for pod, n in served.items())
    print(f"\nwithin {WINDOW:.0f} s after 3 pods were ready:\n{table}")
    assert total > 0, "no numbers handed out while measuring"
    assert not ledger.failures, dict(ledger.failures)
    assert ledger.duplicates() == {}
    for pod, n in served.items():
        assert FAIR[0] <= n / fair <= FAIR[1], f"{pod}: {n / fair:.2f}x fair share\n{table}"

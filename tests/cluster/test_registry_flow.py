"""The seed's registry flow as a topology (ci/registry-flow.sh, docs/cluster.md): the registry
and its node proxy as one release in a privileged namespace, the application as another in a
namespace that enforces Pod Security "restricted", images pushed through port-forward and
pulled by every node as localhost:5000 through the proxy (no registry mirror in between).
Both ways in: `registry-flow.sh helm` (namespaces of this run) and `registry-flow.sh run`
(skaffold's registry profile, in the namespaces skaffold.yaml fixes)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pykube
import pytest
from pytest_helm_charts.k8s.namespace import ensure_namespace_exists
from pytest_helm_charts.utils import delete_and_wait_for_objects

from tests.support.paths import skaffold_binary

from .helpers import SERVICES, Ledger
from .kube import RELEASE, ROOT, HashClient, Rendered, render

ENFORCE = "pod-security.kubernetes.io/enforce"
KUBELET_PORT = 10250  # Kubernetes' own, not the chart's: the probe's control
TOPOLOGY = ROOT / "ci" / "registry-flow"


def registry_release() -> Rendered:
    """Release 1 as ci/registry-flow.sh installs it: the registry and its node proxy."""
    return render(values_files=(TOPOLOGY / "registry.yaml",))


def app_release() -> Rendered:
    """Release 2 with the chart's own image names (the script changes only their tags)."""
    return render(values_files=(TOPOLOGY / "app.yaml",))


def node_registry() -> str:
    """What every node pulls from: localhost on the proxy's hostPort."""
    [(port, _)] = registry_release().host_ports("registry-proxy")
    return f"localhost:{port}"


def repository(image: str) -> str:
    """hashstack/hash of localhost:5000/hashstack/hash:TAG."""
    return image.split("/", 1)[1].split("@")[0].rsplit(":", 1)[0]


@dataclass(frozen=True)
class Flow:
    mode: str
    app: str
    registry: str
    kubeconfig: str


def skaffold_flow_blocker(api: pykube.HTTPClient) -> str | None:
    """Why the skaffold way cannot run here, or None."""
    if skaffold_binary() is None:
        return "no skaffold binary (ci/install-skaffold.sh installs one)"
    taken = [n for n in ("hashstack", "hashstack-registry")
             if pykube.Namespace.objects(api).get_or_none(name=n) is not None]  # fmt: skip
    if taken:
        return f"namespaces {taken} exist; skaffold.yaml fixes them and this test deletes them"
    return None


def flow_script(flow: Flow, mode: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": flow.kubeconfig,
        "RELEASE": RELEASE,
        "REGISTRY_RELEASE": RELEASE,
        "NAMESPACE": flow.app,
        "REGISTRY_NAMESPACE": flow.registry,
        "TAG": os.environ.get("HASHSTACK_E2E_TAG", ""),
    }
    if not env["TAG"]:
        del env["TAG"]
    proc = subprocess.run(
        [str(ROOT / "ci" / "registry-flow.sh"), mode],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"registry-flow.sh {mode}:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc


def kubectl(flow: Flow, *args: str) -> str:
    proc = subprocess.run(
        ["kubectl", "--kubeconfig", flow.kubeconfig, *args],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module", params=["helm", "run"])
def flow(
    request: pytest.FixtureRequest, kube_config: str, api: pykube.HTTPClient
) -> Iterator[Flow]:
    mode = str(request.param)
    if mode == "helm":
        pid = os.getpid()
        made = Flow(mode, f"hashstack-flow-{pid}", f"hashstack-flow-registry-{pid}", kube_config)
    else:
        blocker = skaffold_flow_blocker(api)
        if blocker:
            pytest.skip(blocker)
        made = Flow(mode, "hashstack", "hashstack-registry", kube_config)
    try:
        flow_script(made, mode)
        yield made
    finally:
        for ns in (made.app, made.registry):
            subprocess.run(
                ["helm", "uninstall", RELEASE, "--namespace", ns, "--kubeconfig", kube_config,
                 "--wait", "--timeout", "5m"],
                capture_output=True, timeout=600, check=False,
            )  # fmt: skip
        spaces = [
            pykube.Namespace.objects(api).get_or_none(name=n) for n in (made.app, made.registry)
        ]
        delete_and_wait_for_objects(
            api, pykube.Namespace, [n for n in spaces if n], timeout_sec=600
        )


def labels(api: pykube.HTTPClient, name: str) -> dict[str, str]:
    return dict(pykube.Namespace.objects(api).get(name=name).labels)


def test_each_release_in_its_own_pod_security_level(flow: Flow, api: pykube.HTTPClient) -> None:
    assert labels(api, flow.registry)[ENFORCE] == "privileged"
    assert labels(api, flow.app)[ENFORCE] == "restricted"
    app_objects = [
        d.name for kind in (pykube.Deployment, pykube.DaemonSet, pykube.Service)
        for d in kind.objects(api, namespace=flow.app)
    ]  # fmt: skip
    assert not [n for n in app_objects if "registry" in n], app_objects


def test_the_app_runs_images_pulled_through_the_node_proxy(
    flow: Flow, api: pykube.HTTPClient
) -> None:
    pods = [
        pod for s in SERVICES
        for pod in pykube.Pod.objects(api, namespace=flow.app).filter(
            selector=app_release().selector(s))
    ]  # fmt: skip
    repositories = {repository(app_release().image(s)) for s in SERVICES}
    images = {
        c["image"] for p in pods if p.ready for c in p.obj["spec"]["containers"]
        if repository(c["image"]) in repositories
    }  # fmt: skip
    assert images, "no ready pod runs a hashstack image"
    assert all(i.startswith(f"{node_registry()}/") for i in images), images
    # The proxy saw the pulls: kind's own registry answers on another port, never the proxy's.
    proxies = ",".join(f"{k}={v}" for k, v in registry_release().selector("registry-proxy").items())
    logs = kubectl(flow, "logs", "-n", flow.registry, "--prefix", "-l", proxies, "--tail=-1")
    hash_repository = repository(app_release().image("hash"))
    assert f"GET /v2/{hash_repository}/manifests/" in logs, logs[-2000:]


def test_hash_answers_in_the_restricted_namespace(flow: Flow, api: pykube.HTTPClient) -> None:
    client, ledger = HashClient(api, flow.app), Ledger()
    for _ in range(20):
        ledger.record(*client.call())
    assert len(ledger.numbers) == 20, dict(ledger.failures)
    assert ledger.duplicates() == {}


def test_the_proxy_binds_the_node_loopback_only(flow: Flow, api: pykube.HTTPClient) -> None:
    """From a pod, every node's address: the proxy's hostPort is closed, the kubelet's 10250 is
    open."""
    (proxy,) = list(pykube.DaemonSet.objects(api, namespace=flow.registry))
    ports = [p for c in proxy.obj["spec"]["template"]["spec"]["containers"] for p in c["ports"]]
    expected = registry_release().host_ports("registry-proxy")
    assert [(p["hostPort"], p.get("hostIP")) for p in ports if "hostPort" in p] == expected
    [(host_port, host_ip)] = expected
    assert host_ip == "127.0.0.1", "ci/registry-flow/registry.yaml binds the node's loopback"
    probe_ns = f"{flow.app}-probe"
    ensure_namespace_exists(api, probe_ns)  # no NetworkPolicy there: only the node decides
    addresses = [
        a["address"] for n in pykube.Node.objects(api)
        for a in n.obj["status"]["addresses"] if a["type"] == "InternalIP"
    ]  # fmt: skip
    hash_repository = repository(app_release().image("hash"))
    image = next(
        c["image"] for p in pykube.Pod.objects(api, namespace=flow.app)
        for c in p.obj["spec"]["containers"] if repository(c["image"]) == hash_repository
    )  # fmt: skip
    script = (
        "import socket\n"
        "def reach(a, p):\n"
        "    try:\n        socket.create_connection((a, p), 3).close(); return 'open'\n"
        "    except OSError: return 'closed'\n"
        f"for a in {addresses!r}: print(a, reach(a, {host_port}), reach(a, {KUBELET_PORT}))\n"
    )
    try:
        kubectl(flow, "run", "probe", "--namespace", probe_ns, "--image", image,
                "--restart=Never", "--command", "--", "python3", "-c", script)  # fmt: skip
        kubectl(flow, "wait", "--namespace", probe_ns, "pod/probe",
                "--for=jsonpath={.status.phase}=Succeeded", "--timeout=300s")  # fmt: skip
        lines = kubectl(flow, "logs", "--namespace", probe_ns, "probe").split("\n")
    finally:
        ns = pykube.Namespace.objects(api).get_or_none(name=probe_ns)
        if ns is not None:
            delete_and_wait_for_objects(api, pykube.Namespace, [ns], timeout_sec=300)
    results = [line.split() for line in lines if line.strip()]
    assert results, "the probe printed nothing"
    assert all(r[1:] == ["closed", "open"] for r in results), results

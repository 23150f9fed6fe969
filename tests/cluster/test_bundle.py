"""The offline bundle on a real cluster: its install.sh installs the registry release in a
namespace of its own, pushes the images and the chart into it through kubectl port-forward, and
installs the application from that registry; hash then answers. Runs under `make e2e`; skipped
here (no cluster). The bundle is $HASHSTACK_BUNDLE, or made here by ci/bundle.sh from the images
ci/e2e.sh built ($HASHSTACK_E2E_TAG)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pykube
import pytest
from pytest_helm_charts.k8s.deployment import wait_for_deployments_to_run

from localstack import free_port

from .helpers import SERVICES, kind_cluster_name
from .kube import RELEASE, ROOT, HashClient, render

# On ci/kind/cluster.sh's nodes localhost:5000 already goes to the kind registry container
# (a containerd hosts.toml): the bundle's registry proxy listens on another node port there.
NODE_PORT = os.environ.get("HASHSTACK_BUNDLE_NODE_PORT", "5001")
WAIT = 600


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = os.environ.get("HASHSTACK_BUNDLE")
    out = tmp_path_factory.mktemp("bundle")
    if not archive:
        archive = str(out / "bundle.tar")
        env = {**os.environ, "TAG": os.environ.get("HASHSTACK_E2E_TAG", "")}
        subprocess.run([str(ROOT / "ci" / "bundle.sh"), archive], check=True, env=env, cwd=ROOT)
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    [root] = out.glob("hashstack-bundle-*")
    return root


@pytest.fixture(scope="module")
def installed(
    bundle_dir: Path, kube_config: str, namespace: str, api: pykube.HTTPClient
) -> Iterator[dict[str, str]]:
    # On kind, step 0 loads the registry's images into the nodes itself: nothing comes from
    # the internet. Elsewhere the nodes are not this machine: they pull what the bundle
    # leaves in node-images/ (the workflow's clusters can).
    kind = kind_cluster_name(pykube.KubeConfig.from_file(kube_config).current_context)
    env = {
        **os.environ,
        **({"KIND_CLUSTER_NAME": kind} if kind and shutil.which("kind") else {}),
        "KUBECONFIG": kube_config,
        "NAMESPACE": namespace,
        "RELEASE": RELEASE,
        "REGISTRY_NAMESPACE": f"{namespace}-registry",
        "LOCAL_PORT": str(free_port()),
        "IMAGE_REGISTRY": f"localhost:{NODE_PORT}",
    }

    def step(*args: str) -> None:
        result = subprocess.run(
            [str(bundle_dir / "install.sh"), *args],
            capture_output=True, text=True, env=env, timeout=WAIT + 300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"install.sh {args}:\n{result.stdout}\n{result.stderr}"

    try:
        step("registry", "--set", f"proxy.hostPort={NODE_PORT}")
        step("push")
        step("app")
        yield env
    finally:
        for release, ns in (
            (RELEASE, namespace),
            ("hashstack-registry", env["REGISTRY_NAMESPACE"]),
        ):
            subprocess.run(
                ["helm", "uninstall", release, "--namespace", ns, "--kubeconfig", kube_config,
                 "--wait"], capture_output=True, check=False, timeout=WAIT,
            )  # fmt: skip
        subprocess.run(
            ["kubectl", "--kubeconfig", kube_config, "delete", "namespace",
             env["REGISTRY_NAMESPACE"], "--ignore-not-found", "--wait=false"],
            capture_output=True, check=False, timeout=60,
        )  # fmt: skip


def test_the_bundle_installs_a_working_release(
    installed: dict[str, str], api: pykube.HTTPClient, namespace: str
) -> None:
    rendered = render({"registry.enabled": "false"})
    services = [rendered.name("Deployment", s) for s in SERVICES]
    wait_for_deployments_to_run(api, services, namespace, WAIT)
    etcd = rendered.name("StatefulSet", "etcd")
    for kind, name in [*(("Deployment", s) for s in services), ("StatefulSet", etcd)]:
        workload = pykube.object_factory(api, "apps/v1", kind).objects(api, namespace=namespace)
        spec = workload.get(name=name).obj["spec"]["template"]["spec"]
        # Every image of the release, etcd's too, through the bundle registry's node proxy.
        for image in {c["image"] for c in spec["containers"] + spec.get("initContainers", [])}:
            assert image.startswith(f"{installed['IMAGE_REGISTRY']}/"), image
    status, number = HashClient(api, namespace).call()
    assert status == 200
    assert number is not None

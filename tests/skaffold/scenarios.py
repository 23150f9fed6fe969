"""The skaffold rung's scenarios: skaffold.yaml as Skaffold would apply it in each (kube
context, command, profiles, default repo), rendered by the real helm with exactly the arguments
Skaffold would give it. The fixtures (tests/skaffold/conftest.py) cache one render each."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.skaffold import model
from tests.support.helm import parse_docs, run_helm
from tests.support.paths import ROOT, SHARED_SCHEMAS

SKAFFOLD_YAML = ROOT / "skaffold.yaml"
# Skaffold's own schema lives beside the project, never inside it.
SCHEMA = SHARED_SCHEMAS / "skaffold-v4beta14.json"

# A commit id made only of digits: helm's --set would turn it into a number without the
# tag policy's prefix (see skaffold.yaml).
SAMPLE_COMMIT = "1234567"
LOCAL_CONTEXTS = ("minikube", "docker-desktop", "docker-for-desktop")


def sample_digest(artifact: str) -> str:
    """A registry digest, different for every artifact (a swapped template shows)."""
    return "sha256:" + hashlib.sha256(artifact.encode()).hexdigest()


def sample_image_id(artifact: str) -> str:
    """A local image id (hex), different for every artifact."""
    return hashlib.sha256(f"image-id:{artifact}".encode()).hexdigest()


@dataclass(frozen=True)
class Scenario:
    """One way to run skaffold: what the user types and where, and what Skaffold must make
    of it (the profiles that apply, whether it pushes)."""

    name: str
    kube_context: str
    command: str
    named: tuple[str, ...]
    default_repo: str | None
    expect_profiles: tuple[str, ...]
    expect_push: bool
    dev: bool = True
    # skaffold's global config `local-cluster` for the context (None: its own guess by name).
    local_cluster: bool | None = None


SCENARIOS = [
    Scenario("dev-kind", "kind-hashstack", "dev", (), None, ("kind",), False),
    Scenario("dev-k3d", "k3d-hashstack", "dev", (), None, ("kind",), False),
    Scenario("dev-minikube", "minikube", "dev", (), None, ("kind",), False),
    # A local cluster the kind profile does not name: Skaffold's own default, no push.
    Scenario("dev-docker-desktop", "docker-desktop", "dev", (), None, (), False),
    Scenario(
        "registry-kind",
        "kind-hashstack",
        "dev",
        ("registry",),
        "localhost:5000/hashstack",
        ("kind", "registry"),
        True,
    ),
    Scenario(
        "registry-remote",
        "gke_acme_europe-west1_dev",
        "run",
        ("registry",),
        "localhost:5000/hashstack",
        ("registry",),
        True,
    ),
    Scenario(
        "prod-remote",
        "gke_acme_europe-west1_prod",
        "run",
        ("prod",),
        "registry.hashstack.test/hashstack",
        ("prod",),
        True,
        dev=False,
    ),
    Scenario("prod-kind", "kind-hashstack", "run", ("prod",), None, ("kind", "prod"), False, False),
    # The custom builder (ci/images.sh): `make dev` without a Docker daemon, and the kind
    # cluster of ci/kind/cluster.sh through its registry at localhost:5001.
    Scenario("podman-kind", "kind-hashstack", "dev", ("podman",), None, ("kind", "podman"), False),
    Scenario(
        "podman-remote",
        "gke_acme_europe-west1_dev",
        "dev",
        ("podman",),
        "localhost:5001",
        ("podman",),
        True,
    ),
    # ci/skaffold-kind.sh: podman's images go through kind's registry (`kind load` needs the
    # docker CLI), so the kind context is declared not local and the kind profile switched off.
    Scenario(
        "podman-kind-registry",
        "kind-hashstack",
        "dev",
        ("podman", "-kind"),
        "localhost:5001",
        ("podman",),
        True,
        local_cluster=False,
    ),
    Scenario(
        "prod-podman",
        "gke_acme_europe-west1_prod",
        "run",
        ("prod", "podman"),
        "registry.hashstack.test/hashstack",
        ("prod", "podman"),
        True,
        dev=False,
    ),
]
SCENARIO_IDS = [s.name for s in SCENARIOS]


def is_local_context(context: str) -> bool:
    return context in LOCAL_CONTEXTS or context.startswith(("kind-", "k3d-"))


@dataclass
class Applied:
    """A scenario after Skaffold's profile logic, its builds, and the chart helm rendered."""

    scenario: Scenario
    pipeline: dict[str, Any]
    profiles: list[str]
    push: bool
    built: dict[str, str]
    helm_args: list[str]
    docs: list[dict[str, Any]]

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        return list(self.pipeline["build"]["artifacts"])

    @property
    def release(self) -> dict[str, Any]:
        releases = self.pipeline["deploy"]["helm"]["releases"]
        assert len(releases) == 1, "one release: the umbrella chart"
        return dict(releases[0])

    def objects(self, kind: str) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"]: d for d in self.docs if d.get("kind") == kind}


def built_reference(artifact: str, default_repo: str | None, push: bool, tag: str) -> str:
    """The reference Skaffold deploys: tag@digest after a push, or a tag made of the image id
    when the image is only loaded into the cluster's nodes."""
    name = model.apply_default_repo(default_repo, artifact)
    if push:
        return f"{name}:{tag}@{sample_digest(artifact)}"
    return f"{name}:{sample_image_id(artifact)}"


def sample_tag(pipeline: dict[str, Any]) -> str:
    policy = pipeline["build"].get("tagPolicy", {"gitCommit": {}})
    assert set(policy) == {"gitCommit"}, f"tag policy not modelled: {policy}"
    git = policy["gitCommit"] or {}
    assert git.get("variant", "Tags") in ("AbbrevCommitSha", "Tags")
    return f"{git.get('prefix', '')}{SAMPLE_COMMIT}"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real helm (tests/support/helm.py), from the repo root as Skaffold runs it
    (chartPath and valuesFiles are relative to skaffold.yaml)."""
    return run_helm("helm", *args, check=check, cwd=ROOT)


def template_args(release: dict[str, Any], overrides: list[str]) -> list[str]:
    """`helm template` with what Skaffold's `helm upgrade --install` gets."""
    args = ["template", release["name"], release["chartPath"]]
    if release.get("namespace"):
        args += ["--namespace", release["namespace"]]
    return args + overrides


ApplyFn = Callable[[Scenario], Applied]


def apply_scenario(config: dict[str, Any], scenario: Scenario) -> Applied:
    """What Skaffold makes of skaffold.yaml in `scenario`, rendered by the real helm."""
    pipeline, profiles = model.effective_config(
        config, scenario.kube_context, scenario.command, scenario.named
    )
    local = pipeline["build"].get("local") or {}
    local_cluster = scenario.local_cluster
    if local_cluster is None:
        local_cluster = is_local_context(scenario.kube_context)
    push = bool(local.get("push", not local_cluster))
    tag = sample_tag(pipeline)
    built = {
        a["image"]: built_reference(a["image"], scenario.default_repo, push, tag)
        for a in pipeline["build"]["artifacts"]
    }
    env: dict[str, str] = {}
    for image, ref in built.items():
        env.update(model.image_env(image, ref))
    release = pipeline["deploy"]["helm"]["releases"][0]
    overrides = model.helm_override_args(release, env)
    docs = parse_docs(helm(*template_args(release, overrides)).stdout)
    return Applied(scenario, pipeline, profiles, push, built, overrides, docs)


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container and init container of a workload or a Pod."""
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec", spec) if obj["kind"] != "Pod" else spec
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec

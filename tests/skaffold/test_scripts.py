"""ci/dev.sh, ci/deploy.sh, ci/registry-flow.sh and ci/skaffold-check.sh, run for real (their
DRY_RUN mode prints the commands instead of touching a cluster); the helm commands they print
are rendered by the real helm."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import socket
import subprocess
from typing import Any

import pytest

from tests.skaffold import model
from tests.skaffold.scenarios import ROOT, SCENARIO_IDS, SCENARIOS, containers, helm, parse_docs

SERVICES = ("hello", "persistence", "hash")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
MISSING = "hashstack-no-such-skaffold"


def script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "ci" / name), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=60,
    )


def commands(output: str) -> list[list[str]]:
    return [shlex.split(line) for line in output.splitlines() if line.strip()]


def as_template(cmd: list[str]) -> list[str]:
    """`helm upgrade --install R CHART ...` as `helm template R CHART ...` (minus flags that
    only an install has)."""
    assert cmd[:3] == ["helm", "upgrade", "--install"], cmd
    drop_alone = {"--create-namespace", "--wait"}
    out, skip = ["template"], False
    for arg in cmd[3:]:
        if skip:
            skip = False
        elif arg in drop_alone:
            continue
        elif arg == "--timeout":
            skip = True
        else:
            out.append(arg)
    return out


def deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def test_dev_without_skaffold_says_how_to_get_it():
    result = script("dev.sh", SKAFFOLD=MISSING)
    assert result.returncode == 127
    assert "skaffold is not installed" in result.stderr
    assert "https://skaffold.dev/docs/install/" in result.stderr
    assert "make deploy" in result.stderr


@pytest.mark.parametrize(("engine", "profiles"), [("podman", ["podman"]), ("docker", [])])
def test_dev_picks_the_engine_says_so_and_keeps_one_run_id(config, engine, profiles):
    runs = [script("dev.sh", "--tail=false", DRY_RUN="1", SKAFFOLD="true", DEV_ENGINE=engine)]
    runs.append(script("dev.sh", DRY_RUN="1", SKAFFOLD="true", DEV_ENGINE=engine))
    for result in runs:
        assert result.returncode == 0, result.stderr
        assert f"building with {'podman' if engine == 'podman' else 'Docker'}" in result.stderr
    first, second = (commands(r.stdout)[0] for r in runs)
    assert first[:2] == ["true", "dev"]
    assert [a.split("=", 1)[1] for a in first if a.startswith("--profile=")] == profiles
    assert set(profiles) <= {p["name"] for p in config["profiles"]}
    # The same run-id label every time: skaffold's own, new per run, would change every pod
    # template and so replace every pod at each start.
    run_id = "--label=skaffold.dev/run-id="
    labels = [[a for a in cmd if a.startswith(run_id)] for cmd in (first, second)]
    assert labels[0] == labels[1]
    assert len(labels[0]) == 1
    assert first[-1] == "--tail=false"


def test_skaffold_check_skips_or_fails_without_skaffold():
    skipped = script("skaffold-check.sh", SKAFFOLD=MISSING)
    assert skipped.returncode == 0
    assert "skipped" in skipped.stderr
    required = script("skaffold-check.sh", SKAFFOLD=MISSING, REQUIRE_SKAFFOLD="1")
    assert required.returncode == 1


def test_deploy_with_skaffold_runs_the_prod_profile():
    result = script("deploy.sh", "--tail", DRY_RUN="1", SKAFFOLD="true")
    assert result.returncode == 0, result.stderr
    assert commands(result.stdout) == [["true", "run", "-p", "prod", "--tail"]]


@pytest.fixture(scope="module")
def helm_flow() -> list[list[str]]:
    """`make deploy` without skaffold, as printed by its dry run."""
    result = script("deploy.sh", DRY_RUN="1", SKAFFOLD=MISSING)
    assert result.returncode == 0, result.stderr
    return commands(result.stdout)


REGISTRY_NS = "hashstack-registry"


def test_deploy_without_skaffold_builds_installs_registry_pushes_then_upgrades(helm_flow):
    # The push's target (the forward's local end) is checked below.
    steps = [" ".join(c[:2] if c[:2] == ["ci/images.sh", "push"] else c[:3]) for c in helm_flow]
    assert steps == [
        "ci/images.sh build",
        "kubectl create namespace",
        "kubectl label --overwrite",
        "kubectl create namespace",
        "kubectl label --overwrite",
        "helm upgrade --install",
        f"kubectl --namespace {REGISTRY_NS}",
        "ci/images.sh push",
        "helm upgrade --install",
    ]
    assert "port-forward" in helm_flow[6]
    assert "service/hashstack-registry" in helm_flow[6]
    # The push goes through the forward: to its local end, whatever port that is.
    local = helm_flow[6][-1].split(":")[0]
    assert helm_flow[7][-1] == f"localhost:{local}"


def forward_port(output: str) -> int:
    (forward,) = [c for c in commands(output) if "port-forward" in c]
    local, remote = forward[-1].split(":")
    assert remote == "5000"
    return int(local)


def test_registry_flow_forwards_to_a_free_port_even_when_5000_answers():
    """On a single-node cluster whose node is this machine, the chart's node proxy answers on
    127.0.0.1:5000: the helm flow picks a free port by itself (a listener holds 5000 here
    unless something already does, so 5000 is taken either way)."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            holder.bind(("127.0.0.1", 5000))
            holder.listen()
        with socket.create_connection(("127.0.0.1", 5000), timeout=2):
            pass  # 5000 answers, as the node proxy would
        ports = set()
        for _ in range(2):
            result = script("registry-flow.sh", "helm", DRY_RUN="1")
            assert result.returncode == 0, result.stderr
            port = forward_port(result.stdout)
            assert port != 5000
            assert f"ci/images.sh push localhost:{port}" in result.stdout
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))  # free: nothing listened there
            ports.add(port)
    assert ports, "no port chosen"


def test_registry_flow_keeps_the_port_it_is_given():
    result = script("registry-flow.sh", "helm", DRY_RUN="1", REGISTRY_PORT="5123")
    assert result.returncode == 0, result.stderr
    assert forward_port(result.stdout) == 5123
    assert "ci/images.sh push localhost:5123" in result.stdout


def test_registry_and_app_get_their_own_pod_security_levels(helm_flow):
    labels = {c[4]: c[5:] for c in helm_flow if c[:3] == ["kubectl", "label", "--overwrite"]}
    enforce = "pod-security.kubernetes.io/enforce"
    # The proxy's hostPort needs privileged; everything of the application meets restricted.
    assert f"{enforce}=privileged" in labels[REGISTRY_NS]
    assert f"{enforce}=restricted" in labels["hashstack"]
    registry, app = [c for c in helm_flow if c[:2] == ["helm", "upgrade"]]
    assert registry[registry.index("--namespace") + 1] == REGISTRY_NS
    assert app[app.index("--namespace") + 1] == "hashstack"


def test_deploy_step_one_brings_up_only_the_registry_and_its_proxy(helm_flow):
    docs = parse_docs(helm(*as_template(helm_flow[5])).stdout)
    workloads = {d["metadata"]["name"] for d in docs if d["kind"] in WORKLOADS}
    assert workloads == {"hashstack-registry", "hashstack-registry-proxy"}, workloads
    (proxy,) = [d for d in docs if d["kind"] == "DaemonSet"]
    (port,) = [p for p in containers(proxy)[0]["ports"] if "hostPort" in p]
    # Only the node itself reaches the proxy.
    assert (port["hostPort"], port["hostIP"]) == (5000, "127.0.0.1")


def test_deploy_final_step_has_no_registry_of_its_own(helm_flow):
    docs = parse_docs(helm(*as_template(helm_flow[8])).stdout)
    assert not [d for d in docs if "registry" in d["metadata"]["name"]]
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "StatefulSet"} == {"hashstack-etcd"}


def test_deploy_final_step_runs_the_pushed_images(helm_flow):
    tag = subprocess.run(
        [str(ROOT / "ci" / "images.sh"), "tag"], capture_output=True, text=True, check=True
    ).stdout.strip()
    push = helm_flow[7]
    docs = parse_docs(helm(*as_template(helm_flow[8])).stdout)
    found = deployments(docs)
    for svc in SERVICES:
        (container,) = [c for c in containers(found[f"hashstack-{svc}"]) if c["name"] == svc]
        ref = model.parse_reference(container["image"])
        # The nodes pull through their proxy what the push sent through the forward.
        assert ref.domain == "localhost:5000"
        assert ref.path == f"hashstack/{svc}"
        assert ref.tag == tag
        assert push[-1].startswith("localhost:")


def test_registry_flow_with_skaffold_uses_the_registry_profile_and_node_name(config):
    result = script("registry-flow.sh", "dev", "--tail", DRY_RUN="1", SKAFFOLD="true")
    assert result.returncode == 0, result.stderr
    cmds = commands(result.stdout)
    assert [c[:2] for c in cmds] == [
        *[["kubectl", "create"], ["kubectl", "label"]] * 2,
        ["helm", "upgrade"],
        ["kubectl", "--namespace"],
        ["true", "dev"],
    ]
    skaffold = cmds[6]
    assert skaffold[2:4] == ["-p", "registry"]
    (repo,) = [a.split("=", 1)[1] for a in skaffold if a.startswith("--default-repo=")]
    # Skaffold's names for the artifacts are what every node pulls through its proxy.
    for artifact in config["build"]["artifacts"]:
        name = model.apply_default_repo(repo, artifact["image"])
        assert model.parse_reference(name).domain == "localhost:5000"
    assert "registry" in {p["name"] for p in config["profiles"]}


def test_registry_flow_refuses_another_port_with_skaffold():
    result = script("registry-flow.sh", "run", DRY_RUN="1", SKAFFOLD="true", REGISTRY_PORT="5001")
    assert result.returncode == 1
    assert "REGISTRY_PORT must be 5000" in result.stderr


def test_skaffold_kind_runs_build_run_and_dev_with_the_custom_builder_through_kinds_registry():
    """ci/skaffold-kind.sh (the workflow's skaffold-kind job) as its dry run prints it: the
    arguments are those of the podman-kind-registry scenario, which tests/skaffold renders."""
    result = script("skaffold-kind.sh", DRY_RUN="1", SKAFFOLD="true")
    assert result.returncode == 0, result.stderr
    cmds = commands(result.stdout)
    assert cmds[0] == ["ci/kind/cluster.sh", "up"]
    assert cmds[1][1:3] == ["config", "set"]
    assert cmds[1][-2:] == ["local-cluster", "false"]
    assert [c[1] for c in cmds[2:]] == ["build", "run", "dev"]
    scenario = SCENARIOS[SCENARIO_IDS.index("podman-kind-registry")]
    context = cmds[1][cmds[1].index("--kube-context") + 1]
    assert context == scenario.kube_context
    assert scenario.local_cluster is False
    registry_port = re.search(
        r'REGISTRY_PORT="\$\{KIND_REGISTRY_PORT:-(\d+)\}"',
        (ROOT / "ci" / "kind" / "cluster.sh").read_text(),
    )
    assert registry_port
    for cmd in cmds[2:]:
        assert cmd[cmd.index("--profile") + 1].split(",") == list(scenario.named)
        assert cmd[cmd.index("--default-repo") + 1] == scenario.default_repo
        assert scenario.default_repo == f"localhost:{registry_port.group(1)}"
        assert cmd[cmd.index("--config") + 1] == cmds[1][cmds[1].index("--config") + 1]
    # One run id for run and dev (so dev replaces no pod); build takes no --label.
    labels = [[a for a in cmd if a.startswith("skaffold.dev/run-id=")] for cmd in cmds[2:]]
    assert labels[0] == []
    assert labels[1] == labels[2]
    assert len(labels[1]) == 1

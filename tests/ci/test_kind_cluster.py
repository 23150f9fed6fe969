"""ci/kind/cluster.sh's logic with stand-ins for docker, kind and kubectl (no container engine
or cluster can run here; the workflow's e2e jobs run it for real): what each node's containerd
is told about registries. localhost:5001 goes to kind's registry; localhost:5000 must be left
to the chart's node proxy, and a stale redirect of it is removed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import ROOT

NODES = ["hashstack-control-plane", "hashstack-worker", "hashstack-worker2"]

# Each stand-in appends its arguments (and what it reads on stdin, for `cp /dev/stdin` and
# `apply -f -`) to $CALLS, and answers the few queries cluster.sh makes.
DOCKER = """#!/usr/bin/env bash
echo "docker $*" >>"$CALLS"
case "$*" in
  info) exit 0 ;;
  "inspect -f {{.State.Running}} kind-registry") echo true ;;
  "inspect -f"*kind-registry) echo "bridge kind " ;;
  *"cp /dev/stdin"*) sed 's/^/  stdin: /' >>"$CALLS" ;;
esac
"""
KIND = f"""#!/usr/bin/env bash
echo "kind $*" >>"$CALLS"
case "$*" in
  "get clusters") echo hashstack ;;
  "get nodes --name hashstack") printf '%s\\n' {" ".join(NODES)} ;;
esac
"""
KUBECTL = """#!/usr/bin/env bash
echo "kubectl $*" >>"$CALLS"
sed 's/^/  stdin: /' >>"$CALLS"
"""


def cluster_sh(
    tmp_path: Path, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("docker", DOCKER), ("kind", KIND), ("kubectl", KUBECTL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls.log"
    calls.write_text("")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KIND_", "ENGINE"))}
    environ.update(HASHSTACK_CACHE=str(tmp_path), CALLS=str(calls), **env)
    proc = subprocess.run(
        [str(ROOT / "ci" / "kind" / "cluster.sh"), *args], cwd=ROOT, env=environ,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return proc, calls.read_text()


def test_nodes_send_localhost_5001_to_kinds_registry_and_leave_5000_to_the_proxy(
    tmp_path: Path,
) -> None:
    proc, calls = cluster_sh(tmp_path, "up")
    assert proc.returncode == 0, proc.stderr + calls
    for node in NODES:
        assert f"docker exec {node} rm -rf /etc/containerd/certs.d/localhost:5000" in calls
        assert f"docker exec {node} mkdir -p /etc/containerd/certs.d/localhost:5001" in calls
        assert (
            f"docker exec -i {node} cp /dev/stdin /etc/containerd/certs.d/localhost:5001/hosts.toml"
            in calls
        )
    assert calls.count('  stdin: [host."http://kind-registry:5000"]') == len(NODES)
    # Nothing is ever written for localhost:5000.
    assert "certs.d/localhost:5000/hosts.toml" not in calls
    assert "mkdir -p /etc/containerd/certs.d/localhost:5000" not in calls
    # KEP-1755: tools are told to push to localhost:5001.
    assert '  stdin:     host: "localhost:5001"' in calls


def test_a_kind_registry_on_5000_is_refused(tmp_path: Path) -> None:
    proc, calls = cluster_sh(tmp_path, "up", KIND_REGISTRY_PORT="5000")
    assert proc.returncode == 1
    assert "would hide the chart's node proxy" in proc.stderr
    assert "docker exec" not in calls


@pytest.mark.parametrize("config", ["ci/kind/cluster.yaml", "elsewhere.yaml"])
def test_a_new_cluster_uses_kind_config(tmp_path: Path, config: str) -> None:
    # A kind that knows no cluster yet: cluster.sh creates one with $KIND_CONFIG.
    proc, calls = cluster_sh(tmp_path, "up", KIND_CLUSTER_NAME="other", KIND_CONFIG=config)
    assert proc.returncode == 0, proc.stderr
    (create,) = [line for line in calls.splitlines() if line.startswith("kind create cluster")]
    assert f"--config {config}" in create
    assert "--name other" in create

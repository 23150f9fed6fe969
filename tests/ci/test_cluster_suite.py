"""The cluster suite imports and collects here, skips as one line when no cluster answers,
and fails instead of skipping when ci/e2e.sh demands a cluster."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

EXPECTED = {
    "test_install_runs_every_workload",
    "test_hash_answers_through_the_api_server_proxy",
    "test_1000_calls_across_three_persistence_replicas_are_unique",
    "test_deleting_etcd_and_persistence_pods_mid_run",
    "test_scale_persistence_1_3_1",
    "test_helm_upgrade_with_changed_values_then_rollback",
    "test_helm_test_passes",
    "test_uninstall_leaves_only_the_pvcs",
    "test_upgrade_to_new_tags_and_config_under_load",
    "test_ha_installs_and_spreads_over_the_workers",
    "test_draining_a_node_under_load",
    "test_each_release_in_its_own_pod_security_level",
    "test_the_app_runs_images_pulled_through_the_node_proxy",
    "test_hash_answers_in_the_restricted_namespace",
    "test_the_proxy_binds_the_node_loopback_only",
    "test_scaling_etcd_one_three_one_under_load",
}
# The multi-node job's share (E2E_MARK=ha); the other e2e jobs run "cluster and not ha".
HA = {"test_ha_installs_and_spreads_over_the_workers", "test_draining_a_node_under_load"}


def unreachable_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose server is a loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n"
        f"clusters:\n- name: nowhere\n  cluster:\n    server: https://127.0.0.1:{port}\n"
        "contexts:\n- name: nowhere\n  context:\n    cluster: nowhere\n    user: nobody\n"
        "users:\n- name: nobody\n  user:\n    token: none\n"
    )
    return path


def run_pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "HASHSTACK_REQUIRE_CLUSTER"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT, env={**environ, **env}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_the_suite_collects_with_the_cluster_marker() -> None:
    proc = run_pytest("--collect-only", "-q", "-m", "cluster", "tests/cluster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    node_ids = re.findall(r"^tests/cluster/\S+::test_\S+$", proc.stdout, re.M)
    assert {re.sub(r"^.*::(test_\w+).*$", r"\1", n) for n in node_ids} >= EXPECTED
    assert re.search(rf"^{len(node_ids)} tests collected", proc.stdout, re.M), proc.stdout


def test_the_ha_marker_selects_the_multi_node_scenarios() -> None:
    ha = run_pytest("--collect-only", "-q", "-m", "ha", "tests/cluster")
    rest = run_pytest("--collect-only", "-q", "-m", "cluster and not ha", "tests/cluster")
    assert set(re.findall(r"::(test_\w+)", ha.stdout)) == HA, ha.stdout
    others = set(re.findall(r"::(test_\w+)", rest.stdout))
    assert others >= EXPECTED - HA
    assert not others & HA


def test_no_reachable_cluster_skips_everything_in_one_line_per_file(tmp_path: Path) -> None:
    kubeconfig = unreachable_kubeconfig(tmp_path)
    proc = run_pytest("-rs", "tests/cluster", KUBECONFIG=str(kubeconfig))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    files = {p.name for p in (ROOT / "tests" / "cluster").glob("test_*.py")}
    assert len(skipped) == len(files), proc.stdout
    counts = [int(m.group(1)) for m in (re.search(r"SKIPPED \[(\d+)\]", s) for s in skipped) if m]
    assert sum(counts) >= len(EXPECTED)
    for line in skipped:
        assert "no reachable cluster" in line
        assert str(kubeconfig) in line
    assert re.search(rf"{sum(counts)} skipped", proc.stdout)


def test_a_missing_kubeconfig_is_named_in_the_reason(tmp_path: Path) -> None:
    proc = run_pytest("-rs", "tests/cluster", KUBECONFIG=str(tmp_path / "absent"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no reachable cluster: no kubeconfig" in proc.stdout


@pytest.mark.slow
def test_required_cluster_fails_instead_of_skipping(tmp_path: Path) -> None:
    kubeconfig = unreachable_kubeconfig(tmp_path)
    proc = run_pytest(
        "-q", "tests/cluster", KUBECONFIG=str(kubeconfig), HASHSTACK_REQUIRE_CLUSTER="1"
    )
    assert proc.returncode != 0
    assert "no reachable cluster" in proc.stdout
    assert "skipped" not in proc.stdout.splitlines()[-1]

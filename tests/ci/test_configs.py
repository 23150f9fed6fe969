"""The configuration files CI reads: chart-testing, the kind cluster, yamllint."""

from __future__ import annotations

import shutil
import subprocess

from tests.support.files import load_yaml
from tests.support.paths import ROOT

# Keys chart-testing 3.14 knows (its config struct); a typo would be ignored silently.
CT_KEYS = {
    "remote", "target-branch", "since", "build-id", "lint-conf", "chart-yaml-schema",
    "validate-maintainers", "validate-chart-schema", "validate-yaml", "skip-helm-dependencies",
    "additional-commands", "check-version-increment", "all", "charts", "chart-repos",
    "chart-dirs", "excluded-charts", "helm-extra-args", "helm-extra-set-args",
    "helm-lint-extra-args", "helm-repo-extra-args", "helm-dependency-extra-args", "debug",
    "upgrade", "skip-missing-values", "skip-clean-up", "namespace", "release-name",
    "release-label", "exclude-deprecated", "kubectl-timeout", "print-logs", "github-groups",
    "use-helmignore",
}  # fmt: skip


def test_ct_config_names_the_chart_and_known_keys_only() -> None:
    config = load_yaml(ROOT / "ci" / "ct.yaml")
    assert set(config) <= CT_KEYS, set(config) - CT_KEYS
    assert config["charts"] == ["charts/hashstack"]
    assert (ROOT / config["lint-conf"]).is_file()
    assert "--timeout" in config["helm-extra-args"]


def test_ct_installs_every_scenario_that_runs_on_kind() -> None:
    """ct reads ci/*-values.yaml only; the rest must say why it is lint-only."""
    scenarios = sorted((ROOT / "charts" / "hashstack" / "ci").glob("*.yaml"))
    installed = {p.name for p in scenarios if p.name.endswith("-values.yaml")}
    assert installed == {"default-values.yaml", "dev-values.yaml", "ha-values.yaml"}
    for path in scenarios:
        if path.name in installed:
            continue
        assert path.name.endswith("-lint.yaml"), f"{path.name}: neither -values nor -lint"
        assert path.read_text().startswith("# Lint-only (ct installs *-values.yaml only): ")


def test_no_reference_to_the_old_scenario_names() -> None:
    old = [f"ci/{name}.yaml" for name in ("default", "dev", "ha", "ingress", "minimal")]
    files = ["skaffold.yaml", "ci/ct.yaml", "ci/e2e.sh", "charts/hashstack/README.md",
             "docs/cluster.md", *map(str, (ROOT / "tests").rglob("*.py"))]  # fmt: skip
    for name in files:
        path = ROOT / name
        text = path.read_text() if path.is_file() else ""
        assert not [o for o in old if o in text], name


def test_kind_cluster_config() -> None:
    config = load_yaml(ROOT / "ci" / "kind" / "cluster.yaml")
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [node["role"] for node in config["nodes"]]
    assert roles.count("control-plane") == 1
    # The HA scenario spreads 3 pods per service over hostnames, and a drain needs a spare.
    assert roles.count("worker") == 3


def test_kind_registry_follows_the_local_registry_pattern() -> None:
    script = (ROOT / "ci" / "kind" / "cluster.sh").read_text()
    # Nodes map localhost:<port> to the registry container through containerd's hosts.toml,
    assert "/etc/containerd/certs.d/localhost:$REGISTRY_PORT" in script
    assert '[host."http://%s:5000"]' in script
    # the registry joins the kind network, and KEP-1755's ConfigMap documents it.
    assert "network connect kind" in script
    assert "name: local-registry-hosting" in script
    assert "namespace: kube-public" in script
    # kind's registry is localhost:5001; localhost:5000 stays the chart's node proxy (the seed's
    # flow), so no hosts.toml may redirect it, and a stale one is removed.
    assert 'REGISTRY_PORT="${KIND_REGISTRY_PORT:-5001}"' in script
    assert "NODE_PROXY_PORT=5000" in script
    assert 'rm -rf "/etc/containerd/certs.d/localhost:$NODE_PROXY_PORT"' in script
    assert '[ "$REGISTRY_PORT" != "$NODE_PROXY_PORT" ]' in script
    assert "127.0.0.1:$REGISTRY_PORT:5000" in script  # published on loopback only


def test_yamllint_config_skips_helm_templates_and_passes_ci_yaml() -> None:
    yamllint = shutil.which("yamllint")
    assert yamllint, "yamllint missing: ci/install-deps.sh installs it"
    files = [".github/workflows/ci.yml", "ci/ct.yaml", "ci/kind/cluster.yaml", ".yamllint"]
    proc = subprocess.run(
        [yamllint, "--strict", "--format", "parsable", *files],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "charts/**/templates/" in (ROOT / ".yamllint").read_text()

"""The GitHub workflow: schema-valid, pinned, least-privilege, and only calling ci/ scripts."""

from __future__ import annotations

import re
import shlex
from typing import Any

import jsonschema

from tests.support.files import load_yaml
from tests.support.paths import ROOT, WORKFLOW
from tests.support.schemas import workflow_schema

SHA_PIN = re.compile(r"^\s*-?\s*uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40})\s+#\s+v\d+(\.\d+)*\s*$")


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_workflow_is_valid_against_the_schema(workflow: dict[str, Any]) -> None:
    schema, _ = workflow_schema()
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(workflow), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    # The YAML 1.2 loader keeps the trigger key a string.
    assert "on" in workflow


def test_every_action_is_pinned_by_commit_sha_with_its_version() -> None:
    uses = [line for line in WORKFLOW.read_text().splitlines() if "uses:" in line]
    assert uses
    unpinned = [line.strip() for line in uses if not SHA_PIN.match(line)]
    assert not unpinned, f"pin these by 40-hex commit SHA with a `# vX.Y.Z` comment: {unpinned}"


def test_the_actions_named_in_the_issue_are_used(workflow: dict[str, Any]) -> None:
    used = {step["uses"].split("@")[0].lower() for step in steps(workflow) if "uses" in step}
    assert used >= {
        "actions/checkout",
        "actions/setup-python",
        "azure/setup-helm",
        "helm/kind-action",
        "helm/chart-testing-action",
    }


def test_least_privilege_concurrency_and_timeouts(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    assert "group" in workflow["concurrency"]
    for name, job in workflow["jobs"].items():
        assert 0 < job.get("timeout-minutes", 0) <= 60, f"job {name} needs a timeout"
        assert "permissions" not in job, f"job {name} should not widen permissions"
    for step in steps(workflow):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_jobs_cover_every_rung(workflow: dict[str, Any]) -> None:
    runs = {
        name: [step["run"] for step in job["steps"] if "run" in step]
        for name, job in workflow["jobs"].items()
    }
    assert "ci/lint.sh" in runs["lint"]
    assert any(r.startswith("ci/test.sh") and "tests/unit" in r and "tests/integration" in r
               for r in runs["test"])  # fmt: skip
    assert "ci/test.sh tests/chart" in runs["chart"]
    assert "ci/images.sh build" in runs["images"]
    # The images rung and the podman sync test, on the online build path (no bookworm source).
    assert "ci/test.sh -m podman tests" in runs["images"]
    assert workflow["jobs"]["images"]["env"]["OFFLINE"] == "0"
    assert "make test-faults" in runs["faults-long"]
    assert "ci/e2e.sh" in runs["e2e"]


def test_steps_only_call_ci_scripts(workflow: dict[str, Any]) -> None:
    """Logic lives in ci/ (or make): a run step is one command line, nothing more."""
    for step in steps(workflow):
        if "run" not in step:
            continue
        command = step["run"].strip()
        assert "\n" not in command, f"multi-line run step: {command!r}"
        program = shlex.split(command)[0]
        assert program.startswith("ci/") or program == "make", command
        if program.startswith("ci/"):
            assert (ROOT / program).is_file() or program == "ci/images.sh", f"{program} missing"


def test_chart_job_is_a_helm_3_and_4_matrix(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["chart"]
    assert sorted(job["strategy"]["matrix"]["helm-major"]) == ["3", "4"]
    assert job["env"]["HELM_MAJOR"] == "${{ matrix.helm-major }}"


def e2e_matrix(workflow: dict[str, Any]) -> list[dict[str, str]]:
    return list(workflow["jobs"]["e2e"]["strategy"]["matrix"]["include"])


def minor(version: str) -> int:
    return int(version.split(".")[1])


def test_e2e_covers_the_oldest_claimed_and_the_newest_kubernetes_on_pinned_images(
    workflow: dict[str, Any],
) -> None:
    entries = e2e_matrix(workflow)
    chart = load_yaml(ROOT / "charts" / "hashstack" / "Chart.yaml")
    oldest = re.fullmatch(r">=\s*1\.(\d+)\.\d+(-0)?", chart["kubeVersion"])
    assert oldest, chart["kubeVersion"]
    minors = sorted(minor(e["kubernetes"]) for e in entries)
    assert minors[0] == int(oldest.group(1)), "the oldest Kubernetes the chart claims"
    for entry in entries:
        image = entry["node-image"]
        assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", image), image
        assert image.startswith(f"kindest/node:v{entry['kubernetes']}."), entry
        assert re.fullmatch(r"v\d+\.\d+\.\d+", entry["kind"]), entry
    # The newest comes with the newest kind release of the matrix.
    newest = max(entries, key=lambda e: minor(e["kubernetes"]))
    assert newest["kind"] == max((e["kind"] for e in entries), key=lambda v: minor(v[1:]))


def test_e2e_uses_kind_install_only_and_ct(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["e2e"]
    kind = next(s for s in job["steps"] if s.get("uses", "").startswith("helm/kind-action@"))
    assert kind["with"]["install_only"] is True
    assert kind["with"]["version"] == "${{ matrix.kind }}"
    assert job["env"]["E2E_MARK"] == "cluster and not ha"
    # skaffold for the registry flow's second way, installed before the suite runs.
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert runs == ["ci/install-skaffold.sh", "ci/e2e.sh"]
    # The action's cleanup deletes the cluster cluster.sh made, by this name.
    assert kind["with"]["cluster_name"] == job["env"]["KIND_CLUSTER_NAME"]
    assert job["env"]["KIND_NODE_IMAGE"] == "${{ matrix.node-image }}"
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0, "ct install --upgrade needs the target branch"


def test_local_default_node_image_is_the_newest_in_the_matrix(workflow: dict[str, Any]) -> None:
    newest = max(e2e_matrix(workflow), key=lambda e: minor(e["kubernetes"]))
    script = (ROOT / "ci" / "kind" / "cluster.sh").read_text()
    assert f'DEFAULT_NODE_IMAGE="{newest["node-image"]}"' in script


def test_multi_node_job_runs_the_ha_part_on_the_newest_kubernetes(
    workflow: dict[str, Any],
) -> None:
    job = workflow["jobs"]["e2e-ha"]
    newest = max(e2e_matrix(workflow), key=lambda e: minor(e["kubernetes"]))
    assert job["env"]["KIND_NODE_IMAGE"] == newest["node-image"]
    assert job["env"]["E2E_MARK"] == "ha"
    assert job["env"]["E2E_CLUSTER"] == "kind"
    config = load_yaml(ROOT / job["env"]["KIND_CONFIG"])
    assert [n["role"] for n in config["nodes"]].count("worker") == 3
    kind = next(s for s in job["steps"] if s.get("uses", "").startswith("helm/kind-action@"))
    assert kind["with"]["version"] == newest["kind"]
    assert kind["with"]["cluster_name"] == job["env"]["KIND_CLUSTER_NAME"]
    assert [s["run"] for s in job["steps"] if "run" in s] == ["ci/e2e.sh"]


def test_skaffold_kind_job_runs_the_custom_builder_on_the_newest_kind(
    workflow: dict[str, Any],
) -> None:
    """skaffold build, run and dev with the podman profile for real (ci/skaffold-kind.sh)."""
    job = workflow["jobs"]["skaffold-kind"]
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert runs[-1] == "ci/skaffold-kind.sh"
    assert runs.index("ci/install-skaffold.sh") < runs.index("ci/skaffold-kind.sh")
    assert job["env"]["IMAGES_ENGINE"] == "podman"
    newest = max(e2e_matrix(workflow), key=lambda e: minor(e["kubernetes"]))
    assert job["env"]["KIND_NODE_IMAGE"] == newest["node-image"]
    kind = next(s for s in job["steps"] if s.get("uses", "").startswith("helm/kind-action@"))
    assert kind["with"]["install_only"] is True
    assert kind["with"]["version"] == newest["kind"]
    assert kind["with"]["cluster_name"] == job["env"]["KIND_CLUSTER_NAME"]
    script = (ROOT / "ci" / "skaffold-kind.sh").read_text()
    for command in ("build", "run", "dev"):
        assert f'"$SKAFFOLD" {command} "${{COMMON[@]}}' in script

"""Skaffold itself on skaffold.yaml, where a skaffold binary exists (the GitHub workflow):
ci/skaffold-check.sh runs `skaffold diagnose` and `skaffold render --offline`, and the rendered
Deployments run the artifacts Skaffold would build."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.skaffold import model
from tests.skaffold.scenarios import ROOT, containers, parse_docs

SERVICES = ("hello", "persistence", "hash")


@pytest.fixture(scope="module")
def check_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    skaffold = os.environ.get("SKAFFOLD", "skaffold")
    if shutil.which(skaffold) is None:
        pytest.skip("no skaffold binary here (the GitHub workflow installs one)")
    out = tmp_path_factory.mktemp("skaffold-check")
    subprocess.run(
        [str(ROOT / "ci" / "skaffold-check.sh")],
        check=True,
        cwd=ROOT,
        env={**os.environ, "REQUIRE_SKAFFOLD": "1", "SKAFFOLD_CHECK_OUT": str(out)},
        timeout=600,
    )
    return out


@pytest.mark.parametrize(
    ("name", "domain", "dev"),
    [
        ("default", "", True),
        ("registry", "localhost:5000", True),
        ("prod", "registry.hashstack.test", False),
    ],
)
def test_skaffold_renders_every_artifact_into_its_deployment(check_out, name, domain, dev):
    effective = yaml.safe_load((check_out / f"{name}.config.yaml").read_text())
    assert {a["image"] for a in effective["build"]["artifacts"]} == set(SERVICES)
    docs = parse_docs((check_out / f"{name}.render.yaml").read_text())
    found = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for svc in SERVICES:
        for container in containers(found[f"hashstack-{svc}"]):
            ref = model.parse_reference(container["image"])
            assert ref.domain == domain, container["image"]
            assert ref.path.rsplit("/", 1)[-1] == svc
            assert ref.tag.startswith("git-")
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    reload = {configmaps[f"hashstack-{svc}"]["data"].get("GUNICORN_RELOAD") for svc in SERVICES}
    assert reload == ({"true"} if dev else {None})

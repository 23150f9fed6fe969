"""Skaffold itself on skaffold.yaml, where a skaffold binary exists (on PATH or $SKAFFOLD; the
GitHub workflow installs one): ci/skaffold-check.sh runs `skaffold diagnose`, `skaffold build
--dry-run` and `skaffold render --offline` for the default pipeline and every profile, the
custom builder's included, and each answer is held to tests/skaffold/model.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.skaffold import model
from tests.skaffold.scenarios import ROOT, SKAFFOLD_YAML, containers, parse_docs
from tests.support.paths import skaffold_binary

SERVICES = ("hello", "persistence", "hash")
# The context ci/skaffold-check.sh's throwaway kubeconfig names: the kind profile activates.
CHECK_CONTEXT = "kind-skaffold-check"
# name -> (named profiles, default repo, dev): ci/skaffold-check.sh's `check` lines.
CHECKS: dict[str, tuple[tuple[str, ...], str | None, bool]] = {
    "default": ((), None, True),
    "registry": (("registry",), "localhost:5000/hashstack", True),
    "prod": (("prod",), "registry.hashstack.test/hashstack", False),
    "podman": (("podman",), None, True),
    "prod-podman": (("prod", "podman"), "registry.hashstack.test/hashstack", False),
}


@pytest.fixture(scope="module")
def check_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if skaffold_binary() is None:
        pytest.skip("no skaffold binary on PATH or in $SKAFFOLD (the GitHub workflow installs one)")
    out = tmp_path_factory.mktemp("skaffold-check")
    subprocess.run(
        [str(ROOT / "ci" / "skaffold-check.sh")],
        check=True,
        cwd=ROOT,
        env={**os.environ, "REQUIRE_SKAFFOLD": "1", "SKAFFOLD_CHECK_OUT": str(out)},
        timeout=600,
    )
    return out


def test_checks_are_the_scripts_checks():
    script = (ROOT / "ci" / "skaffold-check.sh").read_text()
    lines = [line.split() for line in script.splitlines() if line.startswith("check ")]
    assert [line[1] for line in lines] == list(CHECKS)


def contained(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where `actual` (skaffold's, defaults filled in) differs from `expected` (the model's)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [d for k, v in expected.items() for d in contained(v, actual.get(k), f"{where}.{k}")]
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        pairs = enumerate(zip(expected, actual, strict=True))
        return [d for i, (e, a) in pairs for d in contained(e, a, f"{where}[{i}]")]
    return [] if expected == actual else [f"{where}: model {expected!r}, skaffold {actual!r}"]


@pytest.mark.parametrize("name", list(CHECKS))
def test_skaffold_applies_the_profiles_as_the_model_does(check_out, name):
    named, _, _ = CHECKS[name]
    config = yaml.safe_load(SKAFFOLD_YAML.read_text())
    pipeline, _ = model.effective_config(config, CHECK_CONTEXT, "diagnose", named)
    effective = yaml.safe_load((check_out / f"{name}.config.yaml").read_text())
    for key in ("build", "deploy", "portForward"):
        if key == "build":
            # Builders and sync rules per artifact; skaffold fills in defaults besides.
            differences = contained(pipeline["build"]["artifacts"], effective["build"]["artifacts"])
            local = pipeline["build"].get("local", {})
            differences += contained(local, effective["build"].get("local", {}), ".local")
        else:
            differences = contained(pipeline.get(key), effective.get(key), key)
        assert not differences, "\n".join(differences)


@pytest.mark.parametrize("name", list(CHECKS))
def test_skaffold_tags_as_the_model_names_them(check_out, name):
    _, repo, _ = CHECKS[name]
    builds = json.loads((check_out / f"{name}.build.json").read_text())["builds"]
    assert {b["imageName"] for b in builds} == set(SERVICES)
    for build in builds:
        ref = model.parse_reference(build["tag"])
        assert ref.base_name == model.apply_default_repo(repo, build["imageName"]), build
        assert ref.tag.startswith("git-"), build


@pytest.mark.parametrize("name", list(CHECKS))
def test_skaffold_renders_every_artifact_into_its_deployment(check_out, name):
    _, repo, dev = CHECKS[name]
    domain = model.parse_reference(model.apply_default_repo(repo, "x")).domain
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

"""The release workflow and the ci/release.sh steps it runs.

The workflow: schema-valid, triggered by version tags only, actions pinned by SHA (the same SHA
ci.yml pins for the same action), each job with the least permissions it needs.
The steps: verify, chart and index run for real here (real helm, a real registry on loopback, a
real HTTP server standing in for GitHub Pages). images, login and sign need a Docker engine,
the internet and an OIDC identity, which this machine does not have: they run against recording
stand-ins for docker and cosign (and helm, for login) that log their arguments and stdin.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import itertools
import json
import os
import shlex
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import version
import yaml

from tests.support.files import load_yaml
from tests.support.helm import run_helm
from tests.support.paths import ROOT, WORKFLOW
from tests.support.registry import Registry, running_registry
from tests.support.schemas import workflow_schema

from .test_workflow import SHA_PIN

RELEASE_WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
VERSION = version.chart_version(version.Tree(ROOT))
OWNER = "example-owner"


@pytest.fixture(scope="module")
def release_workflow() -> dict[str, Any]:
    data = load_yaml(RELEASE_WORKFLOW)
    assert isinstance(data, dict)
    return data


def job_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def uses(job: dict[str, Any]) -> list[str]:
    return [step["uses"].split("@")[0] for step in job_steps(job) if "uses" in step]


def runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job_steps(job) if "run" in step]


def test_release_workflow_is_valid_against_the_schema(release_workflow: dict[str, Any]) -> None:
    schema, _ = workflow_schema()
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(release_workflow), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_runs_on_version_tags_only(release_workflow: dict[str, Any]) -> None:
    assert release_workflow["on"] == {"push": {"tags": ["v*.*.*"]}}


def pins(path: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        if "uses:" in line:
            match = SHA_PIN.match(line)
            assert match, (
                f"{path.name}: pin by 40-hex SHA with a `# vX.Y.Z` comment: {line.strip()}"
            )
            found.setdefault(match.group(1), set()).add(match.group(2))
    return found


def test_actions_are_pinned_by_sha_and_agree_with_ci_yml() -> None:
    release, ci = pins(RELEASE_WORKFLOW), pins(WORKFLOW)
    for action, shas in release.items():
        assert len(shas) == 1, f"{action} pinned to several SHAs: {shas}"
        if action in ci:
            assert shas == ci[action], f"{action}: release.yml and ci.yml pin different SHAs"
    # The ones CI already pins are reused, not re-pinned.
    assert {"actions/checkout", "actions/setup-python", "azure/setup-helm"} <= set(release) & set(
        ci
    )


# Exactly what each job may do; nothing at the top level.
PERMISSIONS = {
    "verify": {"contents": "read"},
    "images": {"contents": "read", "packages": "write", "id-token": "write"},
    "chart": {"contents": "read", "packages": "write", "id-token": "write"},
    "pages": {"pages": "write", "id-token": "write"},
}


def test_least_privilege_permissions(release_workflow: dict[str, Any]) -> None:
    assert release_workflow["permissions"] == {}
    jobs = release_workflow["jobs"]
    assert {name: job["permissions"] for name, job in jobs.items()} == PERMISSIONS
    for name, job in jobs.items():
        assert 0 < job["timeout-minutes"] <= 60, name
        signs = "ci/release.sh sign" in runs(job)
        # id-token only where cosign signs keyless or Pages deploys.
        if job["permissions"].get("id-token") == "write":
            assert signs or "actions/deploy-pages" in uses(job), name
        if signs:
            assert "sigstore/cosign-installer" in uses(job), name
        for step in job_steps(job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name


def test_steps_run_ci_scripts_that_exist(release_workflow: dict[str, Any]) -> None:
    commands = [r for job in release_workflow["jobs"].values() for r in runs(job)]
    assert commands
    for command in commands:
        assert "\n" not in command.strip()
        assert "${{" not in command, f"expressions go through env, not into the shell: {command}"
        program, subcommand = shlex.split(command)[:2]
        assert program == "ci/release.sh", command
        assert f"\n  {subcommand})" in (ROOT / program).read_text(), command


def test_the_jobs_run_in_release_order(release_workflow: dict[str, Any]) -> None:
    jobs = release_workflow["jobs"]
    assert jobs["images"]["needs"] == "verify"
    assert jobs["chart"]["needs"] == "images"
    assert jobs["pages"]["needs"] == "chart"
    assert sorted(jobs["images"]["strategy"]["matrix"]["service"]) == [
        "hash",
        "hello",
        "persistence",
    ]
    # arm64 under QEMU, and buildx's container builder, which stores SBOM and provenance.
    assert uses(jobs["images"])[2:5] == [
        "docker/setup-qemu-action", "docker/setup-buildx-action", "sigstore/cosign-installer",
    ]  # fmt: skip
    chart_steps = runs(jobs["chart"])
    assert chart_steps.index(
        'ci/release.sh chart "$CHART_REPO" "$IMAGE_REGISTRY"'
    ) < chart_steps.index("ci/release.sh sign")
    upload = next(
        s for s in job_steps(jobs["chart"]) if "upload-pages-artifact" in s.get("uses", "")
    )
    assert upload["with"]["path"] == "dist/release/site"
    assert jobs["pages"]["environment"]["name"] == "github-pages"


# ---- the scripts ----------------------------------------------------------------------------


def release_sh(
    *args: str, dist: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "ci" / "release.sh"), *args],
        capture_output=True, text=True, check=False, timeout=300, input=stdin,
        env={**os.environ, "DIST": str(dist), **(env or {})},
    )  # fmt: skip


def test_verify_accepts_the_release_tag_and_refuses_another(tmp_path: Path) -> None:
    assert release_sh("verify", f"v{VERSION}", dist=tmp_path).returncode == 0
    refused = release_sh("verify", "v99.0.0", dist=tmp_path)
    assert refused.returncode == 1
    assert f"tag v99.0.0 does not name the release version (want v{VERSION})" in refused.stderr


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("release-registry")) as running:
        yield running


def chart_yaml_in(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("hashstack/Chart.yaml")
        assert member is not None
        return dict(yaml.safe_load(member.read()))


def test_chart_is_pushed_with_the_published_image_names(registry: Registry, tmp_path: Path) -> None:
    before = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "charts"], capture_output=True, text=True
    ).stdout
    result = release_sh(
        "chart", f"oci://{registry.address}/charts", f"ghcr.io/{OWNER.upper()}",
        dist=tmp_path, env={"PLAIN_HTTP": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = (tmp_path / "chart.txt").read_text().splitlines()
    ref, digest = line.split("@")
    assert ref == f"{registry.address}/charts/hashstack:{VERSION}"
    assert registry.manifest("charts/hashstack", VERSION)[0] == digest

    chart = chart_yaml_in(tmp_path / f"hashstack-{VERSION}.tgz")
    images = version.annotated_images(chart, "released chart")
    for svc in version.SERVICES:
        assert images[svc] == f"ghcr.io/{OWNER}/hashstack/{svc}:{VERSION}"
    assert images["etcd"] == version.deployed_images(version.Tree(ROOT))["etcd"]
    # The work tree's chart is untouched: only the released copy names ghcr.io.
    after = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "charts"], capture_output=True, text=True
    ).stdout
    assert after == before


def test_chart_refuses_a_repository_that_is_not_oci(tmp_path: Path) -> None:
    result = release_sh("chart", "https://example.invalid/charts", "ghcr.io/x", dist=tmp_path)
    assert result.returncode == 1
    assert "OCI_REPO must start with oci://" in result.stderr


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(url, directory): a real HTTP server on loopback standing in for GitHub Pages."""
    root = tmp_path / "pages"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


# helm with its homes under `home` (helm(..., home=...)).
helm = functools.partial(run_helm, "helm")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_index_keeps_the_published_charts_and_adds_this_one(
    pages: tuple[str, Path], tmp_path: Path
) -> None:
    url, served = pages
    home = tmp_path / "helm-home"
    # What Pages serves from an earlier release: an older chart and its index.
    helm(
        "package",
        str(ROOT / "charts" / "hashstack"),
        "--version",
        "0.0.9",
        "-d",
        str(served),
        home=home,
    )
    helm("repo", "index", str(served), "--url", url, home=home)
    old_entry = yaml.safe_load((served / "index.yaml").read_text())["entries"]["hashstack"][0]

    dist = tmp_path / "dist"
    dist.mkdir()
    helm("package", str(ROOT / "charts" / "hashstack"), "-d", str(dist), home=home)
    result = release_sh("index", url + "/", dist=dist)
    assert result.returncode == 0, result.stdout + result.stderr

    site = dist / "site"
    assert sorted(p.name for p in site.glob("*.tgz")) == [
        "hashstack-0.0.9.tgz",
        f"hashstack-{VERSION}.tgz",
    ]
    entries = {
        e["version"]: e
        for e in yaml.safe_load((site / "index.yaml").read_text())["entries"]["hashstack"]
    }
    assert set(entries) == {"0.0.9", VERSION}
    assert entries["0.0.9"]["digest"] == old_entry["digest"] == sha256(site / "hashstack-0.0.9.tgz")
    assert entries["0.0.9"]["created"] == old_entry["created"], (
        "--merge keeps old entries as they were"
    )
    assert entries[VERSION]["urls"] == [f"{url}/hashstack-{VERSION}.tgz"]
    assert entries[VERSION]["digest"] == sha256(dist / f"hashstack-{VERSION}.tgz")

    # Deploy the new site in place of the old one; a Helm user adds the repository and pulls.
    for path in site.iterdir():
        (served / path.name).write_bytes(path.read_bytes())
    helm("repo", "add", "hashstack", url, home=home)
    found = helm("search", "repo", "hashstack/hashstack", "--versions", "-o", "json", home=home)
    assert {e["version"] for e in json.loads(found.stdout)} == {"0.0.9", VERSION}
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    helm("pull", "hashstack/hashstack", "--version", VERSION, "-d", str(pulled), home=home)
    assert sha256(pulled / f"hashstack-{VERSION}.tgz") == sha256(dist / f"hashstack-{VERSION}.tgz")


def test_index_starts_a_repository_when_pages_has_none(
    pages: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = pages
    helm("package", str(ROOT / "charts" / "hashstack"), "-d", str(tmp_path), home=tmp_path / "h")
    result = release_sh("index", url, dist=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no index at" in result.stdout
    index = yaml.safe_load((tmp_path / "site" / "index.yaml").read_text())
    assert [e["version"] for e in index["entries"]["hashstack"]] == [VERSION]


# Recording stand-ins: docker (no engine here), cosign (no OIDC identity here), helm for login.
RECORDER = """#!/usr/bin/env bash
set -euo pipefail
{ printf '%s' "$(basename "$0")"; printf ' %q' "$@"; printf '\\n'; } >>"$RECORD"
if [ ! -t 0 ]; then stdin=$(cat); [ -z "$stdin" ] || echo "stdin: $stdin" >>"$RECORD"; fi
# docker buildx build --metadata-file FILE: write what buildx writes, with a made-up digest.
prev=""
for arg in "$@"; do
  if [ "$prev" = --metadata-file ]; then
    digest=$(printf '%s' "$*" | sha256sum | cut -d' ' -f1)
    printf '{"containerimage.digest": "sha256:%s"}' "$digest" >"$arg"
  fi
  prev=$arg
done
"""


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("docker", "cosign", "helm"):
        (bin_dir / tool).write_text(RECORDER)
        (bin_dir / tool).chmod(0o755)
    record = tmp_path / "record.txt"
    # env.sh puts .venv/bin and .cache/bin first; these come before those.
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RECORD": str(record),
        "HASHSTACK_CACHE": str(bin_dir.parent / "c"),
    }
    return env, record


def test_images_build_both_platforms_with_attestations_and_sign(
    recorded: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, record = recorded
    dist = tmp_path / "dist"
    result = release_sh("images", f"ghcr.io/{OWNER.upper()}", "hello", "hash", dist=dist, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    builds = [
        shlex.split(line)
        for line in record.read_text().splitlines()
        if line.startswith("docker buildx")
    ]
    assert len(builds) == 2
    for build, svc in zip(builds, ("hello", "hash"), strict=True):
        flags = dict(itertools.pairwise(build))
        assert flags["--platform"] == "linux/amd64,linux/arm64"
        assert flags["--target"] == svc
        assert flags["--tag"] == f"ghcr.io/{OWNER}/hashstack/{svc}:{VERSION}"
        assert {"--sbom=true", "--provenance=mode=max", "--push"} <= set(build)
        assert f"VERSION={VERSION}" in build
        assert build[-1] == "images/"
    pushed = (dist / "images.txt").read_text().splitlines()
    assert [p.split("@")[0] for p in pushed] == [
        f"ghcr.io/{OWNER}/hashstack/{s}:{VERSION}" for s in ("hello", "hash")
    ]

    (dist / "chart.txt").write_text(
        f"ghcr.io/{OWNER}/charts/hashstack:{VERSION}@sha256:{'a' * 64}\n"
    )
    result = release_sh("sign", dist=dist, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    signed = [line for line in record.read_text().splitlines() if line.startswith("cosign")]
    assert signed == [
        f"cosign sign --yes {ref}"
        for ref in [*pushed, f"ghcr.io/{OWNER}/charts/hashstack:{VERSION}@sha256:{'a' * 64}"]
    ]


def test_images_refuse_an_unknown_service(
    recorded: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, _ = recorded
    result = release_sh("images", "ghcr.io/x", "nginx", dist=tmp_path, env=env)
    assert result.returncode == 1
    assert "unknown service: nginx" in result.stderr


def test_sign_refuses_when_nothing_was_pushed(
    recorded: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, _ = recorded
    result = release_sh("sign", dist=tmp_path, env=env)
    assert result.returncode == 1
    assert "nothing to sign" in result.stderr


def test_login_passes_the_token_on_stdin_only(
    recorded: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, record = recorded
    secret = "ghs_not-a-real-token"
    refused = release_sh("login", "ghcr.io/x", dist=tmp_path, env=env)
    assert refused.returncode == 1
    assert "REGISTRY_USER" in refused.stderr
    env = {**env, "REGISTRY_USER": "someone", "REGISTRY_PASSWORD": secret}
    result = release_sh("login", f"ghcr.io/{OWNER}", dist=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = record.read_text().splitlines()
    commands = [line for line in lines if not line.startswith("stdin: ")]
    assert commands == [
        "docker login ghcr.io --username someone --password-stdin",
        "helm registry login ghcr.io --username someone --password-stdin",
    ]
    assert lines.count(f"stdin: {secret}") == 2

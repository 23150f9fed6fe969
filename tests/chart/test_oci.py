"""The chart as an OCI artifact, for real: helm package, helm push to a registry on loopback,
helm pull and helm template oci://... back, with Helm 4 and Helm 3: the very archive comes back
and renders the very objects the directory chart renders."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.registry import HELM_CHART_LAYER, Registry, running_registry

from .rendering import (
    CHART,
    CHART_VERSION,
    HELMS,
    NAMESPACE,
    RELEASE,
    ci_values_file,
    parse_docs,
    run_helm,
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("oci-registry")) as running:
        yield running


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def template_args(chart: str) -> list[str]:
    values = str(ci_values_file("default"))
    return ["template", RELEASE, chart, "--namespace", NAMESPACE, "-f", values]


@pytest.mark.parametrize("helm", HELMS)
def test_push_pull_template_round_trip(
    helm: str, helm_bins: dict[str, Path], registry: Registry, tmp_path: Path
) -> None:
    binary = helm_bins[helm]
    # A clean copy: the vendored subchart directories are the dependencies, no archives.
    chart_dir = tmp_path / "src" / "hashstack"
    shutil.copytree(CHART, chart_dir, ignore=shutil.ignore_patterns("*.tgz"))
    packaged = Path(
        run_helm(binary, "package", str(chart_dir), "--destination", str(tmp_path / "pkg"))
        .stdout.strip().rsplit(": ", 1)[1]
    )  # fmt: skip
    assert packaged.name == f"hashstack-{CHART_VERSION}.tgz"

    # One repository per Helm, so the two runs cannot see each other's push.
    repo = f"{helm}/charts"
    pushed = run_helm(
        binary, "push", str(packaged), f"oci://{registry.address}/{repo}", "--plain-http"
    )
    pushed_digest = re.search(r"Digest:\s*(sha256:[0-9a-f]{64})", pushed.stdout + pushed.stderr)
    assert pushed_digest, pushed.stdout + pushed.stderr

    # The registry holds a Helm chart manifest whose content layer is our archive, byte for byte.
    digest, manifest = registry.manifest(f"{repo}/hashstack", CHART_VERSION)
    assert digest == pushed_digest.group(1)
    [layer] = [entry for entry in manifest["layers"] if entry["mediaType"] == HELM_CHART_LAYER]
    assert layer["digest"] == sha256(packaged)
    assert registry.blob(f"{repo}/hashstack", layer["digest"]) == packaged.read_bytes()

    ref = f"oci://{registry.address}/{repo}/hashstack"
    pulled_dir = tmp_path / "pulled"
    pulled_dir.mkdir()
    pulled = run_helm(
        binary, "pull", ref, "--version", CHART_VERSION, "--plain-http",
        "--destination", str(pulled_dir),
    )  # fmt: skip
    assert digest in pulled.stdout + pulled.stderr
    assert sha256(pulled_dir / packaged.name) == sha256(packaged)

    from_registry = parse_docs(
        run_helm(binary, *template_args(ref), "--version", CHART_VERSION, "--plain-http").stdout
    )
    from_directory = parse_docs(run_helm(binary, *template_args(str(chart_dir))).stdout)
    assert len(from_directory) > 10
    assert from_registry == from_directory

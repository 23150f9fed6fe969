"""ci/install-tools.sh: pinned helm, helm3 and kubectl, checked by sha256, refused on a mismatch."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import zipfile
from pathlib import Path

from .rendering import ROOT

SCRIPT = ROOT / "ci" / "install-tools.sh"


def pinned(name: str) -> str:
    match = re.search(rf'^{name}="([^"]+)"$', SCRIPT.read_text(), re.MULTILINE)
    assert match, f"{name} not pinned in {SCRIPT.name}"
    return match.group(1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_installed_tools_are_the_pinned_ones(helm_bins: dict[str, Path]) -> None:
    bin_dir = helm_bins["helm3"].parent
    assert sha256(bin_dir / "helm3") == pinned("HELM3_SHA256")
    assert sha256(bin_dir / "kubectl") == pinned("KUBECTL_SHA256")
    helm = helm_bins["helm"]
    version = subprocess.run(
        [str(helm), "version", "--template", "{{.Version}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Ours (pinned) unless a fitting helm was already on PATH.
    if not helm.is_symlink():
        assert sha256(helm) == pinned("HELM4_SHA256")
        assert version == pinned("HELM4_VERSION")
    assert re.fullmatch(r"v(4\.\d+|3\.(1[89]|[2-9]\d))\.\d+", version), version
    kubectl = subprocess.run(
        [str(bin_dir / "kubectl"), "version", "--client", "-o", "yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"gitVersion: {pinned('KUBECTL_VERSION')}" in kubectl


def test_a_second_run_installs_nothing(helm_bins: dict[str, Path]) -> None:
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=True)
    assert "installed" not in result.stderr, result.stderr


def test_a_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    """A layer zip whose helm differs from the pinned sha256: nothing is installed,
    the script fails and drops the bad zip so the next run fetches it again."""
    tools = tmp_path / "tools"
    tools.mkdir()
    bad_zip = tools / "kubectl-v35-layer.zip"
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("helm/helm", b"#!/bin/sh\necho not helm\n")
        z.writestr("kubectl/kubectl", b"#!/bin/sh\necho not kubectl\n")
    # No helm on PATH, so the script must use (and check) the zip.
    env = {**os.environ, "HASHSTACK_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "REFUSED helm/helm" in result.stderr
    assert pinned("HELM4_SHA256") in result.stderr
    assert not (tmp_path / "bin" / "helm").exists()
    assert not bad_zip.exists()

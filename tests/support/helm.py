"""The one way tests run helm: the binaries ci/install-tools.sh pins, with a private home."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import ROOT, tools_bin


def installed_helms() -> dict[str, Path]:
    """helm (v4) and helm3 from ci/install-tools.sh (run here when they are missing)."""
    bins = {name: tools_bin() / name for name in ("helm", "helm3")}
    if not all(path.exists() for path in bins.values()):
        subprocess.run([str(ROOT / "ci" / "install-tools.sh")], check=True)
    return bins


def run_helm(
    helm: Path | str = "helm",
    *args: str,
    check: bool = True,
    cwd: Path | None = None,
    home: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run helm (a path, or "helm"/"helm3") with a private home (`home`, or one under .cache),
    so no user repositories or plugins leak in; an AssertionError with helm's output when it
    fails."""
    binary = installed_helms()[helm] if isinstance(helm, str) else helm
    home = home or tools_bin().parent / "helm-home"
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    result = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def parse_docs(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream (helm template's output), empty ones dropped."""
    return [doc for doc in yaml.safe_load_all(text) if doc]

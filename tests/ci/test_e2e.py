"""`make e2e` without any cluster: a clear message and a non-zero exit, nothing built."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import ROOT

from .test_cluster_suite import unreachable_kubeconfig


@pytest.mark.slow
def test_e2e_without_a_cluster_says_so_and_fails(tmp_path: Path) -> None:
    kubeconfig = unreachable_kubeconfig(tmp_path)
    # E2E_CLUSTER=current: never create a kind cluster from a test, even where kind exists.
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "E2E_CLUSTER": "current"}
    proc = subprocess.run(
        ["make", "--no-print-directory", "e2e"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "e2e: no reachable cluster" in proc.stderr, proc.stderr[-2000:]
    assert "ci/images.sh" not in proc.stderr  # failed before building anything


def test_e2e_rejects_an_unknown_mode() -> None:
    env = {**os.environ, "E2E_CLUSTER": "minikube-please"}
    proc = subprocess.run(
        ["ci/e2e.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "E2E_CLUSTER must be auto, kind or current" in proc.stderr

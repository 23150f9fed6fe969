"""Where things are: the repository, its chart, workflow, tools and the shared schemas."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "hashstack"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
# Custom resource schemas kept as test data, each with the registry package it came from.
CRDS = ROOT / "tests" / "data" / "crds"
# The GitOps examples people copy (docs/gitops.md shows them).
EXAMPLES = ROOT / "docs" / "examples"
# JSON schemas shared beside the repository (never copied into it); the tests prefer these and
# fall back to the copies check-jsonschema ships (tests/support/schemas.py).
# HASHSTACK_SHARED_SCHEMAS names them for a checkout elsewhere (a git worktree).
SHARED_SCHEMAS = Path(
    os.environ.get("HASHSTACK_SHARED_SCHEMAS", ROOT.parent / "shared" / "schemas")
)


def tools_bin() -> Path:
    """helm, helm3 and kubectl from ci/install-tools.sh."""
    return Path(os.environ.get("HASHSTACK_CACHE", ROOT / ".cache")) / "bin"


def skaffold_binary() -> str | None:
    """The skaffold to run: $SKAFFOLD (a path or a name on PATH, as ci/dev.sh and
    ci/skaffold-check.sh read it), else skaffold on PATH; None when there is none."""
    return shutil.which(os.environ.get("SKAFFOLD") or "skaffold")

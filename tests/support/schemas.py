"""JSON schemas the tests validate against: the shared copies beside the repository when they
are there (../shared/schemas), else a source a CI runner has, so the checks run on GitHub too."""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from typing import Any

from tests.support.paths import SHARED_SCHEMAS, skaffold_binary

SKAFFOLD_API = "skaffold/v4beta14"


def workflow_schema() -> tuple[dict[str, Any], str]:
    """(schema, where from): GitHub's workflow schema; check-jsonschema ships a copy."""
    shared = SHARED_SCHEMAS / "github-workflow.json"
    if shared.is_file():
        return json.loads(shared.read_text()), str(shared)
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "github-workflows.json"
    return json.loads(vendored.read_text()), "check-jsonschema's vendored github-workflows.json"


def skaffold_schema() -> tuple[dict[str, Any], str] | None:
    """(schema, where from) for skaffold.yaml's apiVersion: the shared copy, else the one the
    skaffold binary prints (`skaffold schema get`, the workflow's skaffold job); None: neither."""
    shared = SHARED_SCHEMAS / f"{SKAFFOLD_API.replace('/', '-')}.json"
    if shared.is_file():
        return json.loads(shared.read_text()), str(shared)
    skaffold = skaffold_binary()
    if skaffold is None:
        return None
    out = subprocess.run(
        [skaffold, "schema", "get", SKAFFOLD_API],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(out.stdout), f"skaffold schema get {SKAFFOLD_API}"

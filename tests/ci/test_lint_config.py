"""`make lint` runs once (CI's lint job and .ci/run), not inside the tests: these checks only
hold its configuration to what the docs promise."""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
LINT = (ROOT / "ci" / "lint.sh").read_text()


def test_lint_runs_every_linter() -> None:
    for command in (
        "ruff check",
        "ruff format --check",
        "mypy",
        "shellcheck -x -P SCRIPTDIR",
        "hadolint images/Dockerfile",
        "yamllint",
        "helm lint --strict",
        "--config-file ci/checkov.yaml",
    ):
        assert command in LINT, f"ci/lint.sh does not run {command}"


def test_ci_entry_point_lints_then_tests() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert run.index("make lint") < run.index("make test")


def test_every_declined_checkov_check_says_why() -> None:
    text = (ROOT / "ci" / "checkov.yaml").read_text()
    config = YAML(typ="safe", pure=True).load(text)
    assert config["framework"] == ["kubernetes"]
    skipped = config["skip-check"]
    assert skipped, "nothing declined: drop the list"
    lines = text.splitlines()
    for check in skipped:
        assert re.fullmatch(r"CKV_K8S_\d+", check), check
        at = lines.index(f"  - {check}")
        # The reason is the comment block right above the check (or above its group).
        above = [line for line in lines[:at] if line.strip()]
        reason = [line for line in reversed(above) if not line.strip().startswith("- ")]
        assert reason, f"{check}: no reason given"
        assert reason[0].strip().startswith("#"), f"{check}: no reason given"

"""Every shell script CI runs: strict mode, executable, and called from the workflow or the
Makefile (directly, or through a script that is). `make lint` runs shellcheck over the same
scripts (ci/lint.sh); test_lint_config checks that it does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.paths import ROOT, WORKFLOW


def shell_scripts() -> list[Path]:
    found = sorted((ROOT / "ci").rglob("*.sh"))
    run = ROOT / ".ci" / "run"
    return [*found, run] if run.is_file() else found


SCRIPTS = shell_scripts()
IDS = [str(p.relative_to(ROOT)) for p in SCRIPTS]


def test_there_are_scripts_to_check() -> None:
    names = set(IDS)
    assert {"ci/lint.sh", "ci/e2e.sh", "ci/kind/cluster.sh", ".ci/run"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=IDS)
def test_strict_mode_and_executable(script: Path) -> None:
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") or script.name == "env.sh", "bash shebang"
    if script.name != "env.sh":  # env.sh is sourced, never run
        assert "set -euo pipefail" in text
        assert script.stat().st_mode & 0o111, "not executable"


def references(text: str) -> set[str]:
    """ci/ script paths a text calls or sources (`ci/x.sh`, `$(dirname "$0")/x.sh`)."""
    return set(re.findall(r"(?<![\w/.-])(?:\./)?(ci/[\w./-]+\.sh)", text))


def relative_references(script: Path) -> set[str]:
    # `source "$(dirname "$0")/env.sh"` and `"$(dirname "$0")/../env.sh"` style calls.
    found = set()
    for rel in re.findall(
        r'\$\(dirname "\$(?:0|\{BASH_SOURCE\[0\]\})"\)/([\w./-]+\.sh)', script.read_text()
    ):
        target = (script.parent / rel).resolve()
        if target.is_file():
            found.add(str(target.relative_to(ROOT)))
    return found


def test_every_script_is_reached_from_the_workflow_or_the_makefile() -> None:
    """Roots: the workflows' run steps and the Makefile's recipes. A reached script reaches
    what it calls; ci/test.sh runs pytest over tests/, so scripts the tests start count too."""
    workflows = sorted(WORKFLOW.parent.glob("*.yml"))
    reached = references((ROOT / "Makefile").read_text())
    for workflow in workflows:
        reached |= references(workflow.read_text())
    if "ci/test.sh" in reached:
        for test_file in (ROOT / "tests").rglob("*.py"):
            reached |= references(test_file.read_text())
    frontier = set(reached)
    while frontier:
        script = ROOT / frontier.pop()
        if not script.is_file():
            continue
        new = (references(script.read_text()) | relative_references(script)) - reached
        reached |= new
        frontier |= new
    unreached = [name for name in IDS if name not in reached and name != ".ci/run"]
    assert not unreached, f"no workflow step or make target calls: {unreached}"
    # .ci/run is the README's test command; it must run the same `make test`.
    assert "make test" in (ROOT / ".ci" / "run").read_text()

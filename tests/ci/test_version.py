"""Version discipline: every place says the release version, `set` moves them all, and the
bump check refuses a chart change under a released version, on real git history."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import version

from tests.chart.rendering import CHART_VERSION
from tests.support.helm import run_helm
from tests.support.paths import ROOT

CHART = Path("charts/hashstack")
# What `check` and `set` read: the chart and the package the images are built from.
PROJECT_FILES = (str(CHART), *(path for path, _, _ in version.PACKAGE_PLACES))


def copy_project(dest: Path) -> Path:
    for name in PROJECT_FILES:
        source, target = ROOT / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.tgz"))
        else:
            shutil.copyfile(source, target)
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_every_place_says_the_release_version() -> None:
    assert version.disagreements(version.Tree(ROOT)) == []


def test_the_release_version_is_chart_yaml_version() -> None:
    shown = subprocess.run(
        [str(ROOT / "ci" / "version.py"), "show"], capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == CHART_VERSION


@pytest.mark.parametrize(
    ("path", "old", "new", "named"),
    [
        ("charts/hashstack/Chart.yaml", 'appVersion: "0.1.0"', 'appVersion: "0.0.9"', "appVersion"),
        ("charts/hashstack/charts/etcd/Chart.yaml", "version: 0.1.0", "version: 0.0.9", "etcd"),
        ("charts/hashstack/Chart.lock", "version: 0.1.0", "version: 0.0.9", "Chart.lock"),
        ("charts/hashstack/Chart.yaml", "hashstack/hash:0.1.0", "hashstack/hash:latest", "images"),
        ("charts/hashstack/charts/registry/values.yaml", '"3.0.0"', '"3.0.1"', "registry"),
        ("charts/hashstack/values.yaml", 'tag: ""', 'tag: "0.0.1"', "hello.image.tag"),
        ("images/pyproject.toml", 'version = "0.1.0"', 'version = "0.0.0-x"', "pyproject"),
        ("charts/hashstack/Chart.yaml", "- kind: added", "- kind: improved", "changes"),
    ],
)
def test_check_names_the_place_that_disagrees(
    tmp_path: Path, path: str, old: str, new: str, named: str
) -> None:
    root = copy_project(tmp_path)
    current = version.chart_version(version.Tree(root))
    edit(root / path, old.replace("0.1.0", current), new)
    problems = version.disagreements(version.Tree(root))
    assert len(problems) >= 1
    assert any(named in problem for problem in problems), problems


def test_a_tag_must_name_the_release_version() -> None:
    current = version.chart_version(version.Tree(ROOT))
    assert version.disagreements(version.Tree(ROOT), tag=f"v{current}") == []
    assert version.disagreements(version.Tree(ROOT), tag="v99.0.0") != []


def test_set_moves_every_place_and_helm_accepts_the_lock(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    version.set_version(root, "7.8.9-rc.1")
    assert version.disagreements(version.Tree(root)) == []
    assert version.chart_version(version.Tree(root)) == "7.8.9-rc.1"
    # The relocked Chart.lock is in sync: `helm dependency build` does not complain.
    built = run_helm("helm", "dependency", "build", str(root / CHART), check=False)
    assert built.returncode == 0, built.stderr
    assert "out of sync" not in built.stderr
    assert (root / CHART / "charts" / "etcd-7.8.9-rc.1.tgz").is_file()


def test_set_refuses_a_version_that_is_not_semver(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    with pytest.raises(version.VersionError, match="not a SemVer"):
        version.set_version(root, "1.2")


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("0.1.0", "0.1.1"),
        ("0.9.0", "0.10.0"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.0.0-rc.2", "1.0.0-rc.10"),
    ],
)
def test_semver_order(older: str, newer: str) -> None:
    assert version.semver_key(older) < version.semver_key(newer)


# The bump check on a real repository: a temp git repo with the chart, history made here.


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = copy_project(tmp_path / "repo")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "config", "user.email", "release@example.invalid")
    git(root, "config", "user.name", "release check")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "chart")
    return root


def release(root: Path) -> str:
    current = version.chart_version(version.Tree(root))
    git(root, "tag", f"v{current}")
    return current


def branch_with(root: Path, message: str, *edits: tuple[str, str, str]) -> None:
    git(root, "checkout", "--quiet", "-b", "change")
    for path, old, new in edits:
        edit(root / path, old, new)
    git(root, "commit", "--quiet", "-am", message)


def test_a_chart_change_under_a_released_version_is_refused(repo: Path) -> None:
    released = release(repo)
    branch_with(
        repo, "probe", ("charts/hashstack/values.yaml", "replicaCount: 1", "replicaCount: 2")
    )
    _, problems = version.bump_problems(repo, "main")
    assert any(f"not above the released {released}" in p for p in problems), problems
    assert any("artifacthub.io/changes still lists" in p for p in problems), problems


def test_a_bump_without_new_changes_is_refused(repo: Path) -> None:
    release(repo)
    git(repo, "checkout", "--quiet", "-b", "change")
    edit(repo / "charts/hashstack/values.yaml", "replicaCount: 1", "replicaCount: 2")
    version.set_version(repo, "0.99.0")
    git(repo, "commit", "--quiet", "-am", "bump only")
    _, problems = version.bump_problems(repo, "main")
    assert problems == [
        "artifacthub.io/changes still lists the changes of "
        f"{version.chart_version(version.Tree(repo, 'main'))}: describe this release's"
    ]


def test_a_bump_with_new_changes_passes(repo: Path) -> None:
    old = release(repo)
    git(repo, "checkout", "--quiet", "-b", "change")
    edit(repo / "charts/hashstack/values.yaml", "replicaCount: 1", "replicaCount: 2")
    version.set_version(repo, "0.99.0")
    chart = repo / CHART / "Chart.yaml"
    entry = "    - kind: changed\n      description: two hello pods\n"
    edit(chart, "  artifacthub.io/changes: |\n", "  artifacthub.io/changes: |\n" + entry)
    git(repo, "commit", "--quiet", "-am", "two hello pods")
    found, problems = version.bump_problems(repo, "main")
    assert problems == []
    assert f"bumped from {old} to 0.99.0" in found


def bump_check_command(repo: Path, base: str) -> subprocess.CompletedProcess[str]:
    """The command CI runs, as a copy inside the temp repository (it reads its own tree)."""
    script = repo / "ci" / "version.py"
    script.parent.mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "ci" / "version.py", script)
    return subprocess.run(
        ["python3", str(script), "bump-check", base], capture_output=True, text=True, check=False
    )


def test_the_command_exits_1_with_one_line_per_problem(repo: Path) -> None:
    released = release(repo)
    branch_with(
        repo, "probe", ("charts/hashstack/values.yaml", "replicaCount: 1", "replicaCount: 2")
    )
    result = bump_check_command(repo, "main")
    assert result.returncode == 1
    assert f"version: the chart changed (1 files) but its version {released}" in result.stderr
    assert "Traceback" not in result.stderr
    git(repo, "checkout", "--quiet", "main")
    assert bump_check_command(repo, "main").returncode == 0


def test_a_version_going_down_is_refused(repo: Path) -> None:
    release(repo)
    git(repo, "checkout", "--quiet", "-b", "change")
    version.set_version(repo, "0.0.1")
    git(repo, "commit", "--quiet", "-am", "down")
    _, problems = version.bump_problems(repo, "main")
    assert any("is not above" in p for p in problems), problems


def test_changes_outside_the_chart_need_no_bump(repo: Path) -> None:
    release(repo)
    git(repo, "checkout", "--quiet", "-b", "change")
    (repo / "NOTES").write_text("not the chart\n")
    git(repo, "add", "NOTES")
    git(repo, "commit", "--quiet", "-m", "notes")
    found, problems = version.bump_problems(repo, "main")
    assert problems == []
    assert found == "no chart change since main"


def test_an_unreleased_version_takes_more_changes_without_a_bump(repo: Path) -> None:
    # No tag: the version on main is the release in flight, so a second change joins it.
    git(repo, "checkout", "--quiet", "-b", "change")
    edit(repo / "charts/hashstack/values.yaml", "replicaCount: 1", "replicaCount: 2")
    git(repo, "commit", "--quiet", "-am", "two pods")
    found, problems = version.bump_problems(repo, "main")
    assert problems == []
    assert "not released yet" in found


def test_uncommitted_chart_edits_count_too(repo: Path) -> None:
    release(repo)
    edit(repo / "charts/hashstack/values.yaml", "replicaCount: 1", "replicaCount: 3")
    _, problems = version.bump_problems(repo, "HEAD")
    assert problems, "a dirty chart under a released version must be refused"


def test_ci_runs_the_checks_on_every_pull_request(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["version"]
    commands = [step["run"] for step in job["steps"] if "run" in step]
    assert commands == ["ci/version.sh check", 'ci/version.sh bump-check "$BASE_REF"']
    bump = next(step for step in job["steps"] if "bump-check" in step.get("run", ""))
    assert bump["if"] == "github.event_name == 'pull_request'"
    assert job["env"]["BASE_REF"] == "origin/${{ github.base_ref }}"
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    # The merge base and the release tags: the whole history.
    assert checkout["with"]["fetch-depth"] == 0

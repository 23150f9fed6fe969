#!/usr/bin/env python3
"""The release version: `version` in charts/hashstack/Chart.yaml is the one place that says it.

Everything else restates it and must agree (Helm and the image build need literal values):
Chart.yaml `appVersion`, the subcharts' versions (released in lock-step with the umbrella), the
dependency versions in Chart.yaml and Chart.lock, the default image tags, `artifacthub.io/images`
and the Python package the images are built from.

    ci/version.py show                  print the release version
    ci/version.py check [--tag vX.Y.Z]  every place agrees (and the tag names this version)
    ci/version.py bump-check BASE_REF   a chart change since BASE_REF bumps the version and
                                        rewrites artifacthub.io/changes, once BASE_REF's
                                        version is released (tagged vX.Y.Z): a released
                                        version never names a second chart
    ci/version.py set X.Y.Z             write X.Y.Z into every place
    ci/version.py images                "NAME REFERENCE" of every image the chart deploys
    ci/version.py publish CHART_DIR REGISTRY
                                        in a copy of the chart about to be released: name the
                                        services' images as published (REGISTRY/hashstack/...)
                                        in artifacthub.io/images
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART_DIR = Path("charts/hashstack")
SUBCHARTS = ("etcd", "registry")
SERVICES = ("hello", "persistence", "hash")
# Artifact Hub's change kinds (https://artifacthub.io/docs/topics/annotations/helm/).
CHANGE_KINDS = ("added", "changed", "deprecated", "removed", "fixed", "security")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
# Restatements outside the charts: (file, text before the version, text after it) on one line.
PACKAGE_PLACES = (
    ("images/pyproject.toml", 'version = "', '"'),
    ("images/hashstack/__init__.py", '__version__ = "', '"'),
    ("images/Dockerfile", "ARG VERSION=", ""),
    # The GitOps examples pin the release they install (docs/gitops.md shows them whole).
    ("docs/examples/flux/hashstack.yaml", '    tag: "', '"'),
    ("docs/examples/argocd/hashstack.yaml", "    targetRevision: ", ""),
    ("docs/gitops.md", '    tag: "', '"'),
    ("docs/gitops.md", "    targetRevision: ", ""),
)


def package_pattern(before: str, after: str, version: str = r"\S+?") -> str:
    """A line `before VERSION after`; groups: before, the version, after."""
    return rf"(?m)^({re.escape(before)})({version})({re.escape(after)})$"


class VersionError(Exception):
    """A problem the user must fix; printed as one line per problem, never a traceback."""


def semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """Orders versions as SemVer 2.0 does: a pre-release sorts before its release."""
    match = SEMVER.match(version)
    if match is None:
        raise VersionError(f"{version!r} is not a SemVer version (X.Y.Z or X.Y.Z-pre)")
    major, minor, patch, pre = match.groups()
    if pre is None:
        return int(major), int(minor), int(patch), 1, ()
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return int(major), int(minor), int(patch), 0, parts


def load_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise VersionError(f"{where}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise VersionError(f"{where}: expected a mapping")
    return data


@dataclass
class Tree:
    """Reads project files from the work tree or from one git revision of it."""

    root: Path
    revision: str | None = None

    def text(self, path: Path | str) -> str | None:
        if self.revision is None:
            file = self.root / path
            return file.read_text() if file.is_file() else None
        result = subprocess.run(
            ["git", "-C", str(self.root), "show", f"{self.revision}:{path}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return result.stdout if result.returncode == 0 else None

    def yaml(self, path: Path | str) -> dict[str, Any]:
        text = self.text(path)
        if text is None:
            raise VersionError(f"{path} is missing")
        return load_yaml(text, str(path))


def chart_version(tree: Tree) -> str:
    return str(tree.yaml(CHART_DIR / "Chart.yaml")["version"])


def image_ref(image: dict[str, Any], default_tag: str) -> str:
    registry = image.get("registry") or ""
    name = f"{registry}/{image['repository']}" if registry else str(image["repository"])
    return f"{name}:{image.get('tag') or default_tag}"


def annotated_images(chart: dict[str, Any], where: str) -> dict[str, str]:
    text = (chart.get("annotations") or {}).get("artifacthub.io/images")
    if not text:
        raise VersionError(f"{where}: no artifacthub.io/images annotation")
    entries = yaml.safe_load(text)
    return {str(e["name"]): str(e["image"]) for e in entries}


def deployed_images(tree: Tree) -> dict[str, str]:
    """name -> reference the chart deploys by default, as artifacthub.io/images names them."""
    chart = tree.yaml(CHART_DIR / "Chart.yaml")
    values = tree.yaml(CHART_DIR / "values.yaml")
    images = {svc: image_ref(values[svc]["image"], str(chart["appVersion"])) for svc in SERVICES}
    for sub in SUBCHARTS:
        images.update(subchart_images(tree, sub))
    return images


def subchart_images(tree: Tree, sub: str) -> dict[str, str]:
    values = tree.yaml(CHART_DIR / "charts" / sub / "values.yaml")
    images = {sub: image_ref(values["image"], "")}
    if sub == "registry":
        images["registry-proxy"] = image_ref(values["proxy"]["image"], "")
    return images


def validate_changes(chart: dict[str, Any], where: str) -> list[dict[str, Any]]:
    text = (chart.get("annotations") or {}).get("artifacthub.io/changes")
    if not text:
        raise VersionError(f"{where}: no artifacthub.io/changes annotation")
    changes = yaml.safe_load(text)
    if not isinstance(changes, list) or not changes:
        raise VersionError(f"{where}: artifacthub.io/changes must be a non-empty list")
    for change in changes:
        if not isinstance(change, dict) or change.get("kind") not in CHANGE_KINDS:
            raise VersionError(
                f"{where}: artifacthub.io/changes entry {change!r} needs a kind out of "
                f"{', '.join(CHANGE_KINDS)}"
            )
        if not str(change.get("description") or "").strip():
            raise VersionError(
                f"{where}: artifacthub.io/changes entry {change!r} needs a description"
            )
    return changes


def disagreements(tree: Tree, tag: str | None = None) -> list[str]:
    """Every place that does not say the release version, one line each."""
    problems: list[str] = []
    umbrella_path = str(CHART_DIR / "Chart.yaml")
    umbrella = tree.yaml(umbrella_path)
    version = str(umbrella["version"])
    semver_key(version)

    def expect(where: str, found: object) -> None:
        if str(found) != version:
            problems.append(f"{where} says {found}, the release version is {version}")

    expect(f"{umbrella_path} appVersion", umbrella.get("appVersion"))
    for dep in umbrella.get("dependencies") or []:
        expect(f"{umbrella_path} dependency {dep['name']}", dep.get("version"))
    lock = tree.yaml(CHART_DIR / "Chart.lock")
    for dep in lock.get("dependencies") or []:
        expect(f"{CHART_DIR}/Chart.lock dependency {dep['name']}", dep.get("version"))
    for sub in SUBCHARTS:
        path = str(CHART_DIR / "charts" / sub / "Chart.yaml")
        sub_chart = tree.yaml(path)
        expect(f"{path} version", sub_chart.get("version"))
        want = subchart_images(tree, sub)
        if annotated_images(sub_chart, str(path)) != want:
            problems.append(f"{path} artifacthub.io/images should be {want}")
    values = tree.yaml(CHART_DIR / "values.yaml")
    for svc in SERVICES:
        tag_value = values[svc]["image"].get("tag") or ""
        if tag_value:
            expect(f"{CHART_DIR}/values.yaml {svc}.image.tag", tag_value)
    want = deployed_images(tree)
    found = annotated_images(umbrella, str(umbrella_path))
    if found != want:
        problems.append(f"{umbrella_path} artifacthub.io/images is {found}, should be {want}")
    try:
        validate_changes(umbrella, str(umbrella_path))
    except VersionError as error:
        problems.append(str(error))
    for path, before, after in PACKAGE_PLACES:
        match = re.search(package_pattern(before, after), tree.text(path) or "")
        if match is None:
            problems.append(f"{path}: no line {before}VERSION{after}")
        else:
            expect(path, match.group(2))
    if tag is not None and tag != f"v{version}":
        problems.append(f"tag {tag} does not name the release version (want v{version})")
    return problems


def git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise VersionError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def bump_problems(root: Path, base_ref: str) -> tuple[str, list[str]]:
    """(what was found, problems) for the work tree against its merge base with base_ref."""
    base = git(root, "merge-base", base_ref, "HEAD").strip()
    changed = [
        line
        for line in git(root, "diff", "--name-only", base, "--", str(CHART_DIR)).splitlines()
        if line
    ]
    if not changed:
        return f"no chart change since {base_ref}", []
    old_tree, new_tree = Tree(root, base), Tree(root)
    if old_tree.text(CHART_DIR / "Chart.yaml") is None:
        return "a new chart", []
    old, new = chart_version(old_tree), chart_version(new_tree)
    if not git(root, "tag", "--list", f"v{old}").strip():
        # Not released yet: the version in flight already names the coming release.
        return f"chart changed; {old} is not released yet (no tag v{old}), no bump needed", []
    problems = []
    if semver_key(new) <= semver_key(old):
        problems.append(
            f"the chart changed ({len(changed)} files) but its version {new} is not above "
            f"the released {old}: run ci/version.py set <next version>"
        )
    old_chart = old_tree.yaml(CHART_DIR / "Chart.yaml")
    new_chart = new_tree.yaml(CHART_DIR / "Chart.yaml")
    try:
        changes = validate_changes(new_chart, f"{CHART_DIR}/Chart.yaml")
        old_changes = yaml.safe_load(old_chart["annotations"].get("artifacthub.io/changes") or "")
        if changes == old_changes:
            problems.append(
                f"artifacthub.io/changes still lists the changes of {old}: describe this release's"
            )
    except VersionError as error:
        problems.append(str(error))
    return f"chart changed ({len(changed)} files) and bumped from {old} to {new}", problems


def replace(path: Path, pattern: str, value: str) -> None:
    text = path.read_text()
    # Group 1 and the last group surround the version; they stay as they are.
    new, n = re.subn(pattern, lambda m: m.group(1) + value + m.group(m.re.groups), text)
    if n == 0:
        raise VersionError(f"{path}: nothing matched {pattern!r}")
    path.write_text(new)


def set_version(root: Path, version: str) -> None:
    """Writes `version` into every place `check` reads (the annotation's tags included)."""
    semver_key(version)
    old = chart_version(Tree(root))
    chart = root / CHART_DIR
    v = re.escape(old)
    replace(chart / "Chart.yaml", r"(?m)^(version: )" + v + "()$", version)
    replace(chart / "Chart.yaml", r'(?m)^(appVersion: ")' + v + '(")$', version)
    replace(chart / "Chart.yaml", r"(?m)^(    version: )" + v + "()$", version)
    replace(chart / "Chart.yaml", r"(?m)^(      image: \S+/hashstack/\w+:)" + v + "()$", version)
    for sub in SUBCHARTS:
        replace(chart / "charts" / sub / "Chart.yaml", r"(?m)^(version: )" + v + "()$", version)
    for path, before, after in PACKAGE_PLACES:
        replace(root / path, package_pattern(before, after, v), version)
    relock(chart)


def relock(chart: Path) -> None:
    """Chart.lock's digest covers the dependency versions: let helm write it, in a copy so
    that the subchart archives it builds stay out of the work tree."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / chart.name
        shutil.copytree(chart, copy, ignore=shutil.ignore_patterns("*.tgz"))
        result = subprocess.run(
            ["helm", "dependency", "update", "--skip-refresh", str(copy)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise VersionError(f"helm dependency update: {result.stderr.strip()}")
        shutil.copyfile(copy / "Chart.lock", chart / "Chart.lock")


def publish_images(chart_dir: Path, registry: str) -> dict[str, str]:
    """Rewrites the services' artifacthub.io/images entries to REGISTRY/hashstack/SERVICE:tag;
    the subcharts' upstream images stay. Returns the annotation as it now reads."""
    if not re.fullmatch(r"[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)*", registry):
        raise VersionError(f"{registry!r} is not a lower-case registry/namespace")
    services = "|".join(SERVICES)
    replace(
        chart_dir / "Chart.yaml",
        rf"(?m)^(      image: )\S+?(/hashstack/(?:{services}):\S+)$",
        registry,
    )
    return annotated_images(load_yaml((chart_dir / "Chart.yaml").read_text(), "Chart.yaml"), "")


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[..., int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
        COMMANDS[name] = fn
        return fn

    return register


@command("show")
def cmd_show(_: argparse.Namespace) -> int:
    print(chart_version(Tree(ROOT)))
    return 0


def report(problems: list[str], ok: Callable[[], str]) -> int:
    """One line per problem on stderr (exit 1), or what `ok` says on stdout (exit 0)."""
    for problem in problems:
        print(f"version: {problem}", file=sys.stderr)
    if not problems:
        print(f"version: {ok()}")
    return 1 if problems else 0


@command("check")
def cmd_check(args: argparse.Namespace) -> int:
    problems = disagreements(Tree(ROOT), args.tag)
    return report(problems, lambda: f"{chart_version(Tree(ROOT))} everywhere")


@command("bump-check")
def cmd_bump_check(args: argparse.Namespace) -> int:
    found, problems = bump_problems(ROOT, args.base_ref)
    return report(problems, lambda: found)


@command("set")
def cmd_set(args: argparse.Namespace) -> int:
    set_version(ROOT, args.version)
    print(f"version: set to {args.version}; now describe it in artifacthub.io/changes")
    return 0


@command("images")
def cmd_images(_: argparse.Namespace) -> int:
    for name, image in deployed_images(Tree(ROOT)).items():
        print(name, image)
    return 0


@command("publish")
def cmd_publish(args: argparse.Namespace) -> int:
    for name, image in publish_images(Path(args.chart_dir), args.registry).items():
        print(f"{name}: {image}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("show")
    sub.add_parser("images")
    sub.add_parser("check").add_argument("--tag")
    sub.add_parser("bump-check").add_argument("base_ref")
    sub.add_parser("set").add_argument("version")
    publish = sub.add_parser("publish")
    publish.add_argument("chart_dir")
    publish.add_argument("registry")
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except VersionError as error:
        print(f"version: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

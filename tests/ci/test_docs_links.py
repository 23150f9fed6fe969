"""Every relative link and anchor in the docs resolves (GitHub's anchor rules), and every
`make` target and ci/ script they name exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import ROOT

from . import doclinks

PAGES = sorted(
    [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "charts").rglob("README.md"),
    ]
)
IDS = [str(page.relative_to(ROOT)) for page in PAGES]
TARGETS = doclinks.makefile_targets(ROOT / "Makefile")


def test_the_pages_are_there() -> None:
    names = set(IDS)
    assert {"README.md", "docs/architecture.md", "charts/hashstack/README.md"} <= names
    assert len(PAGES) >= 8


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    assert doclinks.broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_named_make_targets_exist(page: Path) -> None:
    missing = doclinks.make_targets_named(page.read_text()) - TARGETS
    assert not missing, f"make targets not in the Makefile: {sorted(missing)}"


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_named_ci_scripts_exist(page: Path) -> None:
    missing = [s for s in doclinks.ci_scripts_named(page.read_text()) if not (ROOT / s).is_file()]
    assert not missing, f"no such script: {missing}"


def test_the_readme_keeps_the_two_commands_and_links_every_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert {"up", "test"} <= doclinks.make_targets_named(readme)
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in doclinks.links(readme)}
    unlinked = [p.name for p in (ROOT / "docs").glob("*.md") if p.resolve() not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Quick start", "quick-start"),
        ("Local: `make up`", "local-make-up"),
        ("`make e2e`: the chart on a real cluster", "make-e2e-the-chart-on-a-real-cluster"),
        ("etcd: data, backup and restore", "etcd-data-backup-and-restore"),
        ("Ingress / HTTPRoute", "ingress--httproute"),
        ("The [registry](x.md) two-step", "the-registry-two-step"),
        ("BLOCK_SIZE and *gaps*", "block_size-and-gaps"),
    ],
)
def test_github_anchors(heading: str, anchor: str) -> None:
    assert doclinks.github_anchor(heading) == anchor


def test_broken_links_are_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[ok](other.md#other-page) [ok](other.md#twice-1) [ok](#page) [web](https://x.invalid/)\n"
        "[gone](missing.md) ![gone](pic.svg) [bad anchor](other.md#twice-2) [self](#nope)\n"
        "`[in code](missing-too.md)`\n\n```\n[in a block](missing-three.md)\n```\n"
    )
    assert doclinks.broken_links(page) == [
        "missing.md: no such file",
        "pic.svg: no such file",
        "other.md#twice-2: no heading with the anchor #twice-2",
        "#nope: no heading with the anchor #nope",
    ]


def test_make_targets_and_scripts_are_found_in_code_only() -> None:
    text = (
        "To make it work, run `make up UP_ARGS=x` or `make REGISTRY=r push`.\n\n"
        "```sh\nmake images && make nosuch\nci/images.sh build; ci/gone.sh\n```\n"
    )
    assert doclinks.make_targets_named(text) == {"up", "push", "images", "nosuch"}
    assert doclinks.ci_scripts_named(text) == {"ci/images.sh", "ci/gone.sh"}
    assert "nosuch" not in TARGETS

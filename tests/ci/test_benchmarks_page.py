"""docs/benchmarks.md shows the figures of benchmarks/latest.json, as `make bench` writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.readme import END, PAGE, START, figures_on_page, markdown, write_figures
from tests.support.paths import ROOT

LATEST = ROOT / "benchmarks" / "latest.json"


def test_the_page_holds_the_latest_run() -> None:
    figures = figures_on_page(PAGE.read_text())
    assert figures is not None, f"{PAGE.relative_to(ROOT)} lost its {START} block"
    assert figures == markdown(json.loads(LATEST.read_text())), (
        "docs/benchmarks.md and benchmarks/latest.json disagree: rerun `make bench`"
    )
    assert figures == (ROOT / "benchmarks" / "latest.md").read_text()


def test_writing_replaces_only_the_block(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# B\n\nbefore\n\n{START}\nold figures\n{END}\n\nafter\n")
    write_figures("| new |\n", page)
    assert page.read_text() == f"# B\n\nbefore\n\n{START}\n| new |\n{END}\n\nafter\n"
    assert figures_on_page(page.read_text()) == "| new |\n"


def test_a_page_without_the_block_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# B\n")
    with pytest.raises(SystemExit, match="no <!-- bench-figures:start -->"):
        write_figures("| new |\n", page)
    assert page.read_text() == "# B\n"

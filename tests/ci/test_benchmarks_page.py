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


def test_the_images_section_judges_every_start() -> None:
    # make bench's image figures (benchmarks/containers.py): one row per image, the 1 s goal met
    # only when every start made it, and the pull median.
    latest = json.loads(LATEST.read_text())
    latest["images"] = {
        "size_mb": {"hello": 51.7, "hash": 51.7},
        "start_to_ready_s": {"hello": [0.2, 0.3, 0.25], "hash": [0.4, 1.2, 0.5]},
        "run_to_ready_s": {"hello": [0.4, 0.5, 0.45], "hash": [0.6, 1.4, 0.7]},
        "pull_s": [0.9, 0.7, 0.8],
    }
    lines = markdown(latest).splitlines()
    assert "| hello | 51.7 | 0.25 | 0.20-0.30 | 0.45 | met |" in lines
    assert "| hash | 51.7 | 0.50 | 0.40-1.20 | 0.70 | **missed** |" in lines
    assert any("median 0.8 s (min-max 0.7-0.9, 3 pulls)" in line for line in lines)
    # A run without the images (no podman) has no such section.
    assert "| image |" not in markdown(json.loads(LATEST.read_text()))

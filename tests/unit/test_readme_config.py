"""The configuration page's table (docs/configuration.md) and config.py name the same variables."""

from __future__ import annotations

import re
from pathlib import Path

import hashstack.config

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "configuration.md"
SECTION = "## Environment variables"


def variables_read_by_config() -> set[str]:
    source = Path(hashstack.config.__file__).read_text()
    return set(re.findall(r'reader\.\w+\(\s*"([A-Z_]+)"', source))


def variables_in_table(text: str) -> set[str]:
    assert SECTION in text, f"{PAGE.relative_to(ROOT)} lost its '{SECTION}' section"
    section = text.split(SECTION, 1)[1].split("\n#", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`([A-Z_]+)`", cell)}


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    read = variables_read_by_config()
    assert len(read) >= 15
    assert variables_in_table(PAGE.read_text()) == read


def test_a_missing_row_is_noticed() -> None:
    """The check can fail: the table without its BLOCK_SIZE row no longer matches."""
    text = PAGE.read_text()
    without = "\n".join(line for line in text.splitlines() if not line.startswith("| `BLOCK_SIZE`"))
    assert variables_in_table(without) == variables_read_by_config() - {"BLOCK_SIZE"}

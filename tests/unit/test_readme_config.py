"""The README's configuration table and config.py name the same variables."""

from __future__ import annotations

import re
from pathlib import Path

import hashstack.config

ROOT = Path(__file__).resolve().parents[2]


def variables_read_by_config() -> set[str]:
    source = Path(hashstack.config.__file__).read_text()
    return set(re.findall(r'reader\.\w+\(\s*"([A-Z_]+)"', source))


def variables_in_readme_table() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Configuration", 1)[1].split("\n#", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`([A-Z_]+)`", cell)}


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    read = variables_read_by_config()
    assert len(read) >= 15
    assert variables_in_readme_table() == read

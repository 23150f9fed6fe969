"""Reading the project's YAML the way its consumers do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


def load_yaml(path: Path) -> Any:
    # YAML 1.2 (ruamel), as GitHub reads workflows: `on:` stays the string "on"; PyYAML would
    # make it True.
    return YAML(typ="safe", pure=True).load(path.read_text())

"""Shared paths and loaders for the CI checks (workflow, scripts, cluster-suite helpers)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
# Shared JSON schemas live next to the repository, not in it.
SCHEMAS = ROOT.parent / "shared" / "schemas"


def load_yaml(path: Path) -> Any:
    # YAML 1.2 (ruamel): `on:` stays the string "on"; PyYAML would make it True.
    return YAML(typ="safe", pure=True).load(path.read_text())


def load_cluster_helpers() -> ModuleType:
    """tests/cluster/helpers.py by path: it is pure, so it needs no cluster and no package."""
    name = "hashstack_cluster_helpers"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests/cluster/helpers.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def workflow() -> dict[str, Any]:
    data = load_yaml(WORKFLOW)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def helpers() -> ModuleType:
    return load_cluster_helpers()

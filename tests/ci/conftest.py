"""Fixtures (only) for the CI checks: the workflow and the cluster suite's pure helpers."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest

from tests.support.files import load_yaml
from tests.support.paths import WORKFLOW


@pytest.fixture(scope="session")
def workflow() -> dict[str, Any]:
    data = load_yaml(WORKFLOW)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def helpers() -> ModuleType:
    """tests/cluster/helpers.py: pure, so it needs no cluster (its conftest is not loaded)."""
    return importlib.import_module("tests.cluster.helpers")

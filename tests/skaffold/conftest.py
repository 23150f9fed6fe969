"""Fixtures (only) of the skaffold rung: skaffold.yaml loaded once, each scenario rendered once
per session (tests/skaffold/scenarios.py says how)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.skaffold.scenarios import SKAFFOLD_YAML, Applied, ApplyFn, Scenario, apply_scenario


@pytest.fixture(scope="session")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SKAFFOLD_YAML.read_text())
    return loaded


@pytest.fixture(scope="session")
def applied(config: dict[str, Any]) -> ApplyFn:
    """Scenario -> Applied, each rendered by helm once per session."""
    cache: dict[str, Applied] = {}

    def apply(scenario: Scenario) -> Applied:
        if scenario.name not in cache:
            cache[scenario.name] = apply_scenario(config, scenario)
        return cache[scenario.name]

    return apply

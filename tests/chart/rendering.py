"""What the chart rung's tests share besides fixtures: the chart's values files, the Helm
majors and Kubernetes versions it is rendered for, and its values merged as Helm merges them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.support.helm import installed_helms, parse_docs, run_helm
from tests.support.paths import CHART, ROOT

__all__ = [
    "APP_VERSION", "BAD_VALUES", "CHART", "CHART_VERSION", "CI_VALUES", "HELMS", "KUBE_VERSIONS",
    "NAMESPACE", "PRESETS", "RELEASE", "ROOT", "RenderFn", "ci_values_file", "installed_helms",
    "parse_docs", "run_helm", "values_of", "with_defaults",
]  # fmt: skip

# The release version (ci/version.py keeps every other place in step with it).
CHART_META = yaml.safe_load((CHART / "Chart.yaml").read_text())
CHART_VERSION = str(CHART_META["version"])
APP_VERSION = str(CHART_META["appVersion"])
# Scenario names: ci/<name>-values.yaml (chart-testing installs these),
# ci/<name>-lint.yaml (linted and rendered only: they cannot run on kind) and the presets the
# chart ships, values-<name>.yaml (e.g. production sizing: rendered and linted, too big for kind).
CI_SUFFIXES = ("-values.yaml", "-lint.yaml")
PRESETS = {
    p.name.removeprefix("values-").removesuffix(".yaml"): p for p in CHART.glob("values-*.yaml")
}
CI_VALUES = sorted(
    [
        p.name.removesuffix(suffix)
        for p in (CHART / "ci").glob("*.yaml")
        for suffix in CI_SUFFIXES
        if p.name.endswith(suffix)
    ]
    + list(PRESETS)
)
BAD_VALUES = sorted((Path(__file__).parent / "bad-values").glob("*.yaml"))
RELEASE = "hashstack"
NAMESPACE = "hashstack"
KUBE_VERSIONS = ("1.30.0", "1.32.0", "1.35.0")
# The workflow's chart matrix runs each Helm major on its own (HELM_MAJOR=3 or 4);
# without it, every test runs with both.
HELMS = {"3": ("helm3",), "4": ("helm",)}.get(os.environ.get("HELM_MAJOR", ""), ("helm", "helm3"))


RenderFn = Callable[..., list[dict[str, Any]]]


def ci_values_file(name: str) -> Path:
    """The file of scenario `name`: in charts/hashstack/ci/, or a preset beside values.yaml."""
    if name in PRESETS:
        return PRESETS[name]
    (path,) = [p for s in CI_SUFFIXES if (p := CHART / "ci" / f"{name}{s}").is_file()]
    return path


def merge_values(base: Any, over: Any) -> Any:
    """`over` on top of `base` as Helm merges values: maps merge, the rest replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge_values(base.get(key), value)
        return out
    return over


def with_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """The chart's values.yaml with `values` on top."""
    merged: dict[str, Any] = merge_values(
        yaml.safe_load((CHART / "values.yaml").read_text()), values
    )
    return merged


def values_of(name: str) -> dict[str, Any]:
    """The chart's values.yaml merged with ci/<name>.yaml."""
    return with_defaults(yaml.safe_load(ci_values_file(name).read_text()) or {})

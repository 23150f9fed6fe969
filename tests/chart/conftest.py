"""Fixtures for the chart rung: real helm (v4 and v3) over a copy of charts/hashstack.

Every (values file, helm, kube version) is rendered once per session and shared, so
the whole rung stays within a few minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "hashstack"
# The release version (ci/version.py keeps every other place in step with it).
CHART_META = yaml.safe_load((CHART / "Chart.yaml").read_text())
CHART_VERSION = str(CHART_META["version"])
APP_VERSION = str(CHART_META["appVersion"])
# Scenario names: ci/<name>-values.yaml (chart-testing installs these) and
# ci/<name>-lint.yaml (linted and rendered only: they cannot run on kind).
CI_SUFFIXES = ("-values.yaml", "-lint.yaml")
CI_VALUES = sorted(
    p.name.removesuffix(suffix)
    for p in (CHART / "ci").glob("*.yaml")
    for suffix in CI_SUFFIXES
    if p.name.endswith(suffix)
)


def ci_values_file(name: str) -> Path:
    """The file of scenario `name` in charts/hashstack/ci/."""
    (path,) = [p for s in CI_SUFFIXES if (p := CHART / "ci" / f"{name}{s}").is_file()]
    return path


BAD_VALUES = sorted((Path(__file__).parent / "bad-values").glob("*.yaml"))
RELEASE = "hashstack"
NAMESPACE = "hashstack"
KUBE_VERSIONS = ("1.30.0", "1.32.0", "1.35.0")
# The workflow's chart matrix runs each Helm major on its own (HELM_MAJOR=3 or 4);
# without it, every test runs with both.
HELMS = {"3": ("helm3",), "4": ("helm",)}.get(os.environ.get("HELM_MAJOR", ""), ("helm", "helm3"))


def _tools_bin() -> Path:
    cache = Path(os.environ.get("HASHSTACK_CACHE", ROOT / ".cache"))
    return cache / "bin"


def installed_helms() -> dict[str, Path]:
    """helm (v4) and helm3 from ci/install-tools.sh (run here when they are missing)."""
    bins = {name: _tools_bin() / name for name in ("helm", "helm3")}
    if not all(path.exists() for path in bins.values()):
        subprocess.run([str(ROOT / "ci" / "install-tools.sh")], check=True)
    return bins


@pytest.fixture(scope="session")
def helm_bins() -> dict[str, Path]:
    return installed_helms()


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm with a private home under .cache: no user repositories or plugins leak in."""
    home = _tools_bin().parent / "helm-home"
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    result = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, env=env, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def chart_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart copied out of the work tree, so `helm dependency build` leaves it clean."""
    dest = tmp_path_factory.mktemp("chart") / "hashstack"
    shutil.copytree(CHART, dest, ignore=shutil.ignore_patterns("*.tgz"))
    return dest


@pytest.fixture(scope="session")
def built_chart(chart_copy: Path, helm_bins: dict[str, Path]) -> Path:
    """The copy after `helm dependency build` (Helm 4): subchart archives next to the dirs."""
    run_helm(helm_bins["helm"], "dependency", "build", str(chart_copy))
    return chart_copy


def parse_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


RenderFn = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def render(built_chart: Path, helm_bins: dict[str, Path]) -> RenderFn:
    """render(values, helm="helm", kube="1.35.0", chart=None, extra=()) -> objects, cached."""
    cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def _render(
        values: str,
        helm: str = "helm",
        kube: str = "1.35.0",
        chart: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        key = (values, helm, kube, str(chart or built_chart), extra)
        if key not in cache:
            cache[key] = parse_docs(render_text(values, helm, kube, chart, extra))
        return cache[key]

    text_cache: dict[tuple[Any, ...], str] = {}

    def render_text(
        values: str, helm: str, kube: str, chart: Path | None, extra: tuple[str, ...]
    ) -> str:
        key = (values, helm, kube, str(chart or built_chart), extra)
        if key not in text_cache:
            args = ["template", RELEASE, str(chart or built_chart), "--namespace", NAMESPACE]
            args += ["--kube-version", kube, "-f", str(ci_values_file(values)), *extra]
            text_cache[key] = run_helm(helm_bins[helm], *args).stdout
        return text_cache[key]

    _render.text = render_text  # type: ignore[attr-defined]
    return _render


def values_of(name: str) -> dict[str, Any]:
    """The chart's values.yaml merged with ci/<name>.yaml (maps merge, the rest replaces)."""

    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            out = dict(base)
            for key, value in over.items():
                out[key] = merge(base.get(key), value)
            return out
        return over

    base = yaml.safe_load((CHART / "values.yaml").read_text())
    return merge(base, yaml.safe_load(ci_values_file(name).read_text()) or {})

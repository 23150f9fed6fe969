"""Fixtures (only) for the chart rung: real helm (v4 and v3) over a copy of charts/hashstack.

Every (values file, helm, kube version) is rendered once per session and shared, so
the whole rung stays within a few minutes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chart.etcd_cluster import StatefulSet, clusters
from tests.chart.rendering import (
    CHART,
    NAMESPACE,
    RELEASE,
    RenderFn,
    ci_values_file,
    installed_helms,
    parse_docs,
    run_helm,
)


@pytest.fixture(scope="session")
def helm_bins() -> dict[str, Path]:
    return installed_helms()


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


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[[str], StatefulSet]]:
    """make(name) -> an etcd StatefulSet on loopback (etcd_cluster.py), closed after the test."""
    with clusters(tmp_path) as make:
        yield make


@pytest.fixture
def cluster(make_cluster: Callable[[str], StatefulSet]) -> StatefulSet:
    """One etcd StatefulSet on loopback, closed after the test."""
    return make_cluster("cluster")

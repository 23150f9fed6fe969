"""The subcharts of charts/hashstack rendered standalone by real helm, and the helpers their
tests share. test_subcharts.py runs the checks every subchart passes over both;
test_subchart_etcd.py and test_subchart_registry.py test what is each chart's own.
"""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .rendering import CHART, installed_helms, parse_docs, run_helm

Values = dict[str, Any]


@dataclass(frozen=True)
class Subchart:
    """charts/hashstack/charts/<name> installed on its own as `release` in `namespace`."""

    name: str
    release: str
    namespace: str

    @property
    def chart(self) -> Path:
        return CHART / "charts" / self.name

    def template(
        self, values: Values | None = None, kube: str = "1.35.0", helm: str = "helm"
    ) -> subprocess.CompletedProcess[str]:
        """`helm template` with these values, run once per (values, kube, helm) a session."""
        return _template(self, json.dumps(values or {}, sort_keys=True), kube, helm)

    def render(self, values: Values | None = None, kube: str = "1.35.0") -> list[dict[str, Any]]:
        result = self.template(values, kube)
        assert result.returncode == 0, result.stderr
        return parse_docs(result.stdout)

    def lint(self, values: Values, helm: str = "helm") -> subprocess.CompletedProcess[str]:
        with _values_file(json.dumps(values)) as path:
            return run_helm(
                installed_helms()[helm], "lint", "--strict", str(self.chart), "-f", path,
                check=False,
            )  # fmt: skip


ETCD = Subchart("etcd", release="hs", namespace="store")
REGISTRY = Subchart("registry", release="hs", namespace="infra")
# The options that read a Secret the user creates: etcd's client TLS, the registry's htpasswd.
ETCD_TLS = {"tls": {"enabled": True, "existingSecret": "etcd-certs", "clientCertAuth": True}}
REGISTRY_AUTH = {"auth": {"htpasswd": {"enabled": True, "existingSecret": "registry-users"}}}


@contextmanager
def _values_file(text: str) -> Iterator[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values:
        values.write(text)  # JSON is YAML
        values.flush()
        yield values.name


@functools.cache
def _template(
    sub: Subchart, values_json: str, kube: str, helm: str
) -> subprocess.CompletedProcess[str]:
    with _values_file(values_json) as path:
        return run_helm(
            installed_helms()[helm], "template", sub.release, str(sub.chart),
            "--namespace", sub.namespace, "--kube-version", kube, "-f", path, check=False,
        )  # fmt: skip


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """A container's environment: each variable's value, or its valueFrom source."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}

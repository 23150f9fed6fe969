"""The umbrella chart rendered by real helm with values given as a dict, for the hardening
tests: `helm template` once per (values, helm) a session, the result kept."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .rendering import CHART, NAMESPACE, RELEASE, installed_helms, run_helm

Values = dict[str, Any]


@functools.cache
def built_chart() -> Path:
    """A copy of the chart with its subchart archives, built once a session."""
    dest = Path(tempfile.mkdtemp(prefix="hashstack-hardening-")) / "hashstack"
    shutil.copytree(CHART, dest, ignore=shutil.ignore_patterns("*.tgz"))
    run_helm(installed_helms()["helm"], "dependency", "build", str(dest))
    return dest


@functools.cache
def _template(
    values_json: str, helm: str, extra: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values:
        values.write(values_json)  # JSON is YAML
        values.flush()
        return run_helm(
            installed_helms()[helm], "template", RELEASE, str(built_chart()),
            "--namespace", NAMESPACE, "--kube-version", "1.35.0", "-f", values.name, *extra,
            check=False,
        )  # fmt: skip


def template(
    values: Values | None = None, helm: str = "helm", extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return _template(json.dumps(values or {}, sort_keys=True), helm, extra)


def render(values: Values | None = None, helm: str = "helm") -> list[dict[str, Any]]:
    result = template(values, helm)
    assert result.returncode == 0, result.stderr
    return load_strict(result.stdout)


class DuplicateKeyError(ValueError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with a repeated key (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(f"repeated key {key!r} at {key_node.start_mark}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_strict(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload template and Pod."""
    found = []
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Pod":
            found.append((where, obj["spec"]))
        elif obj["kind"] == "CronJob":
            found.append((where, obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif "template" in obj.get("spec", {}):
            found.append((where, obj["spec"]["template"]["spec"]))
    return found

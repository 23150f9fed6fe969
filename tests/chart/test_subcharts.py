"""What every subchart passes, each with its own cases: the values schema refuses bad values
and names the key, the schema is self-contained draft-07, values.yaml is commented key by
key, `helm lint --strict` is clean, and every rendered object validates against Kubernetes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .rendering import HELMS, KUBE_VERSIONS
from .subchart import ETCD, ETCD_TLS, REGISTRY, REGISTRY_AUTH, Subchart

BAD_VALUES: dict[Subchart, list[tuple[dict[str, Any], str]]] = {
    ETCD: [
        ({"replicaCount": 2}, "replicaCount"),
        ({"replicaCount": 4}, "replicaCount"),
        ({"replicaCount": -1}, "replicaCount"),
        ({"replicaCount": 0}, "replicaCount"),
        ({"replicaCount": "3"}, "replicaCount"),
        ({"replicaCont": 3}, "replicaCont"),
        ({"persistence": {"sise": "2Gi"}}, "sise"),
        ({"image": {"tag": 3.5}}, "tag"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"autoCompaction": {"mode": "hourly"}}, "mode"),
        ({"tls": {"enabled": "yes"}}, "enabled"),
        ({"podAntiAffinity": "strict"}, "podAntiAffinity"),
        ({"persistence": {"retentionPolicy": {"whenDeleted": "Keep"}}}, "whenDeleted"),
    ],
    REGISTRY: [
        ({"proxy": {"hostPrt": 5000}}, "hostPrt"),
        ({"proxy": {"hostPort": 70000}}, "hostPort"),
        ({"proxy": {"enabled": "no"}}, "enabled"),
        ({"persistance": {"enabled": False}}, "persistance"),
        ({"persistence": {"accessMode": "ReadOnlyMany"}}, "accessMode"),
        ({"image": {"tag": 3}}, "tag"),
        ({"image": {"pullPolicy": "Maybe"}}, "pullPolicy"),
        ({"replicaCount": 0}, "replicaCount"),
        ({"service": {"port": "http"}}, "port"),
        ({"auth": {"htpasswd": {"secret": "x"}}}, "secret"),
        ({"proxy": {"timeouts": {"client": "ten minutes"}}}, "client"),
    ],
}

# One rule of each schema besides the common ones: (property, keyword, value).
SCHEMA_RULES: dict[Subchart, tuple[str, str, Any]] = {
    ETCD: ("replicaCount", "enum", [1, 3, 5]),
    REGISTRY: ("proxy", "additionalProperties", False),
}

LINT_VALUES: dict[Subchart, dict[str, dict[str, Any]]] = {
    ETCD: {"default": {}, "five-tls": {"replicaCount": 5, **ETCD_TLS}},
    REGISTRY: {"default": {}, "auth-noproxy": {**REGISTRY_AUTH, "proxy": {"enabled": False}}},
}

VALIDATE_VALUES: dict[Subchart, dict[str, dict[str, Any]]] = {
    ETCD: {
        "default": {},
        "ha-tls": {"replicaCount": 3, "podAntiAffinity": "hard", **ETCD_TLS},
        "ephemeral": {
            "replicaCount": 5,
            "persistence": {"enabled": False},
            "pdb": {"enabled": False},
        },
    },
    REGISTRY: {
        "default": {},
        "auth-rwx": {
            **REGISTRY_AUTH,
            "replicaCount": 2,
            "persistence": {"accessMode": "ReadWriteMany", "storageClass": "-"},
            "httpSecret": {"existingSecret": "registry-http"},
            "proxy": {"hostIP": "127.0.0.1", "tolerations": [{"operator": "Exists"}]},
        },
        "ephemeral-noproxy": {"persistence": {"enabled": False}, "proxy": {"enabled": False}},
    },
}


def named_values(table: dict[Subchart, dict[str, dict[str, Any]]]) -> list[Any]:
    """(subchart, values) parameters from {subchart: {name: values}}, ids "etcd-default"."""
    return [
        pytest.param(sub, values, id=f"{sub.name}-{name}")
        for sub, by_name in table.items()
        for name, values in by_name.items()
    ]


def by_name(sub: Subchart) -> str:
    return sub.name


@pytest.mark.parametrize("helm_name", HELMS)
@pytest.mark.parametrize(
    ("sub", "values", "key"),
    [
        pytest.param(sub, values, key, id=f"{sub.name}-{json.dumps(values, sort_keys=True)}-{key}")
        for sub, rows in BAD_VALUES.items()
        for values, key in rows
    ],
)
def test_schema_rejects_bad_values_naming_the_key(
    sub: Subchart, values: dict[str, Any], key: str, helm_name: str
) -> None:
    result = sub.template(values, helm=helm_name)
    assert result.returncode != 0, f"accepted {values}"
    assert "schema" in result.stderr.lower()
    assert key in result.stderr, result.stderr


@pytest.mark.parametrize("sub", list(SCHEMA_RULES), ids=by_name)
def test_schema_is_self_contained_draft_07(sub: Subchart) -> None:
    schema = json.loads((sub.chart / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    refs = [v for v in _walk(schema) if isinstance(v, str) and v.startswith(("http", "#"))]
    assert all(r.startswith("#/definitions/") for r in refs if r != schema["$schema"])
    assert '"$ref": "http' not in json.dumps(schema)
    defaults = yaml.safe_load((sub.chart / "values.yaml").read_text())
    assert set(defaults) <= set(schema["properties"])
    prop, keyword, value = SCHEMA_RULES[sub]
    found = schema["properties"][prop][keyword]
    assert found == value
    assert type(found) is type(value)  # False, not 0


def _walk(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [v for value in node.values() for v in [value, *_walk(value)]]
    if isinstance(node, list):
        return [v for value in node for v in [value, *_walk(value)]]
    return []


@pytest.mark.parametrize("sub", [ETCD, REGISTRY], ids=by_name)
def test_values_are_commented_key_by_key(sub: Subchart) -> None:
    assert undocumented_values(sub.chart / "values.yaml") == []


def undocumented_values(path: Path) -> list[str]:
    """Leaf keys with no `# --` comment above them or above one of their parent keys
    (a comment on `resources:` documents the requests and limits under it)."""
    lines = path.read_text().splitlines()
    documented: list[tuple[int, bool]] = []  # (indent, documented) of the open keys
    missing = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "- ")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        while documented and documented[-1][0] >= indent:
            documented.pop()
        j = i - 1
        while (
            j >= 0 and lines[j].strip().startswith("#") and not lines[j].strip().startswith("# --")
        ):
            j -= 1
        here = j >= 0 and lines[j].strip().startswith("# --")
        is_leaf = not stripped.endswith(":")
        if is_leaf and not here and not any(d for _, d in documented):
            missing.append(stripped)
        documented.append((indent, here))
    return missing


@pytest.mark.parametrize("helm_name", HELMS)
@pytest.mark.parametrize(("sub", "values"), named_values(LINT_VALUES))
def test_lint_strict(sub: Subchart, values: dict[str, Any], helm_name: str) -> None:
    result = sub.lint(values, helm=helm_name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize(("sub", "values"), named_values(VALIDATE_VALUES))
def test_objects_validate_against_kubernetes(
    sub: Subchart, values: dict[str, Any], kube: str
) -> None:
    objects = sub.render(values, kube=kube)
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, kube, strict=True)

"""JSON schemas the tests validate against: the shared copies beside the repository when they
are there (../shared/schemas), else a source a CI runner has, so the checks run on GitHub too;
Kubernetes' own (kubernetes-validate's); and the CRD schemas kept in tests/data/crds."""

from __future__ import annotations

import hashlib
import json
import subprocess
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import jsonschema
from referencing import Registry, Resource

from tests.support.paths import CRDS, SHARED_SCHEMAS, skaffold_binary

SKAFFOLD_API = "skaffold/v4beta14"


def workflow_schema() -> tuple[dict[str, Any], str]:
    """(schema, where from): GitHub's workflow schema; check-jsonschema ships a copy."""
    shared = SHARED_SCHEMAS / "github-workflow.json"
    if shared.is_file():
        return json.loads(shared.read_text()), str(shared)
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "github-workflows.json"
    return json.loads(vendored.read_text()), "check-jsonschema's vendored github-workflows.json"


def skaffold_schema() -> tuple[dict[str, Any], str] | None:
    """(schema, where from) for skaffold.yaml's apiVersion: the shared copy, else the one the
    skaffold binary prints (`skaffold schema get`, the workflow's skaffold job); None: neither."""
    shared = SHARED_SCHEMAS / f"{SKAFFOLD_API.replace('/', '-')}.json"
    if shared.is_file():
        return json.loads(shared.read_text()), str(shared)
    skaffold = skaffold_binary()
    if skaffold is None:
        return None
    out = subprocess.run(
        [skaffold, "schema", "get", SKAFFOLD_API],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(out.stdout), f"skaffold schema get {SKAFFOLD_API}"


@cache
def kubernetes_schemas(kube: str) -> tuple[dict[str, Any], Traversable]:
    """(definitions by name, the folder of per-kind schemas): kubernetes-validate's copy of
    Kubernetes `kube`'s OpenAPI schemas (with the x-kubernetes-* list and map markers)."""
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{kube}-local"
    return json.loads((root / "_definitions.json").read_text())["$defs"], root


def crd_sources() -> dict[str, dict[str, str]]:
    """tests/data/crds/sources.json: for each schema file, the registry package it came from."""
    sources: dict[str, dict[str, str]] = json.loads((CRDS / "sources.json").read_text())
    return sources


def crd_file_sha256(name: str) -> str:
    return hashlib.sha256((CRDS / name).read_bytes()).hexdigest()


def closed(schema: Any) -> Any:
    """A CRD schema as the API server's strict field validation applies it (kubectl's default):
    an object that lists its properties takes no others. One without properties (a free-form
    value such as Helm values, x-kubernetes-preserve-unknown-fields) stays open."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in ("properties", "$defs", "definitions"):
        if isinstance(out.get(key), dict):
            out[key] = {name: closed(sub) for name, sub in out[key].items()}
    for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
        if key in out:
            out[key] = closed(out[key])
    if out.get("properties") and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def crd_validator(api_version: str, kind: str, kube: str) -> jsonschema.protocols.Validator:
    """A validator for custom resources of (api_version, kind) from tests/data/crds, closed as
    the API server validates them; a `$ref` to Kubernetes' ObjectMeta resolves to Kubernetes
    `kube`'s own definition. ValueError when no schema there is for that kind."""
    (name,) = [
        file for file, source in crd_sources().items()
        if (source["apiVersion"], source["kind"]) == (api_version, kind)
    ]  # fmt: skip
    schema = closed(json.loads((CRDS / name).read_text()))
    registry: Registry = Registry().with_resource(OBJECT_META, _object_meta(kube))
    return jsonschema.Draft202012Validator(schema, registry=registry)


OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


@cache
def _object_meta(kube: str) -> Resource[Any]:
    """Kubernetes' ObjectMeta (closed like the CRDs), as the resource a `$ref` to it finds."""
    return Resource.from_contents(
        {"$schema": "https://json-schema.org/draft/2020-12/schema",
         "$defs": {name: closed(d) for name, d in kubernetes_schemas(kube)[0].items()},
         "$ref": f"#/$defs/{OBJECT_META}"}
    )  # fmt: skip

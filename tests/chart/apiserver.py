"""What the Kubernetes API server does to an object it stores, as rules over a rendered object.

No API server runs here, so these rules restate the server's behaviour, each with the
Kubernetes code or issue behind it. An object that breaks one is stored differently from how
the chart rendered it, and a GitOps tool comparing the two (Argo CD's diff, above all with
server-side apply) can report it OutOfSync forever. Every rule reads the object together with
its OpenAPI schema (kubernetes-validate's copy: the same one test_render validates against),
so "a quantity", "an int-or-string", "a map", "an atomic list" and "a list keyed by" come from
Kubernetes' own type definitions, not from a list of paths kept here. Custom resources have no
schema there: only the HTTPRoute's defaults are checked, by a rule of their own.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

from tests.support.schemas import kubernetes_schemas

from .k8s import BINARY_SUFFIXES, DECIMAL_SUFFIXES, parse_quantity
from .rendering import KUBE_VERSIONS

KUBE = KUBE_VERSIONS[-1]
PVC = "io.k8s.api.core.v1.PersistentVolumeClaim"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
# The port types whose `protocol` the server defaults to TCP (and that are keyed by it).
PORT_TYPES = (
    "io.k8s.api.core.v1.ContainerPort",
    "io.k8s.api.core.v1.ServicePort",
    "io.k8s.api.networking.v1.NetworkPolicyPort",
)


def _schemas() -> tuple[dict[str, Any], Traversable]:
    return kubernetes_schemas(KUBE)


def kind_schema(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The object's schema, or None for a kind Kubernetes does not define (a CRD's)."""
    root = _schemas()[1]
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", obj["apiVersion"])
    path = root / f"{obj['kind'].lower()}-{group_version}.json"
    if not path.is_file():
        return None
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def _resolve(schema: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(the schema behind a $ref, the definition's name); a schema without one as it is."""
    ref = schema.get("$ref")
    if not ref:
        return schema, None
    name = ref.rsplit("/", 1)[-1]
    resolved: dict[str, Any] = _schemas()[0][name]
    return resolved, name


@dataclass(frozen=True)
class Node:
    """One value of an object with what its schema says about it."""

    path: str
    value: Any
    schema: dict[str, Any]
    ref: str | None  # the definition name, e.g. io.k8s.api.core.v1.ContainerPort
    atomic: bool  # an item of an atomic list (replaced whole by apply), or inside one

    def where(self, obj: dict[str, Any]) -> str:
        return f"{obj['kind']}/{obj['metadata']['name']} {self.path}"


def nodes(obj: dict[str, Any]) -> Iterator[Node]:
    """Every value of a built-in object, depth first, each with its schema; none for a CRD."""
    schema = kind_schema(obj)
    if schema is None:
        return
    yield from _walk(obj, schema, "", False)


def _walk(value: Any, schema: dict[str, Any], path: str, atomic: bool) -> Iterator[Node]:
    schema, ref = _resolve(schema)
    yield Node(path or ".", value, schema, ref, atomic)
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        for key, child in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else {})
            yield from _walk(child, sub, f"{path}.{key}", atomic)
    elif isinstance(value, list):
        # SSA treats a list without a list type as atomic, like one that says so.
        whole = schema.get("x-kubernetes-list-type", "atomic") == "atomic"
        for i, child in enumerate(value):
            yield from _walk(child, schema.get("items", {}), f"{path}[{i}]", atomic or whole)


def is_map(schema: dict[str, Any]) -> bool:
    """A Go map field (labels, resources.requests, ...), as opposed to a struct."""
    return isinstance(schema.get("additionalProperties"), dict) and "properties" not in schema


# ---- quantities ------------------------------------------------------------------------

_DECIMAL_SUFFIX = {power: suffix for suffix, power in DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIX = {power: suffix for suffix, power in BINARY_SUFFIXES.items()} | {0: ""}


def canonical_quantity(text: str) -> str:
    """The form the API server stores a quantity in (resource.Quantity's canonical string,
    apimachinery pkg/api/resource/quantity.go CanonicalizeBytes): the suffix family the user
    wrote (decimal, binary or exponent), precision kept to 1n (rounded up), and the largest
    suffix of that family that leaves an integer: 1000m -> 1, 0.5 -> 500m, 1000 -> 1k,
    1024Mi -> 1Gi, 1.5Gi -> 1536Mi. A binary value below 1024 or with a fraction falls back
    to decimal (0.5Ki -> 512). ValueError for what the server refuses to parse."""
    value, family = parse_quantity(text)
    nanos = math.ceil(value * 10**9)
    if nanos == 0:
        return "0"
    if family == "binary" and (abs(nanos) < 1024 * 10**9 or nanos % 10**9):
        family = "decimal"
    if family == "binary":
        whole, power = nanos // 10**9, 0
        while whole % 1024 == 0 and power < 60:
            whole, power = whole // 1024, power + 10
        return f"{whole}{_BINARY_SUFFIX[power]}"
    mantissa, power = nanos, -9
    while mantissa % 1000 == 0 and (family == "exponent" or power < 18):
        mantissa, power = mantissa // 1000, power + 3
    if family == "exponent":
        return f"{mantissa}e{power}" if power else str(mantissa)
    return f"{mantissa}{_DECIMAL_SUFFIX[power]}"


# ---- the rules -------------------------------------------------------------------------

Rule = Callable[[dict[str, Any]], list[str]]


def embedded_type_meta(obj: dict[str, Any]) -> list[str]:
    """A StatefulSet's volumeClaimTemplates entries say `apiVersion: v1` and
    `kind: PersistentVolumeClaim`. The API server writes both into every entry it stores
    (kubernetes/kubernetes#87706); the list is atomic, so an applied list without them differs
    from the stored one, and Argo CD's diff, which re-applies defaults to its prediction but
    cannot repeat a conversion, shows the StatefulSet OutOfSync on every refresh
    (argoproj/argo-cd#11143 under server-side apply, CloudPirates-io/helm-charts#1413)."""
    return [
        f"{n.where(obj)}: an embedded PersistentVolumeClaim needs apiVersion: v1 and kind: "
        f"PersistentVolumeClaim (found {n.value.get('apiVersion')!r}, {n.value.get('kind')!r})"
        for n in nodes(obj)
        if n.ref == PVC
        and n.path != "."
        and (n.value.get("apiVersion"), n.value.get("kind")) != ("v1", "PersistentVolumeClaim")
    ]


def canonical_quantities(obj: dict[str, Any]) -> list[str]:
    """Every quantity (resources, emptyDir sizeLimit, storage requests, HPA target values) is
    a string in its canonical form. The server parses a quantity and stores its canonical
    string (canonical_quantity): `cpu: 1000m` comes back as `"1"`, `memory: 1024Mi` as `"1Gi"`,
    `cpu: 0.5` as `"500m"`, a YAML number `cpu: 1` as the string `"1"`. A tool that compares
    the rendered text with the stored object sees a change that never goes away."""
    problems = []
    for n in nodes(obj):
        if n.ref != QUANTITY:
            continue
        if not isinstance(n.value, str):
            problems.append(f"{n.where(obj)}: quantity {n.value!r} is not a string")
            continue
        try:
            canonical = canonical_quantity(n.value)
        except ValueError as error:
            problems.append(f"{n.where(obj)}: {error}")
            continue
        if canonical != n.value:
            problems.append(f"{n.where(obj)}: {n.value!r} is stored as {canonical!r}")
    return problems


def int_or_string(obj: dict[str, Any]) -> list[str]:
    """An int-or-string field (targetPort, probe and NetworkPolicy ports, maxSurge,
    maxUnavailable, minAvailable) is an integer, a percentage or a name, never a number in
    quotes. intstr.IntOrString keeps the JSON type it was sent: `"1"` stays a string, which
    the server refuses as a percentage (PDB, rolling updates) and reads as a port name."""
    return [
        f"{n.where(obj)}: {n.value!r} is a number in a string; render it as an integer"
        for n in nodes(obj)
        if n.ref == INT_OR_STRING and isinstance(n.value, str) and n.value.isdigit()
    ]


def explicit_protocols(obj: dict[str, Any]) -> list[str]:
    """Every container, Service and NetworkPolicy port names its protocol. The server defaults
    a missing one to TCP, and server-side apply keys container and Service ports by
    (port, protocol): the rendered entry then only matches the stored one through the default,
    and NetworkPolicy ports sit in atomic lists that apply replaces whole."""
    return [
        f"{n.where(obj)}: no protocol (the server stores TCP)"
        for n in nodes(obj)
        if n.ref in PORT_TYPES and isinstance(n.value, dict) and "protocol" not in n.value
    ]


def nothing_dropped(obj: dict[str, Any]) -> list[str]:
    """No `null`, no empty list and no empty map (labels, annotations, nodeSelector, data,
    ...). The server decodes into Go types whose optional slices and maps carry `omitempty`,
    so it stores none of them: `egress: []` comes back without `egress`. (An empty struct, such
    as `emptyDir: {}` or `podSelector: {}`, is a set pointer and is kept, so it is allowed.)"""
    problems = []
    for n in nodes(obj):
        if n.value is None:
            problems.append(f"{n.where(obj)}: null (the server drops the field)")
        elif n.value == [] or (n.value == {} and is_map(n.schema)):
            problems.append(f"{n.where(obj)}: empty {type(n.value).__name__} (the server drops it)")
    return problems


def unique_keys(obj: dict[str, Any]) -> list[str]:
    """Lists the API keys (containers and env by name, container ports by containerPort and
    protocol, Service ports by port and protocol, volumes by name, ...; the schema's
    x-kubernetes-list-map-keys) hold each key once. Server-side apply refuses an applied list
    with a key twice, and strategic merge keeps one entry of the two."""
    problems = []
    for n in nodes(obj):
        if not isinstance(n.value, list) or n.schema.get("x-kubernetes-list-type") != "map":
            continue
        keys = n.schema.get("x-kubernetes-list-map-keys", [])
        seen = set()
        for item in n.value:
            key = tuple(item.get(k, "TCP" if k == "protocol" else None) for k in keys)
            if key in seen:
                problems.append(f"{n.where(obj)}: {dict(zip(keys, key, strict=True))} twice")
            seen.add(key)
    return problems


# Defaults the Gateway API's CRD schema gives (gateway.networking.k8s.io/v1, +kubebuilder:default).
GATEWAY_DEFAULTS = {
    "parentRefs": {"group": "gateway.networking.k8s.io", "kind": "Gateway"},
    "backendRefs": {"group": "", "kind": "Service", "weight": 1},
}


def gateway_api_defaults(obj: dict[str, Any]) -> list[str]:
    """An HTTPRoute's parentRefs and backendRefs write out the Gateway API's defaults (group,
    kind, weight). The API server fills them in from the CRD's schema; Argo CD's diff repeats
    the built-in types' defaults but not a CRD's, so under server-side apply an entry that
    leaves them out differs from the stored one. (No Kubernetes schema here: a custom kind.)"""
    if (obj["apiVersion"], obj["kind"]) != ("gateway.networking.k8s.io/v1", "HTTPRoute"):
        return []
    spec = obj["spec"]
    refs = [("parentRefs", i, r) for i, r in enumerate(spec.get("parentRefs", []))]
    refs += [
        ("backendRefs", i, r)
        for rule in spec.get("rules", [])
        for i, r in enumerate(rule.get("backendRefs", []))
    ]
    return [
        f"HTTPRoute/{obj['metadata']['name']} {field}[{i}]: no {key} (the server stores {value!r})"
        for field, i, ref in refs
        for key, value in GATEWAY_DEFAULTS[field].items()
        if key not in ref
    ]


def jobs_are_hooks(obj: dict[str, Any]) -> list[str]:
    """A Job is a Helm hook, created anew each time it runs. The API server refuses any change
    to a Job's pod template (immutable) and fills in its selector and pod labels itself, so a
    plain Job in a release could not be synced again once its spec changed (Argo CD would need
    Replace=true for it)."""
    if obj["kind"] != "Job" or "helm.sh/hook" in obj["metadata"].get("annotations", {}):
        return []
    return [f"Job/{obj['metadata']['name']}: not a hook (its pod template cannot be updated)"]


RULES: dict[str, Rule] = {
    "embedded-type-meta": embedded_type_meta,
    "canonical-quantities": canonical_quantities,
    "int-or-string": int_or_string,
    "explicit-protocols": explicit_protocols,
    "nothing-dropped": nothing_dropped,
    "unique-keys": unique_keys,
    "gateway-api-defaults": gateway_api_defaults,
    "jobs-are-hooks": jobs_are_hooks,
}


def autoscaled_replicas(objects: list[dict[str, Any]]) -> list[str]:
    """A workload an HPA of the same release scales does not set `spec.replicas`. The HPA
    writes replicas through the scale subresource; a rendered value would be applied again on
    every sync (Argo CD self-heal, Flux drift correction) and fight the HPA, which is why Argo
    CD's docs suggest leaving it out or ignoring it."""
    targets = {
        (hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"])
        for hpa in objects
        if hpa["kind"] == "HorizontalPodAutoscaler"
    }
    return [
        f"{o['kind']}/{o['metadata']['name']}: sets replicas although an HPA scales it"
        for o in objects
        if (o["kind"], o["metadata"]["name"]) in targets and "replicas" in o.get("spec", {})
    ]

"""Helpers that read rendered Kubernetes objects: pods, containers and NetworkPolicies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
HOOK = "helm.sh/hook"


@dataclass
class Pod:
    """A pod as rendered: a workload's template or a hook Pod."""

    owner: dict[str, Any]
    spec: dict[str, Any]
    labels: dict[str, str]
    hook: bool
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.owner['kind']}/{self.owner['metadata']['name']}"

    def containers(self, init: bool = True) -> list[dict[str, Any]]:
        found = list(self.spec.get("containers", []))
        if init:
            found += self.spec.get("initContainers", [])
        return found

    def ports(self) -> list[dict[str, Any]]:
        return [p for c in self.containers(init=False) for p in c.get("ports", [])]

    def port_number(self, port: int | str) -> int | None:
        """A container port by number or name, or None when the pod has no such port."""
        for p in self.ports():
            if port in (p["containerPort"], p.get("name")):
                return int(p["containerPort"])
        return None


def pods(objects: list[dict[str, Any]]) -> Iterator[Pod]:
    for obj in objects:
        if obj["kind"] in WORKLOAD_KINDS:
            template = obj["spec"]["template"]
            meta = template.get("metadata", {})
            hook = HOOK in obj["metadata"].get("annotations", {})  # e.g. a pre-upgrade Job
            yield Pod(
                obj, template["spec"], meta.get("labels", {}), hook, meta.get("annotations", {})
            )
        elif obj["kind"] == "Pod":
            meta = obj["metadata"]
            hook = HOOK in meta.get("annotations", {})
            yield Pod(obj, obj["spec"], meta.get("labels", {}), hook, meta.get("annotations", {}))


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise KeyError(f"{kind}/{name} not rendered")


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# A peer outside the release: another namespace, the node, the internet.
OUTSIDE = "outside"


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    port: int
    protocol: str = "TCP"


@dataclass
class PolicyModel:
    """What the NetworkPolicies of one render allow, evaluated the way Kubernetes does.

    Pods are named by their app.kubernetes.io/name label. A path is allowed when the
    source may send (no policy selects it for Egress, or one allows it) and the
    destination may receive (likewise for Ingress).
    """

    pods: list[Pod]
    policies: list[dict[str, Any]]
    names: dict[int, str] = field(default_factory=dict)

    def name(self, pod: Pod) -> str:
        return pod.labels.get("app.kubernetes.io/name", pod.name)

    def selecting(self, pod: Pod, direction: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.policies
            if direction in p["spec"].get("policyTypes", ["Ingress"])
            and selector_matches(p["spec"].get("podSelector") or {}, pod.labels)
        ]

    @staticmethod
    def _peer_matches(peers: list[dict[str, Any]] | None, other: Pod | None) -> bool:
        """Whether a rule's from/to list admits `other` (None = outside the release)."""
        if peers is None:
            return True
        for peer in peers:
            if "ipBlock" in peer or "namespaceSelector" in peer:
                # Other namespaces or addresses: outside. (An empty namespaceSelector
                # also covers this namespace, but these tests only need "outside".)
                if other is None:
                    return True
                continue
            if other is not None and selector_matches(peer.get("podSelector") or {}, other.labels):
                return True
        return False

    @staticmethod
    def _port_matches(
        ports: list[dict[str, Any]] | None, port: int, protocol: str, dst: Pod | None
    ) -> bool:
        if not ports:
            return True
        for p in ports:
            if p.get("protocol", "TCP") != protocol:
                continue
            wanted = p.get("port")
            if wanted is None:
                return True
            if isinstance(wanted, str):
                resolved = dst.port_number(wanted) if dst is not None else None
                if resolved == port:
                    return True
            elif int(wanted) <= port <= int(p.get("endPort", wanted)):
                return True
        return False

    def allows(self, src: Pod | None, dst: Pod | None, port: int, protocol: str = "TCP") -> bool:
        # A connection needs the sender's egress and the receiver's ingress (None: outside).
        return (src is None or self._side_allows(src, "Egress", dst, dst, port, protocol)) and (
            dst is None or self._side_allows(dst, "Ingress", src, dst, port, protocol)
        )

    def _side_allows(
        self, pod: Pod, direction: str, peer: Pod | None, dst: Pod | None, port: int, protocol: str
    ) -> bool:
        """Whether the policies selecting `pod` for `direction` let `peer` through (or none do)."""
        policies = self.selecting(pod, direction)
        rules_key, peer_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        return not policies or any(
            self._peer_matches(rule.get(peer_key), peer)
            and self._port_matches(rule.get("ports"), port, protocol, dst)
            for policy in policies
            for rule in policy["spec"].get(rules_key) or []
        )

    def internal_edges(self) -> set[Edge]:
        """Every allowed (src, dst, container port) between two pods of the release."""
        edges = set()
        for src in self.pods:
            for dst in self.pods:
                for port in dst.ports():
                    number, protocol = int(port["containerPort"]), port.get("protocol", "TCP")
                    if self.allows(src, dst, number, protocol):
                        edges.add(Edge(self.name(src), self.name(dst), number, protocol))
        return edges

    def inbound_from_outside(self) -> set[Edge]:
        edges = set()
        for dst in self.pods:
            for port in dst.ports():
                number, protocol = int(port["containerPort"]), port.get("protocol", "TCP")
                if self.allows(None, dst, number, protocol):
                    edges.add(Edge(OUTSIDE, self.name(dst), number, protocol))
        return edges

    def outbound_to_outside(self, probe_ports: list[tuple[int, str]]) -> set[Edge]:
        """Allowed egress to outside the release on the probe ports (a sample of ports)."""
        edges = set()
        for src in self.pods:
            for number, protocol in probe_ports:
                if self.allows(src, None, number, protocol):
                    edges.add(Edge(self.name(src), OUTSIDE, number, protocol))
        return edges


# Kubernetes quantities (resource.Quantity): decimal suffixes (powers of ten), binary suffixes
# (powers of two) or a decimal exponent.
DECIMAL_SUFFIXES = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][+-]?[0-9]+)|([a-zA-Z]*))$"
)


def parse_quantity(text: str) -> tuple[Fraction, str]:
    """A quantity's exact value (cores, bytes) and the suffix family it was written in
    ("decimal", "binary" or "exponent"); ValueError for what the API server refuses."""
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    number, exponent, suffix = match.groups()
    try:
        value = Fraction(Decimal(number))
    except InvalidOperation as error:
        raise ValueError(f"not a quantity: {text!r}") from error
    if exponent:
        return value * Fraction(10) ** int(exponent[1:]), "exponent"
    if suffix in BINARY_SUFFIXES:
        return value * 2 ** BINARY_SUFFIXES[suffix], "binary"
    if suffix in DECIMAL_SUFFIXES:
        return value * Fraction(10) ** DECIMAL_SUFFIXES[suffix], "decimal"
    raise ValueError(f"not a quantity suffix: {text!r}")


def quantity(value: str | int | float) -> Fraction:
    """A Kubernetes quantity ("250m", "64Mi", "1.5", 2) as an exact number of units (cores,
    bytes), so that sums of requests compare exactly."""
    return parse_quantity(str(value))[0]


def _requests(container: dict[str, Any]) -> tuple[Fraction, Fraction]:
    requests = (container.get("resources") or {}).get("requests") or {}
    return quantity(requests.get("cpu", 0)), quantity(requests.get("memory", 0))


def pod_requests(spec: dict[str, Any]) -> tuple[Fraction, Fraction]:
    """(CPU cores, memory bytes) the scheduler reserves for a pod spec, the Kubernetes way: the
    larger of the app containers' sum (plus sidecars, init containers with restartPolicy
    Always) and each init container's own request (plus the sidecars started before it)."""
    cpu = memory = Fraction(0)  # of the sidecars started so far
    init_peak = (Fraction(0), Fraction(0))
    for init in spec.get("initContainers") or []:
        c, m = _requests(init)
        if init.get("restartPolicy") == "Always":
            cpu, memory = cpu + c, memory + m
        else:
            init_peak = (max(init_peak[0], cpu + c), max(init_peak[1], memory + m))
    for container in spec.get("containers") or []:
        c, m = _requests(container)
        cpu, memory = cpu + c, memory + m
    return max(cpu, init_peak[0]), max(memory, init_peak[1])

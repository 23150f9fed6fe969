"""Pure helpers for the cluster suite: no cluster, no network, unit-tested in tests/ci."""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rendered import helm_set_args

from tests.support.numbers import find_duplicates

__all__ = ["helm_set_args"]  # here for the suite and its tests; ci/rendered.py has the code

# RFC 1123 label: what Kubernetes accepts for namespace and Service names.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PORT_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?|[0-9]{1,5})$")


def _check_label(kind: str, value: str) -> None:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"{kind} {value!r} is not a valid DNS-1123 label")


def service_proxy_path(
    namespace: str, service: str, port: str, path: str = "", scheme: str = ""
) -> str:
    """The API server's proxy path to a Service port (name or number): no port-forward needed."""
    _check_label("namespace", namespace)
    _check_label("service", service)
    if not _PORT_NAME.match(port):
        raise ValueError(f"port {port!r} is neither a port name nor a number")
    if scheme not in ("", "http", "https"):
        raise ValueError(f"scheme {scheme!r} must be http or https")
    target = f"{scheme}:{service}:{port}" if scheme else f"{service}:{port}"
    return f"/api/v1/namespaces/{namespace}/services/{target}/proxy/{path.lstrip('/')}"


def parse_hash_answer(payload: Any) -> int:
    """The number in hash's `{"data": {"number": N, "hash": sha256(str(N))}}`, else ValueError."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise ValueError(f"not a hash answer: {payload!r}")
    number = payload["data"].get("number")
    digest = payload["data"].get("hash")
    if not isinstance(number, int) or isinstance(number, bool):
        raise ValueError(f"number is not an integer: {number!r}")
    expected = hashlib.sha256(str(number).encode()).hexdigest()
    if digest != expected:
        raise ValueError(f"hash of {number} is {digest!r}, expected {expected}")
    return number


@dataclass
class Ledger:
    """Every number the release handed out during the suite; a duplicate is the bug we hunt."""

    numbers: list[int] = field(default_factory=list)
    failures: Counter[int] = field(default_factory=Counter)

    def record(self, status: int, number: int | None) -> None:
        if status == 200 and number is not None:
            self.numbers.append(number)
        else:
            self.failures[status] += 1

    def duplicates(self) -> dict[int, int]:
        return find_duplicates(self.numbers)


SERVICES = ("hello", "persistence", "hash")


def image_values(registry: str, tag: str, repository_prefix: str = "hashstack") -> dict[str, str]:
    """Values that point hello, persistence and hash (and nothing else) at the images
    `ci/images.sh push REGISTRY` sent: `<service>.image.registry/repository/tag`. Never
    global.imageRegistry, which would also rename etcd, the registry and its proxy."""
    values: dict[str, str] = {}
    for service in SERVICES:
        if registry:
            values[f"{service}.image.registry"] = registry
            values[f"{service}.image.repository"] = f"{repository_prefix}/{service}"
        if tag:
            values[f"{service}.image.tag"] = tag
    return values


def kept_claims(
    claims: Iterable[str], kept_names: Iterable[str], template_prefixes: Iterable[str]
) -> tuple[list[str], list[str]]:
    """(kept, unexpected) PVC names after `helm uninstall`, by the chart's policy as rendered
    (tests/cluster/rendered.py's Rendered.kept_claims): the claims it marks
    helm.sh/resource-policy: keep, and `<prefix><ordinal>` for each volumeClaimTemplate's
    prefix (Kubernetes never deletes those with their StatefulSet)."""
    names = set(kept_names)
    ordinal = re.compile("|".join(rf"^{re.escape(p)}\d+$" for p in template_prefixes) or "(?!)")
    kept, unexpected = [], []
    for name in sorted(claims):
        if name in names or ordinal.match(name):
            kept.append(name)
        else:
            unexpected.append(name)
    return kept, unexpected


def kind_cluster_name(context: str) -> str | None:
    """The kind cluster a kubeconfig context belongs to (kind names its contexts kind-NAME)."""
    return context.removeprefix("kind-") or None if context.startswith("kind-") else None


def kubeconfig_candidates(option: str | None, environ: Mapping[str, str], home: Path) -> list[Path]:
    """Where a kubeconfig may be, in kubectl's order: option, $KUBECONFIG, ~/.kube/config."""
    if option:
        return [Path(option)]
    env = environ.get("KUBECONFIG", "")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [home / ".kube" / "config"]


# Objects Kubernetes itself puts in every namespace: not the release's leftovers.
_NAMESPACE_DEFAULTS = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}


def leftovers(objects: Iterable[Mapping[str, Any]], keep_kinds: frozenset[str]) -> list[str]:
    """`Kind/name` of every object that is neither a namespace default nor of a kept kind."""
    found = []
    for obj in objects:
        kind = str(obj.get("kind", ""))
        name = str(obj.get("metadata", {}).get("name", ""))
        if kind in keep_kinds or (kind, name) in _NAMESPACE_DEFAULTS:
            continue
        found.append(f"{kind}/{name}")
    return sorted(found)


@dataclass
class Measurement:
    """Calls made under constant load while something changes (an upgrade, a drain): how many
    failed and the slowest one. Numbers also go into the suite's ledger (duplicates)."""

    what: str
    ledger: Ledger
    calls: int = 0
    failures: Counter[int] = field(default_factory=Counter)
    slowest: float = 0.0

    def record(self, status: int, number: int | None, seconds: float) -> None:
        self.ledger.record(status, number)
        self.calls += 1
        self.slowest = max(self.slowest, seconds)
        if status != 200 or number is None:
            self.failures[status] += 1

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def summary(self) -> str:
        """One line for the job log; status 0 is a connection error or timeout."""
        by_status = ", ".join(f"{s}: {c}" for s, c in sorted(self.failures.items()))
        failed = f"{self.failed} failed" + (f" ({by_status})" if by_status else "")
        return f"{self.what}: {self.calls} calls, {failed}, slowest {self.slowest:.3f}s"

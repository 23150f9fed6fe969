"""Label selectors as kubectl's -l writes them, and the claims Kubernetes makes from a
StatefulSet's volumeClaimTemplates: for checking which objects a documented command reaches."""

from __future__ import annotations

import re
from typing import Any


def parse_label_selector(text: str) -> dict[str, Any]:
    """A `kubectl -l` selector string (`a=b,c!=d,e in (f,g),h notin (i),j,!k`) as the
    LabelSelector dict selector_matches evaluates (`!=` is NotIn, as Kubernetes reads it)."""
    match_labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for term in re.findall(r"[^,()]+(?:\([^)]*\))?", text):
        term = term.strip()
        if not term:
            continue
        if found := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term):
            key, op, values = found.groups()
            listed = [v.strip() for v in values.split(",") if v.strip()]
            expressions.append(
                {"key": key, "operator": "In" if op == "in" else "NotIn", "values": listed}
            )
        elif found := re.fullmatch(r"([\w./-]+)\s*!=\s*([\w.-]*)", term):
            expressions.append({"key": found[1], "operator": "NotIn", "values": [found[2]]})
        elif found := re.fullmatch(r"([\w./-]+)\s*==?\s*([\w.-]*)", term):
            match_labels[found[1]] = found[2]
        elif found := re.fullmatch(r"!\s*([\w./-]+)", term):
            expressions.append({"key": found[1], "operator": "DoesNotExist"})
        elif re.fullmatch(r"[\w./-]+", term):
            expressions.append({"key": term, "operator": "Exists"})
        else:
            raise ValueError(f"not a label selector term: {term!r} in {text!r}")
    return {"matchLabels": match_labels, "matchExpressions": expressions}


def statefulset_claims(sts: dict[str, Any], replicas: int | None = None) -> list[dict[str, Any]]:
    """The PVCs Kubernetes makes from a StatefulSet's volumeClaimTemplates: <template>-<set>-<N>,
    labelled with the template's labels and the set's selector matchLabels on top (as the
    StatefulSet controller does)."""
    count = sts["spec"].get("replicas", 1) if replicas is None else replicas
    selector = sts["spec"]["selector"].get("matchLabels") or {}
    claims = []
    for template in sts["spec"].get("volumeClaimTemplates") or []:
        for ordinal in range(count):
            meta = template.get("metadata", {})
            labels = {**(meta.get("labels") or {}), **selector}
            name = f"{meta['name']}-{sts['metadata']['name']}-{ordinal}"
            namespace = sts["metadata"].get("namespace")
            claims.append({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": template.get("spec", {}),
            })  # fmt: skip
    return claims

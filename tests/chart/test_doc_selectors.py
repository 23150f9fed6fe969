"""Every `kubectl ... -l SELECTOR` in docs/etcd.md and docs/operations.md, evaluated against
the chart as it renders with backups on: the member volumes come from the StatefulSet's
volumeClaimTemplates, labelled as Kubernetes labels them. A documented selector that deletes
claims must never reach the backup claim: it holds the snapshots a total loss restores from.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest

from .k8s import by_kind, named, pods, selector_matches
from .labels import parse_label_selector, statefulset_claims
from .rendering import RELEASE, ROOT, RenderFn

PAGES = ("docs/etcd.md", "docs/operations.md")
BACKUP_CLAIM = f"{RELEASE}-etcd-backup"
KINDS = {
    "pvc": "PersistentVolumeClaim", "persistentvolumeclaim": "PersistentVolumeClaim",
    "persistentvolumeclaims": "PersistentVolumeClaim", "pod": "Pod", "pods": "Pod", "po": "Pod",
}  # fmt: skip
VERBS = {"get", "delete", "describe", "logs", "label", "annotate", "wait"}


def documented_selectors() -> list[tuple[str, str, str, str]]:
    """(page, verb, kind, selector) for each kubectl command with a label selector; the
    etcd page writes the release as R."""
    found = []
    for page in PAGES:
        text = (ROOT / page).read_text()
        for line in text.splitlines():
            if "kubectl" not in line or not re.search(r"\s(-l|--selector)[\s=]", line):
                continue
            command = line[line.index("kubectl") :].split("`")[0].split("#")[0]
            words = shlex.split(
                command.replace(" R,", f" {RELEASE},").replace("=R,", f"={RELEASE},")
            )
            words = [w.replace("=R", f"={RELEASE}") if w.endswith("=R") else w for w in words]
            verb = next(w for w in words[1:] if not w.startswith("-") and w in VERBS)
            rest = words[words.index(verb) + 1 :]
            kind = next(
                w
                for i, w in enumerate(rest)
                if not w.startswith("-") and (i == 0 or rest[i - 1] not in ("-n", "--namespace"))
            )
            for i, word in enumerate(rest):
                if word in ("-l", "--selector"):
                    selector = rest[i + 1]
                elif word.startswith("--selector="):
                    selector = word.split("=", 1)[1]
            found.append((page, verb, kind.split("/")[0].lower(), selector))
    return found


def test_the_pages_document_selectors() -> None:
    """The scan below finds what it scans for (a change of wording must not empty it)."""
    pages = {
        page
        for page, _, kind, _ in documented_selectors()
        if KINDS.get(kind) == "PersistentVolumeClaim"
    }
    assert pages == set(PAGES)


@pytest.mark.parametrize(("page", "verb", "kind", "selector"), documented_selectors())
def test_no_documented_selector_reaches_the_backup_claim(
    render: RenderFn, page: str, verb: str, kind: str, selector: str
) -> None:
    objects = render(
        "default", extra=("--set", "etcd.backup.enabled=true", "--set", "etcd.replicaCount=3")
    )
    sts = named(objects, "StatefulSet", f"{RELEASE}-etcd")
    claims = by_kind(objects, "PersistentVolumeClaim") + statefulset_claims(sts)
    assert BACKUP_CLAIM in {c["metadata"]["name"] for c in claims}
    parsed = parse_label_selector(selector)
    candidates: list[dict[str, Any]] = []
    if KINDS[kind] == "PersistentVolumeClaim":
        candidates = [c["metadata"] for c in claims]
    else:
        candidates = [{"name": p.name, "labels": p.labels} for p in pods(objects)]
    matched = {c["name"] for c in candidates if selector_matches(parsed, c.get("labels") or {})}
    assert matched, f"{page}: `-l {selector}` selects no {KINDS[kind]}"
    assert BACKUP_CLAIM not in matched, (
        f"{page}: `kubectl {verb} {kind} -l {selector}` reaches the snapshots"
    )
    if KINDS[kind] == "PersistentVolumeClaim" and verb == "delete":
        members = {c["metadata"]["name"] for c in statefulset_claims(sts)}
        assert matched & members, f"{page}: `-l {selector}` misses the member volumes"

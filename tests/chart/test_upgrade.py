"""Upgrade safety: what Kubernetes will not change in place stays the same across the
scenarios an upgrade moves between, and a config change rolls exactly its pods."""

from __future__ import annotations

from typing import Any

import pytest

from .k8s import named
from .rendering import RELEASE, RenderFn

NEW_TAGS = (
    *("--set-string", "hello.image.tag=9.9.9"),
    *("--set-string", "persistence.image.tag=9.9.9"),
    *("--set-string", "hash.image.tag=9.9.9"),
    *("--set-string", "etcd.image.tag=3.5.99-0"),
)

# Fields the API server refuses to change on an existing object.
IMMUTABLE = {
    "Deployment": (("spec", "selector"),),
    "DaemonSet": (("spec", "selector"),),
    "StatefulSet": (
        ("spec", "selector"),
        ("spec", "serviceName"),
        ("spec", "volumeClaimTemplates"),
        ("spec", "podManagementPolicy"),
    ),
}


def dig(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        obj = obj.get(key, {}) if isinstance(obj, dict) else {}
    return obj


def workloads(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in IMMUTABLE}


@pytest.mark.parametrize(
    ("after", "extra"),
    [("ha", ()), ("default", NEW_TAGS), ("dev", ())],
    ids=["to-ha", "new-image-tags", "to-dev"],
)
def test_immutable_fields_survive_the_upgrade(
    after: str, extra: tuple[str, ...], render: RenderFn
) -> None:
    before = workloads(render("default"))
    upgraded = workloads(render(after, extra=extra))
    assert set(before) <= set(upgraded)
    assert ("StatefulSet", f"{RELEASE}-etcd") in before
    for key, old in before.items():
        new = upgraded[key]
        for path in IMMUTABLE[key[0]]:
            assert dig(old, path) == dig(new, path), f"{key} {'.'.join(path)} changed"


def checksums(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {
        service: named(objects, "Deployment", f"{RELEASE}-{service}")["spec"]["template"][
            "metadata"
        ]["annotations"]["checksum/config"]
        for service in ("hello", "persistence", "hash")
    }


def test_config_change_rolls_exactly_its_pods(render: RenderFn) -> None:
    base = checksums(render("default"))
    changed = checksums(render("default", extra=("--set", "hash.config.LOG_LEVEL=debug")))
    assert changed["hash"] != base["hash"]
    assert changed["hello"] == base["hello"]
    assert changed["persistence"] == base["persistence"]
    # Wiring counts as config: moving etcd changes persistence's environment.
    moved = checksums(render("minimal"))
    assert moved["persistence"] != base["persistence"]


def test_new_image_tags_leave_the_config_checksum(render: RenderFn) -> None:
    assert checksums(render("default", extra=NEW_TAGS)) == checksums(render("default"))
    objects = render("default", extra=NEW_TAGS)
    image = named(objects, "Deployment", f"{RELEASE}-hash")["spec"]["template"]["spec"][
        "containers"
    ][0]["image"]
    assert image.endswith("/hashstack/hash:9.9.9")

"""Markers by rung and by dependency, applied in one place (the root conftest calls apply()).

Every test gets the marker of its rung (its folder under tests/) and one marker per real
dependency it needs: from its folder, from a fixture it uses, or from a marker its module
declares (`pytestmark = pytest.mark.podman`). So `-m "not podman"` leaves out every test that
needs podman, wherever it sits.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

RUNGS = ("unit", "integration", "faults", "fuzz", "chart", "skaffold", "images", "cluster", "ci")
NEEDS = ("etcd", "helm", "podman", "cluster")

# What each rung needs as a whole.
RUNG_NEEDS: dict[str, tuple[str, ...]] = {
    "integration": ("etcd",),
    "faults": ("etcd",),
    "fuzz": ("etcd",),
    "chart": ("helm",),
    "skaffold": ("helm",),
    "images": ("podman",),
    "cluster": ("helm",),
}

# Fixtures that start a dependency, wherever they are used.
FIXTURE_NEEDS: dict[str, str] = {
    "etcd": "etcd",
    "etcd_trio": "etcd",
    "start_service": "etcd",
    "podman_ready": "podman",
    "images": "podman",
    "render": "helm",
    "helm_bins": "helm",
    "applied": "helm",
}

# Rungs that take more than a few seconds per test.
SLOW_RUNGS = ("faults", "fuzz", "images", "cluster")


def rung_of(path: Path) -> str | None:
    try:
        parts = path.resolve().relative_to(TESTS).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 and parts[0] in RUNGS else None


def markers_for(path: Path, fixtures: Iterable[str], declared: Iterable[str]) -> set[str]:
    """The markers a test at `path`, using `fixtures` and declaring `declared`, gets."""
    found = {name for name in declared if name in NEEDS}
    rung = rung_of(path)
    if rung is not None:
        found.add(rung)
        found.update(RUNG_NEEDS.get(rung, ()))
        if rung in SLOW_RUNGS:
            found.add("slow")
    found.update(FIXTURE_NEEDS[name] for name in fixtures if name in FIXTURE_NEEDS)
    return found


# Lanes for pytest-xdist (`--dist loadgroup`, ci/test.sh): the tests of a lane run one after
# another on one worker, so no two of them compete for the 2 CPUs while they read time
# windows. "etcd": everything that runs etcd members, as processes or in containers (the
# `test_images` fixture gives the etcd image); "podman": the other container tests (builds,
# pushes). A member replacement that takes 6 s alone took 45 s with a second etcd test beside
# it. Everything else spreads over every worker.
ETCD_IMAGE_FIXTURE = "test_images"


def lane_of(markers: set[str], fixtures: Iterable[str]) -> str | None:
    if "etcd" in markers or ETCD_IMAGE_FIXTURE in fixtures:
        return "etcd"
    return "podman" if "podman" in markers else None


def apply(items: list[pytest.Item]) -> None:
    for item in items:
        declared = {mark.name for mark in item.iter_markers()}
        fixtures = getattr(item, "fixturenames", ())
        found = markers_for(item.path, fixtures, declared)
        for name in sorted(found - declared):
            item.add_marker(name)
        lane = lane_of(found | declared, fixtures)
        if lane is not None:
            item.add_marker(pytest.mark.xdist_group(lane))


def pytest_collection_finish(session: pytest.Session) -> None:
    """With `-p tests.support.markers` and MARKER_DUMP=<file>: every test id and its markers,
    as JSON, for the test that checks what each marker selects."""
    out = os.environ.get("MARKER_DUMP")
    if not out:
        return
    dump = {item.nodeid: sorted(map(_dumped, item.iter_markers())) for item in session.items}
    Path(out).write_text(json.dumps(dump, indent=1, sort_keys=True))


def _dumped(mark: pytest.Mark) -> str:
    # The lane goes with its name: "xdist_group=etcd".
    return f"{mark.name}={mark.args[0]}" if mark.name == "xdist_group" else mark.name

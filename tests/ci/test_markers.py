"""The markers select what they say: every test has its rung's marker, and each dependency
marker covers every test that needs it (so `-m "not podman"` really leaves podman out)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.markers import NEEDS, RUNGS, markers_for, rung_of

ROOT = Path(__file__).resolve().parents[2]


def test_rung_comes_from_the_folder() -> None:
    assert rung_of(ROOT / "tests" / "integration" / "test_x.py") == "integration"
    assert rung_of(ROOT / "tests" / "conftest.py") is None
    assert rung_of(ROOT / "benchmarks" / "run.py") is None


def test_needs_come_from_folder_fixture_and_declaration() -> None:
    unit = ROOT / "tests" / "unit" / "test_x.py"
    assert markers_for(unit, (), ()) == {"unit"}
    assert markers_for(unit, ("etcd",), ()) == {"unit", "etcd"}
    assert markers_for(unit, (), ("podman",)) == {"unit", "podman"}
    assert markers_for(ROOT / "tests" / "faults" / "t.py", (), ()) == {"faults", "etcd", "slow"}


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Every test of the tree with the markers pytest selects by (one collection run)."""
    out = tmp_path_factory.mktemp("markers") / "markers.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "tests.support.markers",
         "-p", "no:cacheprovider", "tests"],
        cwd=ROOT, env={**os.environ, "MARKER_DUMP": str(out)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {test: set(names) for test, names in json.loads(out.read_text()).items()}


def under(collected: dict[str, set[str]], *rungs: str) -> set[str]:
    return {t for t in collected if t.split("/")[1] in rungs}


def having(collected: dict[str, set[str]], marker: str) -> set[str]:
    return {t for t, names in collected.items() if marker in names}


def test_every_test_has_exactly_its_folders_rung(collected: dict[str, set[str]]) -> None:
    assert len(collected) > 400
    wrong = {t: names & set(RUNGS) for t, names in collected.items()}
    wrong = {t: r for t, r in wrong.items() if r != {t.split("/")[1]}}
    assert not wrong, list(wrong.items())[:10]
    for rung in RUNGS:
        assert having(collected, rung), f"no test carries {rung}"


def test_etcd_marks_every_test_that_starts_etcd(collected: dict[str, set[str]]) -> None:
    etcd = having(collected, "etcd")
    assert under(collected, "integration", "faults", "fuzz") <= etcd
    assert not etcd & under(collected, "unit", "images", "ci", "skaffold")
    # The chart rung's etcd entrypoint runs real etcd members.
    assert any("test_etcd_membership.py::test_one_to_three_to_one" in t for t in etcd)


def test_podman_marks_images_and_the_skaffold_container_tests_only(
    collected: dict[str, set[str]],
) -> None:
    podman = having(collected, "podman")
    assert under(collected, "images") <= podman
    assert {t.split("::")[0] for t in podman - under(collected, "images")} == {
        "tests/skaffold/test_sync_podman.py",
        "tests/skaffold/test_custom_build.py",
    }


def test_helm_and_cluster(collected: dict[str, set[str]]) -> None:
    helm = having(collected, "helm")
    assert under(collected, "chart", "skaffold", "cluster") <= helm
    assert not helm & under(collected, "unit", "integration", "faults", "fuzz", "images")
    assert having(collected, "cluster") == under(collected, "cluster")


def test_lanes_keep_etcd_and_container_tests_one_at_a_time(collected: dict[str, set[str]]) -> None:
    lanes = {
        t: {n for n in names if n.startswith("xdist_group=")} for t, names in collected.items()
    }
    etcd_lane = {t for t, lane in lanes.items() if lane == {"xdist_group=etcd"}}
    podman_lane = {t for t, lane in lanes.items() if lane == {"xdist_group=podman"}}
    assert having(collected, "etcd") <= etcd_lane
    # The containers that run etcd members go with the etcd processes, not with the builds.
    assert any("test_etcd_entrypoint.py" in t for t in etcd_lane)
    assert any("test_scale_out.py" in t for t in etcd_lane)
    assert having(collected, "podman") <= etcd_lane | podman_lane
    assert any("test_build.py" in t for t in podman_lane)
    free = {t for t, lane in lanes.items() if not lane}
    assert under(collected, "unit") <= free
    assert len(free) > len(etcd_lane | podman_lane)  # most of the suite spreads


def test_every_need_selects_something(collected: dict[str, set[str]]) -> None:
    for need in NEEDS:
        assert having(collected, need), f"-m {need} would select nothing"


def test_marker_selection_on_the_command_line() -> None:
    """The issue's own command: -m integration on tests/integration selects its tests."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "integration",
         "-p", "no:cacheprovider", "tests/integration"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "deselected" not in proc.stdout
    assert " collected" in proc.stdout.splitlines()[-1]

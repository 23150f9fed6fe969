"""etcd membership under helm's hands: installs, scaling, restarts and lost volumes, each under
continuous load from the real allocator, run with upstream etcd 3.5 (etcd_cluster.py).

The short set runs in `make test`; the long set (every size and change) with ETCD_LONG=1
(`make test-etcd-long`). Each test ends with the same checks: no number handed out twice,
one cluster ID, a counter that never went back, and the expected members, all voting.
"""

from __future__ import annotations

import os
import time

import pytest

from .etcd_cluster import ETCD_BIN, SHELL, StatefulSet
from .etcd_load import Load

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

LONG = os.environ.get("ETCD_LONG") == "1"
long_only = pytest.mark.skipif(not LONG, reason="long etcd scenario: make test-etcd-long")


def scale_under_load(cluster: StatefulSet, first: int, changes: list[int]) -> Load:
    """Install with `first` members, then helm upgrade to each size in turn, under load."""
    cluster.install(first)
    cluster.wait_settled()
    with Load(cluster) as load:
        previous = first
        for size in changes:
            cluster.upgrade(size)
            cluster.wait_settled()
            load.mark(f"{previous} -> {size}")
            previous = size
    return load


def test_entrypoint_uses_shell_builtins_only(cluster: StatefulSet) -> None:
    """PATH holds etcd, etcdctl and etcdutl only, as in the image: any other command fails."""
    commands = {p.name for p in ETCD_BIN.iterdir() if p.is_file() and os.access(p, os.X_OK)}
    assert commands == {"etcd", "etcdctl", "etcdutl"}
    assert SHELL.endswith("bash-static")
    cluster.install(1)
    cluster.wait_settled()
    lines = cluster.entrypoint_lines(cluster.pods[0])
    assert any("confirm they have no data: bootstrapping" in line for line in lines), lines
    text = cluster.pods[0].log.read_text()
    assert "command not found" not in text, text


def test_one_to_three_to_one_under_load(cluster: StatefulSet) -> None:
    load = scale_under_load(cluster, 1, [3, 1])
    assert all(p.answers > 0 for p in load.phases)
    # New members joined as learners, one at a time; the departing ones were removed first.
    for pod in cluster.pods[1:3]:
        assert any("as a learner" in line for line in cluster.entrypoint_lines(pod))
    hook = "\n".join(cluster.hook_logs)
    assert hook.count("removing") == 2, hook
    # Scaling never restarted member 0.
    assert cluster.pods[0].starts == 1


def test_restarts_and_a_lost_volume_under_load(cluster: StatefulSet) -> None:
    cluster.install(3)
    cluster.wait_settled()
    with Load(cluster) as load:
        # helm upgrade with a changed pod template: the hook, then a rolling restart; every
        # restart from here on reads state "existing".
        cluster.upgrade(3)
        cluster.rolling_restart()
        cluster.wait_settled()
        load.mark("upgrade + rolling restart")
        lost = cluster.pods[1]
        cluster.lose_volume(lost)
        cluster.wait_settled()
        load.mark("volume lost")
        cluster.restart_all()
        cluster.wait_settled()
        load.mark("all restarted")
    lines = cluster.entrypoint_lines(lost)
    assert any("has no data: replacing it" in line for line in lines), lines


@long_only
@pytest.mark.parametrize("sets", [(), ("clusterState=existing",)], ids=["upgrade", "override"])
def test_an_upgrade_never_bootstraps(cluster: StatefulSet, sets: tuple[str, ...]) -> None:
    """After a helm upgrade (or with clusterState=existing) a member without data waits for a
    cluster to join; it never starts one, even when all the volumes are gone."""
    cluster.install(1)
    cluster.wait_settled()
    cluster.upgrade(1, *sets)
    pod = cluster.pods[0]
    before = len(cluster.entrypoint_lines(pod))
    cluster.lose_volume(pod)  # the only member, and its volume is gone
    time.sleep(8)
    assert not cluster.ready(pod)
    assert not cluster.cluster_ids()
    lines = cluster.entrypoint_lines(pod)[before:]
    assert not any("into the new cluster" in line for line in lines), lines
    assert any("state is existing: never bootstrapping" in line for line in lines), lines


@long_only
@pytest.mark.timeout(1200)
@pytest.mark.parametrize(
    ("first", "changes"),
    [(1, [3, 5, 3, 1]), (3, [1]), (5, [3, 1, 5]), (1, [5, 1]), (3, [5, 3])],
    ids=["1-3-5-3-1", "3-1", "5-3-1-5", "1-5-1", "3-5-3"],
)
def test_scaling_sequences_under_load(cluster: StatefulSet, first: int, changes: list[int]) -> None:
    scale_under_load(cluster, first, changes)
    # Grown again after a shrink: the kept PVCs of removed members are not reused as they are.
    sizes = [first, *changes]
    regrown = range(min(sizes), sizes[-1]) if sizes[-1] > min(sizes[1:] or sizes) else range(0)
    for pod in cluster.pods[regrown.start : regrown.stop]:
        if pod.starts > 1:
            lines = cluster.entrypoint_lines(pod)
            assert any("no longer lists" in line for line in lines), lines


@long_only
@pytest.mark.timeout(900)
@pytest.mark.parametrize("size", [3, 5])
def test_faults_at_every_size_under_load(cluster: StatefulSet, size: int) -> None:
    cluster.install(size)
    cluster.wait_settled()
    with Load(cluster) as load:
        for pod in cluster.pods[:size]:
            cluster.lose_volume(pod)
            cluster.wait_settled()
            load.mark(f"volume of {pod.ordinal} lost")
        cluster.rolling_restart()
        cluster.wait_settled()
        load.mark("rolling restart")
        cluster.restart_all()
        cluster.wait_settled()
        load.mark("all restarted")

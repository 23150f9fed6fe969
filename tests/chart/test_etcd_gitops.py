"""etcd membership deployed the way Argo CD deploys: `helm template` on every sync (so
.Release.IsInstall is true every time) and Helm's hooks in Argo CD's phases (PreSync before
anything is applied, the first sync included), with upstream etcd 3.5 under continuous load
from the real allocator (etcd_cluster.py, etcd_load.py).

Whether a member without data may bootstrap is decided at runtime from its peers' lobbies
(files/entrypoint.sh): these tests hold that rule to first syncs, later syncs, scaling,
restarts during a scale-up and two of three volumes lost at once (an outage, never a second
cluster). The short set runs in `make test`; the long set with ETCD_LONG=1.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from .etcd_cluster import StatefulSet, argo_hooks, render
from .etcd_load import Load
from .test_etcd_membership import long_only

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


def bootstraps(cluster: StatefulSet) -> list[str]:
    """Every entrypoint line, of every member, saying it bootstraps a new cluster."""
    return [
        line
        for p in cluster.pods
        for line in cluster.entrypoint_lines(p)
        if "bootstrapping" in line
    ]


def waiting_until(cluster: StatefulSet, pods: list[int], text: str, timeout: float = 60) -> None:
    """Until each of `pods` has logged a line holding `text`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(
            any(text in line for line in cluster.entrypoint_lines(cluster.pods[i])) for i in pods
        ):
            return
        time.sleep(0.5)
    raise AssertionError(f"no {text!r} line:\n{cluster.logs(cluster.pods)}")


def test_first_sync_later_syncs_and_scaling_under_load(cluster: StatefulSet) -> None:
    # First sync: the PreSync resize hook runs before anything exists, and succeeds.
    (hook,) = cluster.sync(1)
    assert "no cluster yet (the client Service's name does not resolve)" in hook, hook
    cluster.wait_settled()
    assert len(bootstraps(cluster)) == 1, bootstraps(cluster)
    with Load(cluster) as load:
        (hook,) = cluster.sync(1)  # a later sync, nothing changed: IsInstall true again
        assert "the release wants 1 members" in hook, hook
        cluster.wait_settled()
        load.mark("sync 1 -> 1")
        cluster.sync(3, wait=False)
        # A member restarted during the scale-up: killed while it joins as a learner.
        waiting_until(cluster, [1], "added")
        cluster.restart(cluster.pods[1])
        cluster.wait_settled()
        load.mark("sync 1 -> 3, member 1 restarted while joining")
        cluster.sync(3)
        cluster.wait_settled()
        load.mark("sync 3 -> 3")
        cluster.sync(1)
        cluster.wait_settled()
        load.mark("sync 3 -> 1")
    assert all(p.answers > 0 for p in load.phases)
    # One bootstrap in all (the first sync's); every other member joined as a learner.
    assert len(bootstraps(cluster)) == 1, bootstraps(cluster)
    for pod in cluster.pods[1:3]:
        assert any("as a learner" in line for line in cluster.entrypoint_lines(pod))
    assert "\n".join(cluster.hook_logs).count("removing") == 2, cluster.hook_logs
    assert cluster.pods[0].starts == 1


def test_two_of_three_volumes_lost_is_an_outage_never_a_second_cluster(
    cluster: StatefulSet,
) -> None:
    # A first sync of three: the members confirm to each other that none has data.
    cluster.sync(3)
    cluster.wait_settled()
    # Each member bootstraps, or (the last to decide) joins the cluster the others formed.
    formed = bootstraps(cluster)
    assert 2 <= len(formed) <= 3, formed
    for pod in cluster.pods[:3]:
        lines = cluster.entrypoint_lines(pod)
        assert any("opened the lobby" in line for line in lines), lines
        # One that decided last starts with its own entry: never removed and added again.
        started = ("into the new cluster", "never started: starting it")
        assert any(s in line for line in lines for s in started), lines
        assert not any("replacing it" in line for line in lines), lines
    # Every lobby closes once the cluster formed (within a poll of its member being ready):
    # none may go on denying data that is there.
    waiting_until(cluster, [0, 1, 2], "closed the lobby", timeout=20)
    (first_id,) = cluster.cluster_ids()
    with Load(cluster, settled_at_end=False) as load:
        cluster.sync(3)
        cluster.wait_settled()
        load.mark("sync 3 -> 3")
        before = len(cluster.entrypoint_lines(cluster.pods[0]))
        # Members 1 and 2 lose their volumes at once; member 0 keeps the data, no quorum.
        for pod in cluster.pods[1:3]:
            cluster.stop(pod)
        for pod in cluster.pods[1:3]:
            cluster.lose_volume(pod)
        waiting_until(cluster, [1, 2], f"{cluster.pods[0].name} does not confirm it has no data")
        # Member 0 restarts as well (crash-looping, slow): still nobody may bootstrap.
        cluster.restart(cluster.pods[0])
        time.sleep(10)
        load.mark("two volumes lost: outage")
    assert bootstraps(cluster) == formed
    assert not any(cluster.ready(p) for p in cluster.pods[:3])
    assert cluster.cluster_ids() <= {first_id}
    # Member 0 restarted with its data and never opened a lobby again.
    lines = cluster.entrypoint_lines(cluster.pods[0])[before:]
    assert any("member data found" in line for line in lines), lines
    assert not any("lobby" in line for line in lines), lines


@long_only
def test_a_member_of_a_first_sync_starting_late(cluster: StatefulSet) -> None:
    """The others wait in their lobbies until it is there too, then all bootstrap."""
    cluster.sync(3, wait=False)
    cluster.stop(cluster.pods[2])  # its pod is Pending (no node, no image yet)
    waiting_until(cluster, [0, 1], f"{cluster.pods[2].name} does not confirm it has no data")
    assert not bootstraps(cluster)
    cluster.restart(cluster.pods[2])
    cluster.wait_settled()
    assert len(cluster.cluster_ids()) == 1


@long_only
def test_a_sync_during_the_outage_does_not_pass_its_presync_hook(cluster: StatefulSet) -> None:
    """Two of three volumes lost: the PreSync resize hook finds a cluster that exists and does
    not answer, so it keeps retrying until it fails (activeDeadlineSeconds, or its retries):
    the sync never gets past PreSync, as a failing pre-upgrade hook stops `helm upgrade`."""
    cluster.sync(3)
    cluster.wait_settled()
    for pod in cluster.pods[1:3]:
        cluster.stop(pod)
    for pod in cluster.pods[1:3]:
        cluster.lose_volume(pod)
    (hook,) = argo_hooks(render(1, False), "PreSync")
    with pytest.raises(subprocess.TimeoutExpired) as still_running:
        cluster.run_job(hook, timeout=45)
    log = still_running.value.stderr or ""
    assert "nothing to resize" not in str(log), log


@long_only
@pytest.mark.timeout(1200)
def test_syncs_through_every_size_with_faults_under_load(cluster: StatefulSet) -> None:
    cluster.sync(1)
    cluster.wait_settled()
    with Load(cluster) as load:
        for size in (3, 5, 3, 1, 5):
            cluster.sync(size)
            cluster.wait_settled()
            load.mark(f"sync to {size}")
        for pod in cluster.pods[:5]:
            cluster.lose_volume(pod)
            cluster.wait_settled()
            load.mark(f"volume of {pod.ordinal} lost")
        cluster.restart_all()
        cluster.wait_settled()
        load.mark("all restarted")
        cluster.sync(3)
        cluster.wait_settled()
        load.mark("sync to 3")
    assert len(bootstraps(cluster)) == 1, bootstraps(cluster)

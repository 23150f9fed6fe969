"""ci/etcd-restore.sh, the one command after a total loss, on loopback: its etcd steps run
upstream etcd 3.5 (the chart's rendered entrypoint, backup and restore scripts, etcdutl), its
kubectl and helm calls go to kube_double.py (no cluster here; the cluster suite runs the same
command on Kubernetes: tests/cluster/test_etcd_restore.py). The real allocator takes numbers
before the loss and after the restore.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import ROOT

from .etcd_cluster import ETCD_BIN, FULLNAME, SHELL, StatefulSet, free_port_block, render
from .etcd_load import KEY, Load
from .k8s import named
from .kube_double import SOCKET, KubeDouble
from .subchart import ETCD

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

SCRIPT = ROOT / "ci" / "etcd-restore.sh"
MARGIN = 1_000_000
BACKUP = ["backup.enabled=true", "backup.keep=3", f"backup.restore.margin={MARGIN}"]


@dataclass
class Restore:
    """The script against `double`, and what the clients took."""

    double: KubeDouble
    cluster: StatefulSet
    socket: Path
    load: Load | None = None

    def run(self, *args: str, command: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        """`ci/etcd-restore.sh [command] -n NAMESPACE args... RELEASE`; etcdutl is on PATH, as
        on an operator's machine that has it (the script then checks local files with it)."""
        env = {
            "PATH": f"{ETCD_BIN}:/usr/bin:/bin", SOCKET: str(self.socket),
            "ETCD_RESTORE_KUBE": str(Path(__file__).parent / "kube_double.py"),
            "HOME": str(self.double.scratch),
        }  # fmt: skip
        return subprocess.run(
            ["bash", str(SCRIPT), *command, "-n", ETCD.namespace, *args, ETCD.release],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    def set_persistence(self, pods: int) -> None:
        """persistence's pods: the clients run while there are any."""
        if pods == 0 and self.load is not None:
            self.load.stop()
        elif pods > 0 and (self.load is None or self.load._stop.is_set()):
            self.load = Load(self.cluster)
            self.load.start()

    def take_backups(self, count: int) -> None:
        cronjob = named(render(3, True, *BACKUP), "CronJob", f"{FULLNAME}-backup")
        for _ in range(count):
            time.sleep(1)
            run = self.cluster.run_job(
                cronjob, BACKUP_DIR=str(self.double.backups),
                CLUSTER_ENDPOINTS=self.cluster.client_url(self.cluster.pods[0]),
            )  # fmt: skip
            assert run.returncode == 0, run.stderr


@pytest.fixture
def restore(make_cluster: Callable[[str], StatefulSet], tmp_path: Path) -> Iterator[Restore]:
    cluster = make_cluster("etcd")
    backups = tmp_path / "backup"
    backups.mkdir()
    port = free_port_block("127.0.0.1", 3)
    holder: list[Restore] = []

    def rendered(replicas: int, upgrade: bool, *sets: str) -> list[dict[str, Any]]:
        return render(replicas, upgrade, *BACKUP, *sets)

    double = KubeDouble(
        sts=cluster, backups=backups, scratch=tmp_path, render=rendered,
        set_persistence=lambda n: holder[0].set_persistence(n), release=ETCD.release,
        shell=SHELL, etcd_bin=ETCD_BIN, restore_port=port,
    )  # fmt: skip
    path = tmp_path / "kube.sock"
    server = double.serve(path)
    holder.append(Restore(double, cluster, path))
    try:
        yield holder[0]
    finally:
        if holder[0].load is not None:
            holder[0].load.stop()
        server.shutdown()


def numbers(load: Load | None) -> list[int]:
    assert load is not None
    return [n for per_client in load.numbers for n in per_client]


@pytest.mark.parametrize("damage", ["none taken", "latest missing", "corrupt", "named one missing"])
def test_refuses_to_start_without_a_snapshot_that_verifies(restore: Restore, damage: str) -> None:
    """Nothing changes: persistence keeps its pods, no volume goes, no upgrade runs."""
    backups = restore.double.backups
    args: list[str] = []
    if damage == "latest missing":
        (backups / "latest").write_text("snapshot-1.db\n")
    elif damage == "corrupt":
        (backups / "snapshot-0.db").write_bytes(b"\0not a snapshot" * 1000)
        (backups / "latest").write_text("snapshot-0.db\n")
    elif damage == "named one missing":
        args = ["--snapshot", "snapshot-2.db"]
    run = restore.run(*args)
    assert run.returncode != 0
    assert "refusing to start" in run.stderr, run.stderr
    if damage == "corrupt":
        assert "does not verify" in run.stderr
    assert restore.double.persistence == 2
    assert not any(call[0] == "helm" and call[1:2] == ["upgrade"] for call in restore.double.calls)
    assert not any(
        "delete" in call and "persistentvolumeclaim" in " ".join(call)
        for call in restore.double.calls
    )
    assert restore.double.configmaps == {}


def test_one_command_restores_the_counter_after_a_total_loss(
    restore: Restore, tmp_path: Path
) -> None:
    cluster = restore.cluster
    cluster.install(3)
    cluster.upgrade(3)  # an upgrade since the install: members without data join, never bootstrap
    cluster.wait_settled()
    restore.set_persistence(2)
    restore.take_backups(3)
    time.sleep(2)  # numbers handed out after the last snapshot, lost with the cluster
    volume = {p.name: p.read_bytes() for p in restore.double.backups.iterdir()}

    # The snapshots copied off the cluster are the volume's, byte for byte, and verify.
    off = tmp_path / "off"
    copied = restore.run(command=("copy-out", str(off)))
    assert copied.returncode == 0, copied.stderr
    latest = volume["latest"].decode().strip()
    assert (off / latest).read_bytes() == volume[latest]
    assert (off / "index").read_bytes() == volume["index"]
    assert sorted(p.name for p in off.glob("snapshot-*")) == [
        "snapshot-0.db",
        "snapshot-1.db",
        "snapshot-2.db",
    ]

    # Every member's volume lost; the pods come back empty and cannot start a cluster.
    cluster._scale(0)
    for pod in cluster.pods[:3]:
        if pod.pvc.exists():
            subprocess.run(["rm", "-rf", str(pod.pvc)], check=True)
    cluster._scale(3)
    time.sleep(3)
    assert cluster.read(KEY) is None

    # Fails after clearing one member's volume, then after the counter is back: each run
    # picks up where the last stopped.
    restore.double.fail_once = [f"persistentvolumeclaim/data-{FULLNAME}-1", "etcd.replicaCount=3"]
    started = time.monotonic()
    first = restore.run()
    took = [time.monotonic() - started]
    assert first.returncode != 0
    assert "injected failure" in first.stderr, first.stderr
    state = restore.double.configmaps[f"{FULLNAME}-restore-state"]
    assert state["phase"] == "stopped"
    assert state["snapshot"] == volume["latest"].decode().strip()
    assert restore.double.backups_suspended  # no backup may overwrite it meanwhile
    old = numbers(restore.load)  # the clients are stopped: nothing more before the loss
    second = restore.run()
    took.append(time.monotonic() - started - sum(took))
    assert second.returncode != 0
    assert "4. the upgrade that grows etcd failed" in second.stderr, second.stderr
    assert restore.double.configmaps[f"{FULLNAME}-restore-state"]["phase"] == "restored"
    restored = cluster.read(KEY)
    assert restored is not None
    assert max(old) < restored <= max(old) + MARGIN
    ids = cluster.cluster_ids()
    third = restore.run()
    took.append(time.monotonic() - started - sum(took))
    assert third.returncode == 0, third.stderr
    assert "resuming after 'restored'" in third.stderr
    assert cluster.cluster_ids() == ids  # the re-run grew the new cluster, never made another
    assert len(cluster.members()) == 3
    assert restore.double.configmaps == {}
    assert restore.double.pods == {}
    assert len(restore.double.restore_logs) == 1  # the counter was raised once

    # The snapshots are all there, and the backups run again.
    assert not restore.double.backups_suspended
    for name, content in volume.items():
        assert (restore.double.backups / name).read_bytes() == content, name
    assert not (restore.double.backups / "restore.db").exists()  # only --from-file writes one

    time.sleep(2)
    new = numbers(restore.load)
    assert new
    assert min(new) > max(old)
    print(
        f"\nrestore: {len(old)} numbers before the loss (highest {max(old)}), counter restored to"
        f" {restored}, {len(new)} after (lowest {min(new)}); the three runs took"
        f" {' / '.join(f'{t:.1f}' for t in took)} s"
    )

    # Run once more when all is well: nothing to do, nothing changes.
    restore.set_persistence(0)
    counter = cluster.read(KEY)
    again = restore.run()
    assert again.returncode == 0, again.stderr
    assert "nothing to restore" in again.stderr
    assert cluster.read(KEY) == counter
    assert restore.double.persistence == 2


def test_a_snapshot_from_off_the_cluster_is_checked_and_pinned(
    restore: Restore, tmp_path: Path
) -> None:
    """--from-file: a file that does not verify is refused; one that does is copied onto the
    backup volume byte for byte, as restore.db outside the backup ring (the restore stops at
    step 1 here, by an injected failure)."""
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 100)
    refused = restore.run("--from-file", str(bad))
    assert refused.returncode != 0
    assert "does not verify" in refused.stderr, refused.stderr
    assert not (restore.double.backups / "restore.db").exists()

    cluster = restore.cluster
    cluster.install(1)
    cluster.wait_settled()
    restore.set_persistence(1)
    restore.take_backups(1)
    restore.set_persistence(0)
    good = tmp_path / "kept-elsewhere.db"
    good.write_bytes((restore.double.backups / "snapshot-0.db").read_bytes())
    cluster._scale(0)
    restore.double.fail_once = [f"scale deployment {ETCD.release}-persistence"]
    run = restore.run("--from-file", str(good), "--persistence-replicas", "1")
    assert "injected failure" in run.stderr, run.stderr
    assert (restore.double.backups / "restore.db").read_bytes() == good.read_bytes()
    state = restore.double.configmaps[f"{FULLNAME}-restore-state"]
    assert state["snapshot"] == "restore.db"
    assert state["phase"] == "pinned"

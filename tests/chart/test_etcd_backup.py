"""The etcd subchart's backup, restore and defrag jobs, run as their pods run them (rendered
scripts, the image's tools only) against upstream etcd 3.5 members on loopback, with the
real allocator taking numbers throughout (etcd_cluster.py, etcd_load.py).
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .etcd_cluster import ETCD_BIN, FULLNAME, StatefulSet, free_port_block, post, render
from .etcd_load import KEY, Load
from .k8s import named

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

MARGIN = 1_000_000


def backup_values(*extra: str) -> list[str]:
    return ["backup.enabled=true", "backup.keep=2", f"backup.restore.margin={MARGIN}", *extra]


def test_backups_then_a_total_loss_then_restore(
    make_cluster: Callable[[str], StatefulSet], tmp_path: Path
) -> None:
    before = make_cluster("before")
    before.install(3)
    before.wait_settled()
    with Load(before) as load:
        backups = tmp_path / "backup"
        backups.mkdir()
        cronjob = named(render(3, True, *backup_values()), "CronJob", f"{FULLNAME}-backup")
        ready = before.client_url(before.pods[0])  # what the client Service picks
        for _ in range(3):
            time.sleep(1)
            run = before.run_job(cronjob, BACKUP_DIR=str(backups), CLUSTER_ENDPOINTS=ready)
            assert run.returncode == 0, run.stderr
        time.sleep(2)  # numbers handed out after the last snapshot, lost with the cluster

    # keep=2: a ring of two files; every snapshot verified and indexed.
    assert sorted(p.name for p in backups.glob("snapshot-*")) == ["snapshot-0.db", "snapshot-1.db"]
    index = (backups / "index").read_text().splitlines()
    assert [line.split()[:2] for line in index] == [
        ["0", "snapshot-0.db"], ["1", "snapshot-1.db"], ["2", "snapshot-0.db"]
    ]  # fmt: skip
    assert all(line.split()[3] == "ok" for line in index)
    latest = (backups / "latest").read_text().strip()
    assert latest == "snapshot-0.db"
    status = subprocess.run(
        [str(ETCD_BIN / "etcdutl"), "snapshot", "status", str(backups / latest)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    old = [n for numbers in load.numbers for n in numbers]

    # Total loss: every member and volume gone. The documented procedure: a new cluster
    # (clusterState=new), clients stopped, then the restore Job before clients come back.
    before.close()
    after = make_cluster("after")
    after.install(1)
    after.wait_settled()
    assert after.read(KEY) is None
    job = named(
        render(1, True, *backup_values("backup.restore.snapshot=latest")),
        "Job",
        f"{FULLNAME}-restore",
    )
    port = free_port_block("127.0.0.1", 3)
    extra = {
        "SNAPSHOT": str(backups / "latest"),  # the rendered /backup/latest, mounted here
        "SCRATCH": str(tmp_path),
        "RESTORE_PORT": str(port),
    }
    run = after.run_job(job, **extra)
    assert run.returncode == 0, run.stderr
    restored = after.read(KEY)
    assert restored is not None
    assert max(old) < restored <= max(old) + MARGIN
    # Run twice (a retried hook): the counter is already high enough and stays.
    again = after.run_job(job, **extra)
    assert again.returncode == 0, again.stderr
    assert "already at or above" in again.stderr
    assert after.read(KEY) == restored

    with Load(after) as load_after:
        time.sleep(2)
    new = [n for numbers in load_after.numbers for n in numbers]
    assert min(new) > max(old)  # nothing handed out before the loss comes again


def test_restore_says_at_once_when_its_private_etcd_cannot_start(
    make_cluster: Callable[[str], StatefulSet], tmp_path: Path
) -> None:
    # The script's private etcd listens on RESTORE_PORT and the two ports after it: with one of
    # them taken it exits at once, and the Job must fail saying why, not retry for a minute.
    cluster = make_cluster("taken")
    cluster.install(1)
    cluster.wait_settled()
    with Load(cluster):
        time.sleep(1)
    backups = tmp_path / "backup"
    backups.mkdir()
    cronjob = named(render(1, True, *backup_values()), "CronJob", f"{FULLNAME}-backup")
    ready = cluster.client_url(cluster.pods[0])  # what the client Service picks
    made = cluster.run_job(cronjob, BACKUP_DIR=str(backups), CLUSTER_ENDPOINTS=ready)
    assert made.returncode == 0, made.stderr
    job = named(
        render(1, True, *backup_values("backup.restore.snapshot=latest")),
        "Job",
        f"{FULLNAME}-restore",
    )
    port = free_port_block("127.0.0.1", 3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        run = cluster.run_job(
            job, timeout=60, SNAPSHOT=str(backups / "latest"), SCRATCH=str(tmp_path),
            RESTORE_PORT=str(port),
        )  # fmt: skip
    assert run.returncode == 1
    assert "the private etcd exited" in run.stderr
    assert "address already in use" in run.stderr


@pytest.mark.skipif(
    os.environ.get("ETCD_LONG") != "1", reason="long etcd scenario: make test-etcd-long"
)
def test_defrag_shrinks_every_member_under_load(make_cluster: Callable[[str], StatefulSet]) -> None:
    cluster = make_cluster("defrag")
    cluster.install(3)
    cluster.wait_settled()
    with Load(cluster):
        url = cluster.client_url(cluster.pods[0])
        # Fill, delete and compact: the space stays inside each member's file until a defrag.
        blob = base64.b64encode(b"x" * 4096).decode()
        for i in range(1500):
            key = base64.b64encode(f"/fill/{i}".encode()).decode()
            post(f"{url}/v3/kv/put", {"key": key, "value": blob}, timeout=5)
        prefix = base64.b64encode(b"/fill/").decode()
        end = base64.b64encode(b"/fill0").decode()
        deleted = post(f"{url}/v3/kv/deleterange", {"key": prefix, "range_end": end}, timeout=5)
        revision = deleted["header"]["revision"]
        post(f"{url}/v3/kv/compaction", {"revision": revision, "physical": True}, timeout=30)
        sizes = {p.ordinal: cluster.db_size(p) for p in cluster.pods[:3]}
        job = named(render(3, True, "defrag.enabled=true"), "CronJob", f"{FULLNAME}-defrag")
        run = cluster.run_job(job)
        assert run.returncode == 0, run.stderr
        assert run.stdout.count("Finished defragmenting etcd member") == 3, run.stdout
        shrunk = {p.ordinal: cluster.db_size(p) for p in cluster.pods[:3]}
    for ordinal, size in sizes.items():
        assert shrunk[ordinal] < size / 2, (sizes, shrunk)

"""Faults under constant load: no number lost twice, every error a JSON 502/503, quick recovery.

Each test drives hash (and through it persistence and etcd) with constant load, injects the
faults of issue 7 one after another and then judges the whole run: see timeline.problems().
The table of what was injected and seen is printed (pytest -s) and attached to the report.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request

import pytest

from localstack import EtcdMember, Service, etcd_cluster, start_etcd_cluster

from .load import Load
from .timeline import BOUND, Timeline


def report(request: pytest.FixtureRequest, timeline: Timeline) -> str:
    table = timeline.table()
    print(f"\n{request.node.name}\n{table}", flush=True)
    request.node.add_report_section("call", "faults injected and seen", table)
    return table


def verdict(timeline: Timeline, table: str, *services: Service) -> None:
    problems = timeline.problems()
    for service in services:
        # A 500 would show in the answers; this catches an exception swallowed on the way.
        if "unhandled error" in service.log_text() or "Traceback" in service.log_text():
            problems.append(f"{service.name}'s log has an unhandled error: {service.log_path}")
    assert not problems, "\n".join(["", *problems, "", table])


def test_persistence_and_etcd_faults(request, tmp_path, start_service, stop_members, intensity):
    (etcd,) = etcd_cluster(tmp_path / "etcd", size=1)
    stop_members.append(etcd)
    etcd.start()
    persistence = start_service("persistence", ETCD_ENDPOINTS=etcd.client_url, BLOCK_SIZE="20")
    hashing = start_service("hash", PERSISTENCE_URL=persistence.url)

    with Load(f"{hashing.url}/", callers=intensity.callers) as load:
        timeline = Timeline(load, bound=BOUND)
        load.wait_for(50)
        for _ in range(intensity.cycles):
            with timeline.inject("SIGKILL one persistence worker", intensity.observe):
                os.kill(persistence.worker_pids()[0], signal.SIGKILL)
            with timeline.inject(
                "SIGKILL persistence (master + workers), restart", intensity.observe
            ) as fault:
                persistence.kill()
                time.sleep(1.0)
                persistence.start()  # same port: hash keeps its PERSISTENCE_URL
                fault.mark_back()
            with timeline.inject("stop etcd for 5 s, start it", intensity.observe) as fault:
                etcd.stop()
                time.sleep(5.0)
                etcd.start()  # returns once etcd answers /health
                fault.mark_back()
            with timeline.inject(
                "SIGKILL etcd, restart on its data dir", intensity.observe
            ) as fault:
                etcd.kill()
                etcd.start()
                fault.mark_back()
    verdict(timeline, report(request, timeline), persistence, hashing)


def leader_of(members: list[EtcdMember]) -> EtcdMember:
    """The member that is the Raft leader now (etcd's JSON gateway: maintenance/status)."""
    for member in members:
        if not member.running:
            continue
        call = urllib.request.Request(
            f"{member.client_url}/v3/maintenance/status", data=b"{}", method="POST"
        )
        with urllib.request.urlopen(call, timeout=2) as response:
            status = json.load(response)
        if status["leader"] == status["header"]["member_id"]:
            return member
    raise AssertionError("no etcd member says it is the leader")


def test_losing_an_etcd_member_of_three(request, tmp_path, start_service, stop_members, intensity):
    members = etcd_cluster(tmp_path / "trio", size=3)
    stop_members.extend(members)
    start_etcd_cluster(members)
    endpoints = ",".join(member.client_url for member in members)
    persistence = start_service("persistence", ETCD_ENDPOINTS=endpoints, BLOCK_SIZE="20")
    hashing = start_service("hash", PERSISTENCE_URL=persistence.url)

    with Load(f"{hashing.url}/", callers=intensity.callers) as load:
        timeline = Timeline(load, bound=BOUND)
        load.wait_for(50)
        for cycle in range(intensity.cycles):
            # The leader is the harder loss: the others must elect a new one first.
            leader = leader_of(members)
            with timeline.inject(f"SIGKILL etcd leader {leader.name} of 3", intensity.observe):
                leader.kill()
            if cycle + 1 < intensity.cycles:
                with timeline.inject(f"restart {leader.name} on its data dir", intensity.observe):
                    leader.start()
    verdict(timeline, report(request, timeline), persistence, hashing)

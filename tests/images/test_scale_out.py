"""Scale-out under constant load, with the images: persistence replicas share one network alias
(podman's closest analogue of a headless Service: the name answers with every replica's address)
and hash calls that name. A replica added serves its fair share within 10 s of being ready, a
replica removed costs no error, and no number comes twice (docs/scaling.md).

Each replica's share comes from its own /metrics (hashstack_numbers_issued_total), the way the
cluster suite measures pods.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
import requests

from tests.faults.load import Load
from tests.support import podman as pm
from tests.support.measurements import record
from tests.support.numbers import issued_total

WINDOW = 10.0  # seconds after a replica is ready (or gone) in which the shares are measured
FAIR = (0.5, 1.5)  # every replica's share, as a multiple of the fair share


@dataclass
class Replica:
    name: str
    url: str  # published on loopback, for /readyz and /metrics

    def issued(self) -> float:
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        found = issued_total(text)
        return 0.0 if found is None else found


@dataclass
class Cluster:
    network: str
    image: str
    replicas: dict[str, Replica]
    containers: list[str]

    def add(self, role: str) -> Replica:
        name = pm.unique(f"hashstack-test-{role}")
        self.containers.append(name)
        pm.run_container(
            self.image, name, network=self.network, aliases=["persistence"],
            environment={
                "ETCD_ENDPOINTS": "http://etcd:2379",
                "COUNTER_KEY": "/hashstack-test/scale-counter",
                "BLOCK_SIZE": "20",
                "WEB_CONCURRENCY": "2",
            },
        )  # fmt: skip
        replica = Replica(name, pm.published_url(name))
        pm.wait_http(f"{replica.url}/readyz", name, timeout=60)
        self.replicas[role] = replica
        return replica

    def remove(self, role: str) -> None:
        # SIGTERM, as Kubernetes sends it: gunicorn finishes what it has in flight and exits.
        pm.podman("stop", "--time", "20", self.replicas.pop(role).name)


@pytest.fixture
def cluster(
    images: dict[str, str], test_images: dict[str, str], network: str, containers: list[str]
) -> Cluster:
    etcd = pm.unique("hashstack-test-etcd")
    containers.append(etcd)
    pm.run_container(
        test_images["etcd"], etcd, network=network, aliases=["etcd"], publish=False,
        environment={"ETCD_ADVERTISE_CLIENT_URLS": "http://etcd:2379"}, read_only=False,
    )  # fmt: skip
    return Cluster(network, images["persistence"], {}, containers)


def shares(cluster: Cluster, seconds: float) -> dict[str, float]:
    """Each replica's part of the numbers handed out over the next `seconds`."""
    before = {role: r.issued() for role, r in cluster.replicas.items()}
    time.sleep(seconds)
    served = {role: r.issued() - before[role] for role, r in cluster.replicas.items()}
    total = sum(served.values())
    assert total > 0, f"no numbers handed out in {seconds:.0f} s"
    return {role: n / total for role, n in served.items()}


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    lines = [f"{'after':<28} {'replica':<14} {'share':>6} {'x fair':>7}"]
    for moment, measured in rows:
        fair = 1 / len(measured)
        for role, share in sorted(measured.items()):
            lines.append(f"{moment:<28} {role:<14} {share:>6.1%} {share / fair:>7.2f}")
    return "\n".join(lines)


def test_replicas_added_and_removed_under_load_share_the_calls(
    cluster: Cluster, images: dict[str, str], containers: list[str]
) -> None:
    cluster.add("persistence-1")
    cluster.add("persistence-2")
    hashing = pm.unique("hashstack-test-hash")
    containers.append(hashing)
    pm.run_container(
        images["hash"], hashing, network=cluster.network,
        environment={"PERSISTENCE_URL": "http://persistence:8080", "REQUEST_TIMEOUT": "1",
                     "WEB_CONCURRENCY": "2"},
    )  # fmt: skip
    url = pm.published_url(hashing)
    pm.wait_http(f"{url}/", hashing, timeout=60)

    rows: list[tuple[str, dict[str, float]]] = []
    with Load(f"{url}/", callers=6) as load:
        load.wait_for(100)
        rows.append(("2 replicas", shares(cluster, WINDOW / 2)))
        cluster.add("persistence-3")  # returns once its /readyz answers 200
        rows.append(("persistence-3 ready", shares(cluster, WINDOW)))
        cluster.remove("persistence-1")
        rows.append(("persistence-1 stopped", shares(cluster, WINDOW)))

    report = table(rows)
    bad = [a for a in load.answers if a.kind != "ok"]
    numbers = sum(1 for a in load.answers if a.number)
    summary = f"{len(load.answers)} answers, {len(bad)} errors, {len(load.duplicates())} duplicates"
    print(f"\n{report}\n{summary}")
    record("scale-out under load: shares", "\n" + report)
    record("scale-out under load: answers", summary)

    assert numbers > 0
    assert not bad, (summary, sorted({(a.kind, a.body[:120]) for a in bad}))
    assert not load.duplicates(), summary
    for moment, measured in rows:
        fair = 1 / len(measured)
        for role, share in measured.items():
            assert FAIR[0] <= share / fair <= FAIR[1], (f"{role} {moment}", report)

"""The etcd subchart rendered standalone by real helm, and its entrypoint run against real etcd.

Every values set renders once (cached); the live tests start etcd members on 127.0.0.1.
Schema, lint and Kubernetes-schema checks: test_subcharts.py, with the registry's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.pods import assert_restricted
from tests.support.stack import Supervised, held_port

from .k8s import named
from .subchart import ETCD, env_of
from .subchart import ETCD_TLS as TLS

RELEASE, NAMESPACE = ETCD.release, ETCD.namespace
render, template = ETCD.render, ETCD.template
HEADLESS = f"{RELEASE}-etcd-headless"
SELECTOR = {"app.kubernetes.io/name": "etcd", "app.kubernetes.io/instance": RELEASE}


def statefulset(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return named(render(values), "StatefulSet", f"{RELEASE}-etcd")


def etcd_container(values: dict[str, Any] | None = None) -> dict[str, Any]:
    (container,) = statefulset(values)["spec"]["template"]["spec"]["containers"]
    return container


def member_host(i: int) -> str:
    return f"{RELEASE}-etcd-{i}.{HEADLESS}.{NAMESPACE}.svc.cluster.local"


# --- the cluster's shape -------------------------------------------------------------


@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_initial_cluster_names_every_member_through_the_headless_service(replicas: int) -> None:
    sts = statefulset({"replicaCount": replicas})
    env = env_of(etcd_container({"replicaCount": replicas}))
    assert sts["spec"]["replicas"] == replicas
    expected = [f"{RELEASE}-etcd-{i}=http://{member_host(i)}:2380" for i in range(replicas)]
    assert env["ETCD_INITIAL_CLUSTER"].split(",") == expected
    assert env["MEMBER_CLIENT_URLS"].split(",") == [
        f"http://{member_host(i)}:2379" for i in range(replicas)
    ]
    # Each member advertises the URL the initial cluster has for it: the pod's name
    # (= StatefulSet name + ordinal) under the StatefulSet's serviceName.
    assert sts["spec"]["serviceName"] == HEADLESS
    assert env["ETCD_NAME"] == "$(POD_NAME)"
    peer = f"http://$(POD_NAME).{HEADLESS}.{NAMESPACE}.svc.cluster.local:2380"
    assert env["ETCD_INITIAL_ADVERTISE_PEER_URLS"] == peer
    assert env["ETCD_INITIAL_CLUSTER_STATE"] == "new"
    assert env["ETCD_INITIAL_CLUSTER_TOKEN"] == f"{RELEASE}-etcd"


def test_statefulset_and_services() -> None:
    objects = render({"replicaCount": 3})
    sts = named(objects, "StatefulSet", f"{RELEASE}-etcd")
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["selector"] == {"matchLabels": SELECTOR}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    headless = named(objects, "Service", HEADLESS)["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    assert headless["selector"] == SELECTOR
    assert {(p["name"], p["port"]) for p in headless["ports"]} == {("peer", 2380), ("client", 2379)}
    client = named(objects, "Service", f"{RELEASE}-etcd")["spec"]
    assert client["selector"] == SELECTOR
    assert [(p["name"], p["port"], p["targetPort"]) for p in client["ports"]] == [
        ("client", 2379, "client")
    ]
    ports = {p["name"]: p["containerPort"] for p in etcd_container({"replicaCount": 3})["ports"]}
    assert ports == {"client": 2379, "peer": 2380, "metrics": 2381}
    pdb = named(objects, "PodDisruptionBudget", f"{RELEASE}-etcd")["spec"]
    assert pdb == {"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR}}


def test_labels_and_selectors() -> None:
    objects = render()
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/part-of"] == "hashstack"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "etcd-0.1.0"
        assert labels["app.kubernetes.io/version"] == "3.5.21"
        assert labels["app.kubernetes.io/component"]
    pod_labels = statefulset()["spec"]["template"]["metadata"]["labels"]
    assert SELECTOR.items() <= pod_labels.items()
    # The test pod must never be picked by the client Service or counted by the PDB.
    hook = named(objects, "Pod", f"{RELEASE}-etcd-test-health")
    assert hook["metadata"]["labels"]["app.kubernetes.io/name"] != "etcd"


def test_anti_affinity_is_soft_by_default_and_can_be_hard() -> None:
    def anti(values: dict[str, Any]) -> dict[str, Any]:
        return statefulset(values)["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]

    (soft,) = anti({})["preferredDuringSchedulingIgnoredDuringExecution"]
    assert soft["podAffinityTerm"]["labelSelector"] == {"matchLabels": SELECTOR}
    assert soft["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    (hard,) = anti({"podAntiAffinity": "hard"})["requiredDuringSchedulingIgnoredDuringExecution"]
    assert hard["labelSelector"] == {"matchLabels": SELECTOR}
    spec = statefulset({"podAntiAffinity": "none"})["spec"]["template"]["spec"]
    assert "affinity" not in spec


def test_auto_compaction_and_image() -> None:
    container = etcd_container({"autoCompaction": {"mode": "revision", "retention": "1000"}})
    env = env_of(container)
    assert (env["ETCD_AUTO_COMPACTION_MODE"], env["ETCD_AUTO_COMPACTION_RETENTION"]) == (
        "revision",
        "1000",
    )
    assert env_of(etcd_container())["ETCD_AUTO_COMPACTION_MODE"] == "periodic"
    assert container["image"] == "registry.k8s.io/etcd:3.5.21-0"
    digest = "sha256:" + "a" * 64
    pinned = etcd_container(
        {"global": {"imageRegistry": "mirror.example/"}, "image": {"digest": digest}}
    )
    assert pinned["image"] == f"mirror.example/etcd:3.5.21-0@{digest}"


def test_probes_use_the_health_endpoint_on_the_metrics_port() -> None:
    container = etcd_container()
    assert env_of(container)["ETCD_LISTEN_METRICS_URLS"] == "http://0.0.0.0:2381"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == "metrics"
        assert get["path"].startswith("/health")
    # Liveness looks at this member only, so losing quorum does not restart everyone.
    assert "serializable=true" in container["livenessProbe"]["httpGet"]["path"]
    assert "serializable=false" in container["readinessProbe"]["httpGet"]["path"]


# --- upgrade safety ----------------------------------------------------------------


def immutable(values: dict[str, Any]) -> tuple[Any, ...]:
    spec = statefulset(values)["spec"]
    return spec["selector"], spec["serviceName"], spec["volumeClaimTemplates"]


@pytest.mark.parametrize(
    "changed",
    [
        {"replicaCount": 3},
        {"image": {"tag": "3.5.22-0"}},
        {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
        {"tls": {"enabled": True, "existingSecret": "etcd-certs"}},
        {"autoCompaction": {"mode": "revision", "retention": "500"}},
    ],
    ids=["replicas", "image", "resources", "tls", "compaction"],
)
def test_immutable_fields_survive_upgrades(changed: dict[str, Any]) -> None:
    assert immutable(changed) == immutable({})


def test_volume_claim_templates() -> None:
    (claim,) = statefulset()["spec"]["volumeClaimTemplates"]
    assert claim["metadata"] == {"name": "data", "labels": SELECTOR}
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    (sized,) = statefulset({"persistence": {"size": "8Gi", "storageClass": "fast"}})["spec"][
        "volumeClaimTemplates"
    ]
    assert sized["spec"]["storageClassName"] == "fast"
    assert sized["spec"]["resources"]["requests"]["storage"] == "8Gi"
    (static,) = statefulset({"persistence": {"storageClass": "-"}})["spec"]["volumeClaimTemplates"]
    assert static["spec"]["storageClassName"] == ""
    ephemeral = statefulset({"persistence": {"enabled": False}})["spec"]
    assert "volumeClaimTemplates" not in ephemeral
    volumes = {v["name"]: v for v in ephemeral["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}


def test_checksum_annotation_follows_the_entrypoint() -> None:
    annotations = statefulset()["spec"]["template"]["metadata"]["annotations"]
    script = named(render(), "ConfigMap", f"{RELEASE}-etcd-scripts")["data"]["entrypoint.sh"]
    assert annotations["checksum/scripts"] == hashlib.sha256(script.encode()).hexdigest()


# --- security --------------------------------------------------------------------------


def test_pods_are_restricted() -> None:
    objects = render(TLS)
    sts_pod = named(objects, "StatefulSet", f"{RELEASE}-etcd")["spec"]["template"]["spec"]
    assert_restricted(sts_pod)
    assert sts_pod["securityContext"]["fsGroup"] == 10001
    assert_restricted(named(objects, "Pod", f"{RELEASE}-etcd-test-health")["spec"])
    account = named(objects, "ServiceAccount", f"{RELEASE}-etcd")
    assert account["automountServiceAccountToken"] is False
    assert sts_pod["serviceAccountName"] == f"{RELEASE}-etcd"


def test_data_dir_is_on_the_volume() -> None:
    container = etcd_container()
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env_of(container)["ETCD_DATA_DIR"].startswith(mounts["data"] + "/")
    assert container["command"] == ["/bin/sh", "/scripts/entrypoint.sh"]
    assert mounts["scripts"] == "/scripts"


def test_client_tls_from_an_existing_secret() -> None:
    objects = render(TLS)
    pod = named(objects, "StatefulSet", f"{RELEASE}-etcd")["spec"]["template"]["spec"]
    env = env_of(pod["containers"][0])
    assert env["ETCD_LISTEN_CLIENT_URLS"] == "https://0.0.0.0:2379"
    assert env["ETCD_ADVERTISE_CLIENT_URLS"].startswith("https://")
    assert all(u.startswith("https://") for u in env["MEMBER_CLIENT_URLS"].split(","))
    assert env["ETCD_INITIAL_ADVERTISE_PEER_URLS"].startswith("http://")  # peers: plain
    assert env["ETCD_CLIENT_CERT_AUTH"] == "true"
    for key in ("ETCD_CERT_FILE", "ETCD_KEY_FILE", "ETCD_TRUSTED_CA_FILE", "ETCDCTL_CERT"):
        assert env[key].startswith("/etc/etcd/tls/")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "etcd-certs"
    hook = named(objects, "Pod", f"{RELEASE}-etcd-test-health")
    assert f"--endpoints=https://{RELEASE}-etcd:2379" in hook["spec"]["containers"][0]["command"]
    assert env_of(hook["spec"]["containers"][0])["ETCDCTL_CACERT"] == "/etc/etcd/tls/ca.crt"
    missing = template({"tls": {"enabled": True}})
    assert missing.returncode != 0
    assert "etcd.tls.existingSecret" in missing.stderr


def test_helm_test_hook_checks_cluster_health_with_the_etcd_image() -> None:
    objects = render({"replicaCount": 3})
    hook = named(objects, "Pod", f"{RELEASE}-etcd-test-health")
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = hook["spec"]["containers"]
    assert container["image"] == etcd_container()["image"]
    assert container["command"][0] == "etcdctl"
    assert container["command"][-3:] == ["endpoint", "health", "--cluster"]
    assert hook["spec"]["restartPolicy"] == "Never"
    assert not any(o["kind"] == "Pod" for o in render({"tests": {"enabled": False}}))


def test_network_policy_allows_peer_traffic_between_members_only() -> None:
    objects = render()
    policy = named(objects, "NetworkPolicy", f"{RELEASE}-etcd")["spec"]
    assert policy["podSelector"] == {"matchLabels": SELECTOR}
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    peer_rules = [r for r in policy["ingress"] if {"port": 2380, "protocol": "TCP"} in r["ports"]]
    assert [r["from"] for r in peer_rules] == [[{"podSelector": {"matchLabels": SELECTOR}}]]
    extra = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "persistence"}}}
    widened = named(
        render({"networkPolicy": {"extraIngress": [extra]}}), "NetworkPolicy", f"{RELEASE}-etcd"
    )
    client_from = [p for r in widened["spec"]["ingress"] for p in r["from"]]
    assert extra in client_from
    assert not any(
        o["kind"] == "NetworkPolicy" for o in render({"networkPolicy": {"enabled": False}})
    )


# --- the entrypoint --------------------------------------------------------------------


def test_entrypoint_is_shellcheck_clean() -> None:
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (ci/install-deps.sh installs it)")
    script = named(render(), "ConfigMap", f"{RELEASE}-etcd-scripts")["data"]["entrypoint.sh"]
    result = subprocess.run(
        ["shellcheck", "-s", "sh", "-"], input=script, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


class Member(Supervised):
    """One member run like the pod runs it: the rendered entrypoint with the pod's ETCD_*
    variables, except that the URLs point at 127.0.0.1 ports instead of pod DNS names."""

    def __init__(self, index: int, ports: tuple[int, int, int], workdir: Path) -> None:
        name = f"{RELEASE}-etcd-{index}"
        super().__init__(name, workdir / f"{name}.log")
        self.client, self.peer, self.metrics = ports
        self.data = workdir / self.name / "data"

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer}"

    def env(self, members: list[Member], base: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in base.items() if k.startswith("ETCD_") or k == "MEMBER_CLIENT_URLS"}
        env.update(
            ETCD_NAME=self.name,
            ETCD_DATA_DIR=str(self.data),
            ETCD_LISTEN_PEER_URLS=self.peer_url,
            ETCD_LISTEN_CLIENT_URLS=self.client_url,
            ETCD_LISTEN_METRICS_URLS=f"http://127.0.0.1:{self.metrics}",
            ETCD_INITIAL_ADVERTISE_PEER_URLS=self.peer_url,
            ETCD_ADVERTISE_CLIENT_URLS=self.client_url,
            ETCD_INITIAL_CLUSTER=",".join(f"{m.name}={m.peer_url}" for m in members),
            MEMBER_CLIENT_URLS=",".join(m.client_url for m in members),
            ETCD_HEARTBEAT_INTERVAL="50",
            ETCD_ELECTION_TIMEOUT="500",
        )
        return {"PATH": os.environ["PATH"], "HOME": str(self.data.parent), **env}

    def start(self, script: Path, env: dict[str, str]) -> None:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        # The image's /bin/sh is bash; --posix is how bash runs as sh.
        self.spawn(["bash", "--posix", str(script)], env)

    def entrypoint_lines(self) -> list[str]:
        text = self.log_text()
        return [line for line in text.splitlines() if line.startswith("entrypoint:")]


def etcdctl(*args: str, endpoints: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["etcdctl", f"--endpoints={endpoints}", "--dial-timeout=2s", "--command-timeout=5s", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, "ETCDCTL_API": "3"},
    )  # fmt: skip


class Cluster:
    """Members plus a tiny kubelet: a member whose entrypoint exits is started again."""

    def __init__(self, script: Path, base_env: dict[str, str], workdir: Path, size: int) -> None:
        ports = [held_port() for _ in range(3 * size)]
        self.members = [Member(i, tuple(ports[3 * i : 3 * i + 3]), workdir) for i in range(size)]  # type: ignore[arg-type]
        self.script = script
        self.base_env = base_env

    def start(self, member: Member, group: list[Member]) -> None:
        member.start(self.script, member.env(group, self.base_env))

    def healthy(self, member: Member, group: list[Member], deadline: float = 60) -> None:
        """Wait until `member` answers a linearizable health check, restarting its
        entrypoint whenever it exits (as the kubelet would)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if etcdctl("endpoint", "health", endpoints=member.client_url).returncode == 0:
                return
            if member.process is not None and not member.running:
                time.sleep(1)
                self.start(member, group)
            time.sleep(0.5)
        raise AssertionError(f"{member.name} never became healthy:\n{member.log_text()}")

    def member_list(self, endpoints: str) -> list[list[str]]:
        result = etcdctl("member", "list", endpoints=endpoints)
        assert result.returncode == 0, result.stderr
        return [[f.strip() for f in line.split(",")] for line in result.stdout.splitlines()]

    def stop(self) -> None:
        for member in self.members:
            member.stop()


@pytest.fixture
def entrypoint_cluster(tmp_path: Path):
    if not (shutil.which("etcd") and shutil.which("etcdctl") and shutil.which("bash")):
        pytest.skip("etcd and etcdctl are not installed (ci/install-deps.sh installs them)")
    objects = render({"replicaCount": 3})
    script = tmp_path / "entrypoint.sh"
    script.write_text(
        named(objects, "ConfigMap", f"{RELEASE}-etcd-scripts")["data"]["entrypoint.sh"]
    )
    base_env = env_of(etcd_container({"replicaCount": 3}))
    clusters: list[Cluster] = []

    def make(size: int) -> Cluster:
        cluster = Cluster(script, base_env, tmp_path, size)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()


@pytest.mark.slow
def test_entrypoint_bootstraps_then_a_member_with_a_fresh_volume_rejoins(
    entrypoint_cluster,
) -> None:
    cluster = entrypoint_cluster(3)
    members = cluster.members
    endpoints = ",".join(m.client_url for m in members)
    for member in members:  # Parallel pod management: all at once
        cluster.start(member, members)
    for member in members:
        cluster.healthy(member, members)
    for member in members:
        assert any("bootstrapping" in line for line in member.entrypoint_lines())
    assert etcdctl("put", "/hashstack/counter", "42", endpoints=endpoints).returncode == 0
    before = {row[2]: row[0] for row in cluster.member_list(endpoints)}
    assert set(before) == {m.name for m in members}

    # A restart with its data: etcd rejoins with it, no membership change.
    lost = members[2]
    lost.stop()
    cluster.start(lost, members)
    cluster.healthy(lost, members)
    assert "member data found" in lost.entrypoint_lines()[-1]
    assert {row[2]: row[0] for row in cluster.member_list(endpoints)} == before

    # A fresh volume (PVC deleted, node lost): the member is replaced and catches up.
    lost.stop()
    shutil.rmtree(lost.data)
    cluster.start(lost, members)
    cluster.healthy(lost, members)
    lines = lost.entrypoint_lines()
    assert any("has no data now: replacing the member" in line for line in lines), lines
    assert any("joining the running cluster" in line for line in lines), lines
    after = {row[2]: (row[0], row[1]) for row in cluster.member_list(endpoints)}
    assert set(after) == set(before)
    assert all(status == "started" for _, status in after.values())
    assert after[lost.name][0] != before[lost.name]  # a new member ID
    assert after[members[0].name][0] == before[members[0].name]
    got = etcdctl(
        "get",
        "/hashstack/counter",
        "--print-value-only",
        "--consistency=s",
        endpoints=lost.client_url,
    )
    assert got.stdout.strip() == "42"


@pytest.mark.slow
def test_entrypoint_adds_members_when_scaled_up(entrypoint_cluster) -> None:
    cluster = entrypoint_cluster(3)
    first, *new = cluster.members
    cluster.start(first, [first])  # replicaCount: 1
    cluster.healthy(first, [first])
    assert etcdctl("put", "k", "v", endpoints=first.client_url).returncode == 0
    # helm upgrade --set replicaCount=3: ordinal 0 keeps its data, 1 and 2 are new.
    for member in new:
        cluster.start(member, cluster.members)
        cluster.healthy(member, cluster.members, deadline=90)
        assert any("adding" in line for line in member.entrypoint_lines())
    rows = cluster.member_list(first.client_url)
    assert sorted(row[2] for row in rows) == sorted(m.name for m in cluster.members)
    assert all(row[1] == "started" for row in rows)
    got = etcdctl("get", "k", "--print-value-only", "--consistency=s", endpoints=new[-1].client_url)
    assert got.stdout.strip() == "v"

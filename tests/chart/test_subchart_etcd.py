"""The etcd subchart rendered standalone by real helm, and its entrypoint run against real etcd.

Every values set renders once (cached); the live tests start etcd members on 127.0.0.1.
Schema, lint and Kubernetes-schema checks: test_subcharts.py, with the registry's.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from typing import Any

import pytest

from tests.support.pods import assert_restricted

from .k8s import named
from .rendering import CHART_VERSION, installed_helms, parse_docs, run_helm
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
def test_the_pod_template_never_depends_on_the_member_count(replicas: int) -> None:
    """Scaling changes spec.replicas and nothing else: no running member restarts."""
    sts = statefulset({"replicaCount": replicas})
    assert sts["spec"]["replicas"] == replicas
    assert sts["spec"]["template"] == statefulset({"replicaCount": 1})["spec"]["template"]
    env = env_of(etcd_container({"replicaCount": replicas}))
    assert sts["spec"]["serviceName"] == HEADLESS
    assert env["ETCD_NAME"] == "$(POD_NAME)"
    peer = f"http://$(POD_NAME).{HEADLESS}.{NAMESPACE}.svc.cluster.local:2380"
    assert env["ETCD_INITIAL_ADVERTISE_PEER_URLS"] == peer
    assert env["MEMBER_PEER_URL_PATTERN"] == peer.replace("$(POD_NAME)", "@NAME@")
    assert env["CLUSTER_ENDPOINTS"] == f"http://{RELEASE}-etcd.{NAMESPACE}.svc.cluster.local:2379"
    assert env["ETCD_INITIAL_CLUSTER_TOKEN"] == f"{RELEASE}-etcd"
    assert "ETCD_INITIAL_CLUSTER" not in env
    assert "ETCD_INITIAL_CLUSTER_STATE" not in env
    for name, key in (("CLUSTER_STATE", "state"), ("BOOTSTRAP_MEMBERS", "bootstrap-members")):
        assert env[name] == {"configMapKeyRef": {"name": f"{RELEASE}-etcd-cluster", "key": key}}


def test_cluster_state_is_decided_at_runtime_unless_an_upgrade_or_overridden() -> None:
    """helm install and `helm template` (Argo CD, every sync) render state auto: the members
    decide from their peers. A real helm upgrade renders existing; clusterState overrides."""

    def cluster_config(*args: str) -> dict[str, str]:
        result = run_helm(
            installed_helms()["helm"], "template", RELEASE, str(ETCD.chart), "--namespace",
            NAMESPACE, "--set", "replicaCount=3", *args,
        )  # fmt: skip
        config = named(parse_docs(result.stdout), "ConfigMap", f"{RELEASE}-etcd-cluster")
        data: dict[str, str] = config["data"]
        return data

    assert cluster_config() == {"state": "auto", "bootstrap-members": "3"}
    assert cluster_config("--is-upgrade")["state"] == "existing"
    assert cluster_config("--set", "clusterState=existing")["state"] == "existing"
    assert cluster_config("--set", "clusterState=new")["state"] == "new"


def test_backup_and_defrag_are_off_by_default_and_restricted_when_on() -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in render()}
    assert ("CronJob", f"{RELEASE}-etcd-backup") not in kinds
    assert ("CronJob", f"{RELEASE}-etcd-defrag") not in kinds
    objects = render({"backup": {"enabled": True, "keep": 3}, "defrag": {"enabled": True}})
    claim = named(objects, "PersistentVolumeClaim", f"{RELEASE}-etcd-backup")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for name in ("backup", "defrag"):
        pod = named(objects, "CronJob", f"{RELEASE}-etcd-{name}")["spec"]["jobTemplate"]["spec"]
        assert_restricted(pod["template"]["spec"])
    backup = named(objects, "CronJob", f"{RELEASE}-etcd-backup")["spec"]["jobTemplate"]["spec"]
    spec = backup["template"]["spec"]
    assert env_of(spec["containers"][0])["KEEP"] == "3"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["backup"]["persistentVolumeClaim"]["claimName"] == f"{RELEASE}-etcd-backup"
    assert not any(o["kind"] == "Job" and "restore" in o["metadata"]["name"] for o in objects)

    nfs = {"nfs": {"server": "nas", "path": "/etcd"}}
    objects = render({"backup": {"enabled": True, "volume": nfs}})
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    cron = named(objects, "CronJob", f"{RELEASE}-etcd-backup")["spec"]["jobTemplate"]["spec"]
    volumes = {v["name"]: v for v in cron["template"]["spec"]["volumes"]}
    assert volumes["backup"] == {"name": "backup", **nfs}
    restore = {
        "backup": {
            "enabled": True,
            "existingClaim": "mine",
            "restore": {"snapshot": "snapshot-1.db"},
        }
    }
    job = named(render(restore), "Job", f"{RELEASE}-etcd-restore")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    env = env_of(job["spec"]["template"]["spec"]["containers"][0])
    assert env["SNAPSHOT"] == "/backup/snapshot-1.db"
    assert env["MARGIN"] == "1000000000"
    bad = template({"backup": {"enabled": True, "restore": {"snapshot": "../../etc/passwd"}}})
    assert bad.returncode != 0


def test_resize_hook_runs_before_upgrades_and_rollbacks() -> None:
    job = named(render({"replicaCount": 3}), "Job", f"{RELEASE}-etcd-resize")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-upgrade,pre-rollback"
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "etcd-job"
    assert_restricted(pod["spec"])
    (container,) = pod["spec"]["containers"]
    files = ETCD.chart / "files"
    script = f"{(files / 'lib.sh').read_text()}\n{(files / 'resize.sh').read_text()}"
    assert container["command"] == ["/bin/sh", "-c", script, "resize"]
    env = env_of(container)
    assert env["REPLICAS"] == "3"
    member = env_of(etcd_container())
    for name in ("SIZE_KEY", "MEMBER_PEER_URL_PATTERN", "MEMBER_LOBBY_URL_PATTERN"):
        assert env[name] == member[name]
    # Under Argo CD it runs (PreSync) before the chart's ServiceAccount exists.
    assert pod["spec"]["serviceAccountName"] == "default"
    own = {"serviceAccount": {"create": False, "name": "runner"}}
    own_job = named(render(own), "Job", f"{RELEASE}-etcd-resize")
    assert own_job["spec"]["template"]["spec"]["serviceAccountName"] == "runner"
    # A deliberate new cluster (restore after a total loss): nothing runs to resize.
    assert not [o for o in render({"clusterState": "new"}) if o["kind"] == "Job"]
    assert not [o for o in render({"resize": {"enabled": False}}) if o["kind"] == "Job"]


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
    assert {(p["name"], p["port"]) for p in headless["ports"]} == {
        ("peer", 2380),
        ("client", 2379),
        ("lobby", 2382),
    }
    client = named(objects, "Service", f"{RELEASE}-etcd")["spec"]
    assert client["selector"] == SELECTOR
    assert [(p["name"], p["port"], p["targetPort"]) for p in client["ports"]] == [
        ("client", 2379, "client")
    ]
    ports = {p["name"]: p["containerPort"] for p in etcd_container({"replicaCount": 3})["ports"]}
    assert ports == {"client": 2379, "peer": 2380, "metrics": 2381, "lobby": 2382}
    pdb = named(objects, "PodDisruptionBudget", f"{RELEASE}-etcd")["spec"]
    assert pdb == {"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR}}


def test_labels_and_selectors() -> None:
    objects = render()
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/part-of"] == "hashstack"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == f"etcd-{CHART_VERSION}"
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
    assert env["CLUSTER_ENDPOINTS"].startswith("https://")
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


@pytest.mark.parametrize(
    "name", ["lib.sh", "entrypoint.sh", "resize.sh", "backup.sh", "restore-counter.sh", "defrag.sh"]
)
def test_scripts_are_shellcheck_clean(name: str) -> None:
    """Checked as bash: the image's /bin/sh is a static bash."""
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (ci/install-deps.sh installs it)")
    script = (ETCD.chart / "files" / name).read_text()
    result = subprocess.run(
        ["shellcheck", "-s", "bash", "-"], input=script, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout

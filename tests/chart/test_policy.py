"""Policy checks over the rendered objects of every ci values file (Helm 4 render)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from hashstack.config import Settings
from tests.support.pods import restricted_problems

from .k8s import OUTSIDE, Edge, Pod, PolicyModel, by_kind, named, pods, selector_matches
from .rendering import APP_VERSION, CHART, CI_VALUES, RELEASE, RenderFn, values_of

SERVICES = ("hello", "persistence", "hash")
LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
VERSION_LABELS = ("app.kubernetes.io/version", "helm.sh/chart")
REGISTRY_VALUES = CHART / "charts" / "registry" / "values.yaml"


def _fail_if(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


def _hostport_exception(pod: Pod, values: dict[str, Any]) -> bool:
    """The one stated exception to "restricted": the registry's node proxy binds a
    hostPort (registry.proxy.hostPort) so every node can pull localhost:5000/..."""
    registry = values.get("registry", {})
    return (
        pod.name == f"DaemonSet/{RELEASE}-registry-proxy"
        and registry.get("enabled", True)
        and registry.get("proxy", {}).get("enabled", True)
    )


@pytest.mark.parametrize("values", CI_VALUES)
def test_every_pod_is_restricted(values: str, render: RenderFn) -> None:
    """Pod Security "restricted" plus a read-only root filesystem, test hooks and subcharts
    included; hostPort only on the registry proxy."""
    merged = values_of(values)
    problems = []
    rendered = list(pods(render(values)))
    assert any(p.hook for p in rendered), "the helm test pods are checked too"
    for pod in rendered:
        proxy = merged.get("registry", {}).get("proxy", {})
        ports = (int(proxy.get("hostPort", 5000)),) if _hostport_exception(pod, merged) else ()
        problems += restricted_problems(pod.spec, pod.name, ports)
    _fail_if(problems)


def test_the_hostport_exception_is_stated_in_values(render: RenderFn) -> None:
    text = REGISTRY_VALUES.read_text()
    assert "POD SECURITY EXCEPTION" in text
    assert "hostPort:" in text.split("POD SECURITY EXCEPTION", 1)[1].split("\n\n", 1)[0]
    proxy = named(render("default"), "DaemonSet", f"{RELEASE}-registry-proxy")
    ports = [p for c in proxy["spec"]["template"]["spec"]["containers"] for p in c["ports"]]
    assert [p["hostPort"] for p in ports if "hostPort" in p] == [5000]
    # Turning the proxy off removes the only exception.
    assert not [p for p in pods(render("minimal")) for port in p.ports() if port.get("hostPort")]


@pytest.mark.parametrize("values", CI_VALUES)
def test_probes_and_resources(values: str, render: RenderFn) -> None:
    """Probes on every long-running container (test hooks run once and have none);
    requests and a memory limit on every container, init and test containers included."""
    problems = []
    for pod in pods(render(values)):
        for c in pod.containers():
            at = f"{pod.name} container {c['name']}"
            resources = c.get("resources", {})
            for need in ("cpu", "memory"):
                if need not in resources.get("requests", {}):
                    problems.append(f"{at}: no {need} request")
            if "memory" not in resources.get("limits", {}):
                problems.append(f"{at}: no memory limit")
        if pod.hook:
            continue
        for c in pod.containers(init=False):
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    problems.append(f"{pod.name} container {c['name']}: no {probe}")
    _fail_if(problems)


@pytest.mark.parametrize("values", CI_VALUES)
def test_service_probes_use_healthz_and_readyz(values: str, render: RenderFn) -> None:
    """Liveness never asks a dependency. persistence's readiness follows etcd (/readyz); hash
    asks persistence (/readyz) only to start, then stays ready on /healthz, so no outage
    behind it can take hash out of its Service (docs/readiness.md)."""
    objects = render(values)
    merged = values_of(values)
    paths = {  # (startup, liveness, readiness)
        "hello": ("/healthz", "/healthz", "/readyz"),
        "persistence": ("/healthz", "/healthz", "/readyz"),
        "hash": ("/readyz", "/healthz", "/healthz"),
    }
    for service in SERVICES:
        deployment = named(objects, "Deployment", f"{RELEASE}-{service}")
        c = deployment["spec"]["template"]["spec"]["containers"][0]
        startup, liveness, readiness = paths[service]
        assert c["startupProbe"]["httpGet"] == {"path": startup, "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": liveness, "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": readiness, "port": "http"}
        assert c["ports"] == [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
        ]
        spec = deployment["spec"]
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pod = spec["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        if merged[service]["serviceAccount"]["create"]:
            sa = named(objects, "ServiceAccount", pod["serviceAccountName"])
            assert sa["automountServiceAccountToken"] is False


@pytest.mark.parametrize("values", CI_VALUES)
def test_labels(values: str, render: RenderFn) -> None:
    problems = []
    for obj in render(values):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        label_sets = [("", obj["metadata"].get("labels", {}))]
        template = obj.get("spec", {}).get("template", {})
        if "metadata" in template:
            label_sets.append((" pod template", template["metadata"].get("labels", {})))
        for part, labels in label_sets:
            # Pod templates carry no chart or app version: a chart bump alone must not
            # restart every pod (with one etcd member, an outage).
            wanted = [key for key in LABELS if not (part and key in VERSION_LABELS)]
            missing = [key for key in wanted if not labels.get(key)]
            if missing:
                problems.append(f"{where}{part}: missing {missing}")
            if part and set(VERSION_LABELS) & set(labels):
                problems.append(
                    f"{where}{part}: version labels {set(VERSION_LABELS) & set(labels)}"
                )
            if labels.get("app.kubernetes.io/instance") != RELEASE:
                problems.append(
                    f"{where}{part}: instance {labels.get('app.kubernetes.io/instance')}"
                )
            if labels.get("app.kubernetes.io/part-of") != "hashstack":
                problems.append(f"{where}{part}: part-of")
            if labels.get("app.kubernetes.io/managed-by") != "Helm":
                problems.append(f"{where}{part}: managed-by")
    _fail_if(problems)


@pytest.mark.parametrize("values", CI_VALUES)
def test_names_are_pinned(values: str, render: RenderFn) -> None:
    objects = render(values)
    merged = values_of(values)
    for service in SERVICES:
        # A ServiceAccount only when the chart creates it (`<service>.serviceAccount.create`).
        kinds = ("Deployment", "Service", "ConfigMap")
        if merged[service]["serviceAccount"]["create"]:
            kinds += ("ServiceAccount",)
        for kind in kinds:
            obj = named(objects, kind, f"{RELEASE}-{service}")
            assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == service
    if merged["etcd"]["enabled"]:
        named(objects, "StatefulSet", f"{RELEASE}-etcd")
        client = named(objects, "Service", f"{RELEASE}-etcd")
        assert {"name": "client", "port": 2379} in [
            {"name": p["name"], "port": p["port"]} for p in client["spec"]["ports"]
        ]
        named(objects, "Service", f"{RELEASE}-etcd-headless")
    if merged["registry"]["enabled"]:
        named(objects, "Deployment", f"{RELEASE}-registry")
        named(objects, "Service", f"{RELEASE}-registry")


@pytest.mark.parametrize("values", CI_VALUES)
def test_selectors_match_templates(values: str, render: RenderFn) -> None:
    problems = []
    for obj in render(values):
        if obj["kind"] not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        selector = obj["spec"]["selector"]
        labels = obj["spec"]["template"]["metadata"]["labels"]
        if set(selector) != {"matchLabels"}:
            problems.append(f"{where}: selector uses {set(selector)}")
        if set(selector.get("matchLabels", {})) != {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
        }:
            problems.append(f"{where}: selector keys {sorted(selector.get('matchLabels', {}))}")
        if not selector_matches(selector, labels):
            problems.append(f"{where}: selector does not match the template labels")
    for pdb in by_kind(render(values), "PodDisruptionBudget"):
        selected = [p for p in pods(render(values)) if not p.hook]
        if not any(selector_matches(pdb["spec"]["selector"], p.labels) for p in selected):
            problems.append(f"PodDisruptionBudget/{pdb['metadata']['name']} selects no pods")
    _fail_if(problems)


@pytest.mark.parametrize("values", CI_VALUES)
def test_services_select_workloads_with_their_target_ports(values: str, render: RenderFn) -> None:
    objects = render(values)
    workloads = [p for p in pods(objects) if not p.hook]
    problems = []
    for svc in by_kind(objects, "Service"):
        where = f"Service/{svc['metadata']['name']}"
        selector = svc["spec"].get("selector") or {}
        if not selector:
            problems.append(f"{where}: no selector")
            continue
        chosen = [p for p in workloads if selector_matches({"matchLabels": selector}, p.labels)]
        if len(chosen) != 1:
            problems.append(f"{where}: selects {[p.name for p in chosen]}")
            continue
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if chosen[0].port_number(target) is None:
                problems.append(f"{where}: targetPort {target} not on {chosen[0].name}")
    # No Service sends traffic to a test pod.
    for pod in pods(objects):
        if pod.hook:
            for svc in by_kind(objects, "Service"):
                sel = svc["spec"].get("selector") or {}
                if sel and selector_matches({"matchLabels": sel}, pod.labels):
                    problems.append(f"Service/{svc['metadata']['name']} selects {pod.name}")
    _fail_if(problems)


def _container_env(pod: Pod, c: dict[str, Any], objects: list[dict[str, Any]]) -> list[tuple]:
    """(name, value) of every variable of a container: env entries and envFrom ConfigMaps."""
    env = [(e["name"], e.get("value")) for e in c.get("env", [])]
    for source in c.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref, f"{pod.name}: envFrom other than a ConfigMap"
        data = named(objects, "ConfigMap", ref["name"]).get("data", {})
        env += [(source.get("prefix", "") + key, value) for key, value in data.items()]
    return env


def _urls(value: str) -> list[str]:
    """URLs anywhere in a value: lists, and name=url lists like ETCD_INITIAL_CLUSTER."""
    return re.findall(r"[a-z][a-z0-9+.-]*://[^,\s]+", value)


@pytest.mark.parametrize("values", CI_VALUES)
def test_env_urls_name_rendered_services(values: str, render: RenderFn) -> None:
    """Each URL in a container's env names a rendered Service and one of its ports
    (member URLs may name a pod under a headless Service); external etcd endpoints
    come from externalEtcd.endpoints, the OTLP endpoint from tracing.endpoint."""
    objects = render(values)
    merged = values_of(values)
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    external = set(merged["externalEtcd"]["endpoints"]) if not merged["etcd"]["enabled"] else set()
    if merged["tracing"]["enabled"]:
        external.add(merged["tracing"]["endpoint"].rstrip("/"))
    problems, seen = [], 0
    for pod in pods(objects):
        for c in pod.containers():
            for name, value in _container_env(pod, c, objects):
                for url in _urls(value or ""):
                    seen += 1
                    parts = urlsplit(url)
                    host, port = parts.hostname or "", parts.port
                    if url in external or host in ("0.0.0.0", "localhost", "127.0.0.1", "::"):
                        continue
                    labels = host.split(".")
                    svc = services.get(labels[0])
                    if svc is None and len(labels) > 1:
                        svc = services.get(labels[1])  # <pod>.<headless service>...
                        if svc is not None and svc["spec"].get("clusterIP") != "None":
                            svc = None
                    if svc is None:
                        problems.append(f"{pod.name} {name}={url}: no Service {labels[0]}")
                    elif port not in [p["port"] for p in svc["spec"]["ports"]]:
                        problems.append(f"{pod.name} {name}={url}: port {port} not on the Service")
    assert seen, "no URL found in any env"
    _fail_if(problems)


@pytest.mark.parametrize("values", CI_VALUES)
def test_service_wiring(values: str, render: RenderFn) -> None:
    objects = render(values)
    merged = values_of(values)

    def env(service: str) -> dict[str, str]:
        return named(objects, "ConfigMap", f"{RELEASE}-{service}")["data"]

    if merged["persistence"]["service"]["headless"]:
        # Every ready pod's address, on the container port: hash spreads its calls over them.
        headless = named(objects, "Service", f"{RELEASE}-persistence-headless")["spec"]
        assert headless["clusterIP"] == "None"
        assert env("hash")["PERSISTENCE_URL"] == f"http://{RELEASE}-persistence-headless:8080"
    else:
        assert env("hash")["PERSISTENCE_URL"] == f"http://{RELEASE}-persistence:80"
    if merged["etcd"]["enabled"]:
        assert env("persistence")["ETCD_ENDPOINTS"] == f"http://{RELEASE}-etcd:2379"
    else:
        assert env("persistence")["ETCD_ENDPOINTS"] == ",".join(merged["externalEtcd"]["endpoints"])
    for service in SERVICES:
        assert env(service)["PORT"] == "8080"
        reload = merged[service]["dev"]["reload"]
        assert ("GUNICORN_RELOAD" in env(service)) == reload
        assert "ETCD_ENDPOINTS" not in env(service) or service == "persistence"
        # Every `<service>.config` key reaches the pod as given, and the service accepts it.
        for key, value in merged[service]["config"].items():
            assert env(service)[key] == str(value), (service, key)
        Settings.from_env(env(service))


@pytest.mark.parametrize("values", CI_VALUES)
def test_no_duplicate_env_names_or_ports(values: str, render: RenderFn) -> None:
    objects = render(values)
    problems = []
    for pod in pods(objects):
        ports: Counter[tuple] = Counter()
        names: Counter[str] = Counter()
        for c in pod.containers():
            dup = [
                k
                for k, n in Counter(k for k, _ in _container_env(pod, c, objects)).items()
                if n > 1
            ]
            if dup:
                problems.append(f"{pod.name} container {c['name']}: env {dup} twice")
            for p in c.get("ports", []):
                ports[(p["containerPort"], p.get("protocol", "TCP"))] += 1
                if "name" in p:
                    names[p["name"]] += 1
        problems += [f"{pod.name}: port {k} twice" for k, n in ports.items() if n > 1]
        problems += [f"{pod.name}: port name {k} twice" for k, n in names.items() if n > 1]
    for svc in by_kind(objects, "Service"):
        numbers = Counter((p["port"], p.get("protocol", "TCP")) for p in svc["spec"]["ports"])
        port_names = Counter(p.get("name") for p in svc["spec"]["ports"])
        if any(n > 1 for n in numbers.values()) or any(n > 1 for n in port_names.values()):
            problems.append(f"Service/{svc['metadata']['name']}: duplicate ports")
    _fail_if(problems)


# The chain the NetworkPolicies must allow, and nothing more.
CHAIN = {
    Edge("hash", "persistence", 8080),
    Edge("persistence", "etcd", 2379),
    Edge("etcd", "etcd", 2379),  # members ask each other about membership (entrypoint)
    Edge("etcd", "etcd", 2380),  # raft peer traffic
    Edge("etcd", "etcd", 2382),  # lobbies: members without data confirm it to each other
    Edge("registry-proxy", "registry", 5000),
    Edge("hash-test", "hash", 8080),
    Edge("hello-test", "hello", 8080),
    Edge("etcd-test", "etcd", 2379),
    Edge("etcd-job", "etcd", 2379),  # the resize hook, backup and defrag jobs
    Edge("etcd-job", "etcd", 2382),  # the resize hook asks the lobbies
    Edge("registry-test", "registry", 5000),
}
PROBE_PORTS = [
    (53, "UDP"),
    (53, "TCP"),
    (80, "TCP"),
    (443, "TCP"),
    (2379, "TCP"),
    (5000, "TCP"),
    (8080, "TCP"),
    (9090, "TCP"),
]


@pytest.mark.parametrize("values", CI_VALUES)
def test_network_policies_allow_exactly_the_chain(values: str, render: RenderFn) -> None:
    objects = render(values)
    merged = values_of(values)
    model = PolicyModel(list(pods(objects)), by_kind(objects, "NetworkPolicy"))
    present = {model.name(p) for p in model.pods}
    # Default deny: every pod of the release is selected for both directions.
    for pod in model.pods:
        assert model.selecting(pod, "Ingress"), pod.name
        assert model.selecting(pod, "Egress"), pod.name

    expected = {e for e in CHAIN if e.src in present and e.dst in present}
    assert model.internal_edges() == expected

    inbound = {Edge(OUTSIDE, "hash", 8080), Edge(OUTSIDE, "hello", 8080)}
    if merged["registry"]["enabled"]:
        inbound.add(Edge(OUTSIDE, "registry-proxy", 5000))
    if merged["metrics"]["serviceMonitor"]["enabled"]:
        # The scraper gets the metrics port only: persistence's API stays closed.
        inbound |= {Edge(OUTSIDE, s, 9090) for s in SERVICES}
    assert model.inbound_from_outside() == inbound

    outbound = {
        Edge(model.name(p), OUTSIDE, 53, proto) for p in model.pods for proto in ("UDP", "TCP")
    }
    if not merged["etcd"]["enabled"]:
        outbound.add(Edge("persistence", OUTSIDE, 2379))
    assert model.outbound_to_outside(PROBE_PORTS) == outbound


def test_public_ingress_is_limited_to_the_configured_peers(render: RenderFn) -> None:
    objects = render("ingress")
    peers = values_of("ingress")["networkPolicy"]["ingressFrom"]
    for service in ("hash", "hello"):
        policy = named(objects, "NetworkPolicy", f"{RELEASE}-{service}")
        external = [r for r in policy["spec"]["ingress"] if "from" in r]
        assert [r["from"] for r in external] == [peers]
        assert [r for r in policy["spec"]["ingress"] if "from" not in r] == []


def test_network_policies_can_be_turned_off(render: RenderFn) -> None:
    objects = render("default", extra=("--set", "networkPolicy.enabled=false"))
    umbrella = [
        p
        for p in by_kind(objects, "NetworkPolicy")
        if p["metadata"]["labels"]["helm.sh/chart"].startswith("hashstack-")
    ]
    assert umbrella == []


def test_checksum_and_config_in_a_configmap(render: RenderFn) -> None:
    objects = render("default")
    for service in SERVICES:
        deployment = named(objects, "Deployment", f"{RELEASE}-{service}")
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert len(annotations["checksum/config"]) == 64
        (c,) = deployment["spec"]["template"]["spec"]["containers"]
        assert c["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-{service}"}}]


def test_dev_values_make_app_writable_only(render: RenderFn) -> None:
    objects = render("dev")
    for service in SERVICES:
        pod = named(objects, "Deployment", f"{RELEASE}-{service}")["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        (c,) = pod["containers"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "app", "mountPath": "/app"} in c["volumeMounts"]
        assert {"name": "app", "mountPath": "/writable-app"} in init["volumeMounts"]
        assert {"name": "app", "emptyDir": {}} in pod["volumes"]
        assert init["image"] == c["image"]


@pytest.mark.parametrize("values", CI_VALUES)
def test_images_follow_the_registry_rules(values: str, render: RenderFn) -> None:
    objects = render(values)
    merged = values_of(values)
    registry = merged["global"]["imageRegistry"]
    for service in SERVICES:
        # The service's own container comes first; sidecars are the user's images.
        c = named(objects, "Deployment", f"{RELEASE}-{service}")["spec"]["template"]["spec"][
            "containers"
        ][0]
        image = merged[service]["image"]
        want = (
            f"{registry or image['registry']}/{image['repository']}:{image['tag'] or APP_VERSION}"
        )
        assert c["image"] == want
    if registry:
        for pod in pods(objects):
            for c in pod.containers():
                assert c["image"].startswith(f"{registry}/"), (pod.name, c["image"])


def test_image_digest_and_pull_secrets(render: RenderFn) -> None:
    digest = "sha256:" + "a" * 64
    objects = render(
        "default",
        extra=(
            "--set",
            f"hash.image.digest={digest}",
            "--set-string",
            "hash.image.tag=1.2.3",
            "--set",
            "hash.image.registry=",
            "--set",
            "global.imagePullSecrets[0]=shared",
            "--set",
            "hash.imagePullSecrets[0]=own",
        ),
    )
    pod = named(objects, "Deployment", f"{RELEASE}-hash")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == f"hashstack/hash:1.2.3@{digest}"
    assert pod["imagePullSecrets"] == [{"name": "shared"}, {"name": "own"}]
    hello = named(objects, "Deployment", f"{RELEASE}-hello")["spec"]["template"]["spec"]
    assert hello["imagePullSecrets"] == [{"name": "shared"}]


def test_hpa_for_hash_and_persistence(render: RenderFn) -> None:
    assert by_kind(render("default"), "HorizontalPodAutoscaler") == []
    objects = render("ha")
    hpas = {h["metadata"]["name"]: h for h in by_kind(objects, "HorizontalPodAutoscaler")}
    assert set(hpas) == {f"{RELEASE}-hash", f"{RELEASE}-persistence"}
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        # The HPA owns the replica count: the Deployment leaves it alone.
        assert "replicas" not in named(objects, "Deployment", name)["spec"]
    assert named(objects, "Deployment", f"{RELEASE}-hello")["spec"]["replicas"] == 3


def test_test_hooks_check_hash_and_hello(render: RenderFn) -> None:
    objects = render("default")
    hooks = {p.owner["metadata"]["name"]: p for p in pods(objects) if p.hook}
    ours = {
        n: p
        for n, p in hooks.items()
        if not n.startswith((f"{RELEASE}-etcd", f"{RELEASE}-registry"))
    }
    assert set(ours) == {
        f"{RELEASE}-hash-test-sha256",
        f"{RELEASE}-hash-test-unique",
        f"{RELEASE}-hello-test-hello",
    }
    script = (CHART / "files" / "helm-test.py").read_text()
    for pod in ours.values():
        assert pod.owner["metadata"]["annotations"]["helm.sh/hook"] == "test"
        (c,) = pod.containers()
        assert c["command"][:3] == ["python", "-c", script]
        check, url = c["command"][3:5]
        service = "hello" if check == "hello" else "hash"
        assert url == f"http://{RELEASE}-{service}:80/"
        # The service's own image: nothing else can be assumed pullable.
        deployment = named(objects, "Deployment", f"{RELEASE}-{service}")
        assert c["image"] == deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    # An etcd health hook ships with the etcd subchart.
    assert any(n.startswith(f"{RELEASE}-etcd") for n in hooks)


def test_values_files_parse() -> None:
    for path in sorted((CHART / "ci").glob("*.yaml")):
        assert isinstance(yaml.safe_load(path.read_text()) or {}, dict), path
    assert Path(CHART / "values.schema.json").exists()


@pytest.mark.parametrize("kube", ["1.30.0", "1.35.0"])
def test_etcd_client_tls_reaches_persistence(kube: str, render: RenderFn) -> None:
    objects = render(
        "default",
        kube=kube,
        extra=("--set", "etcd.tls.enabled=true", "--set", "etcd.tls.existingSecret=etcd-tls"),
    )
    env = named(objects, "ConfigMap", f"{RELEASE}-persistence")["data"]
    assert env["ETCD_ENDPOINTS"] == f"https://{RELEASE}-etcd:2379"
    assert env["ETCD_CA_FILE"] == "/etc/hashstack/etcd-tls/ca.crt"
    pod = named(objects, "Deployment", f"{RELEASE}-persistence")["spec"]["template"]["spec"]
    assert {"name": "etcd-tls", "secret": {"secretName": "etcd-tls", "defaultMode": 0o440}} in pod[
        "volumes"
    ]
    mount = {"name": "etcd-tls", "mountPath": "/etc/hashstack/etcd-tls", "readOnly": True}
    assert mount in pod["containers"][0]["volumeMounts"]
    for obj in objects:
        if obj["kind"] in ("Deployment", "ConfigMap"):
            kubernetes_validate.validate(obj, kube, strict=True)
    # hash never sees etcd's certificates.
    assert "ETCD_CA_FILE" not in named(objects, "ConfigMap", f"{RELEASE}-hash")["data"]

"""The registry subchart rendered standalone by real helm; its registry environment and
proxy configuration run for real (Debian's distribution build and HAProxy on 127.0.0.1).
Its values schema, helm lint and Kubernetes schemas are checked with etcd's in
test_subcharts.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from localstack import free_port, wait_until_answers
from tests.support.pods import assert_restricted
from tests.support.registry import proxy_on_loopback
from tests.support.stack import Processes

from .k8s import named
from .rendering import CHART_VERSION
from .subchart import REGISTRY, env_of
from .subchart import REGISTRY_AUTH as AUTH

RELEASE, NAMESPACE = REGISTRY.release, REGISTRY.namespace
render, template = REGISTRY.render, REGISTRY.template
NAME = f"{RELEASE}-registry"
PROXY = f"{RELEASE}-registry-proxy"
SELECTOR = {"app.kubernetes.io/name": "registry", "app.kubernetes.io/instance": RELEASE}
PROXY_SELECTOR = {"app.kubernetes.io/name": "registry-proxy", "app.kubernetes.io/instance": RELEASE}


def names(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects}


def deployment(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return named(render(values), "Deployment", NAME)


def pod_spec(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return deployment(values)["spec"]["template"]["spec"]


# --- the registry -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persistence", "strategy"),
    [
        ({}, "Recreate"),
        ({"accessMode": "ReadWriteOncePod"}, "Recreate"),
        ({"existingClaim": "images"}, "Recreate"),
        ({"accessMode": "ReadWriteMany"}, "RollingUpdate"),
        ({"enabled": False}, "RollingUpdate"),
    ],
    ids=["rwo", "rwop", "existing-rwo", "rwx", "emptydir"],
)
def test_strategy_follows_the_volume_access_mode(
    persistence: dict[str, Any], strategy: str
) -> None:
    spec = deployment({"persistence": persistence})["spec"]
    assert spec["strategy"]["type"] == strategy
    if strategy == "RollingUpdate":
        assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_registry_pod() -> None:
    spec = pod_spec()
    # Service links would inject REGISTRY_* variables the registry reads as configuration.
    assert spec["enableServiceLinks"] is False
    (container,) = spec["containers"]
    assert container["image"] == "docker.io/library/registry:3.0.0"
    env = env_of(container)
    assert env["REGISTRY_STORAGE_DELETE_ENABLED"] == "true"
    assert "REGISTRY_AUTH" not in env
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("http", 5000)]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/", "port": "http"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == env["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] == "/var/lib/registry"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": NAME}


def test_service_selects_the_registry_and_never_the_proxy() -> None:
    objects = render()
    service = named(objects, "Service", NAME)["spec"]
    assert service["selector"] == SELECTOR
    assert service["ports"] == [
        {"name": "http", "port": 5000, "targetPort": "http", "protocol": "TCP"}
    ]
    assert deployment()["spec"]["selector"] == {"matchLabels": SELECTOR}
    proxy = named(objects, "DaemonSet", PROXY)
    assert proxy["spec"]["selector"] == {"matchLabels": PROXY_SELECTOR}
    proxy_labels = proxy["spec"]["template"]["metadata"]["labels"]
    assert not SELECTOR.items() <= proxy_labels.items()
    test_pod = named(objects, "Pod", f"{NAME}-test")
    assert not SELECTOR.items() <= test_pod["metadata"]["labels"].items()
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "hashstack"
        assert labels["helm.sh/chart"] == f"registry-{CHART_VERSION}"
        assert labels["app.kubernetes.io/version"] == "3.0.0"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/component"]


def test_persistent_volume_claim() -> None:
    claim = named(render(), "PersistentVolumeClaim", NAME)
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "10Gi"}},
    }
    custom = {"persistence": {"size": "50Gi", "storageClass": "fast", "keepOnUninstall": False}}
    claim = named(render(custom), "PersistentVolumeClaim", NAME)
    assert "annotations" not in claim["metadata"]
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    existing = render({"persistence": {"existingClaim": "images"}})
    assert not any(o["kind"] == "PersistentVolumeClaim" for o in existing)
    volumes = {
        v["name"]: v
        for v in named(existing, "Deployment", NAME)["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "images"
    ephemeral = render({"persistence": {"enabled": False}})
    assert not any(o["kind"] == "PersistentVolumeClaim" for o in ephemeral)
    volumes = {
        v["name"]: v
        for v in named(ephemeral, "Deployment", NAME)["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes["data"] == {"name": "data", "emptyDir": {}}


def test_htpasswd_auth_from_an_existing_secret() -> None:
    objects = render(AUTH)
    spec = named(objects, "Deployment", NAME)["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = env_of(container)
    assert env["REGISTRY_AUTH"] == "htpasswd"
    assert env["REGISTRY_AUTH_HTPASSWD_REALM"] == "hashstack registry"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "auth")
    volume = next(v for v in spec["volumes"] if v["name"] == "auth")
    assert volume["secret"]["secretName"] == "registry-users"
    assert volume["secret"]["items"] == [{"key": "htpasswd", "path": "htpasswd"}]
    assert env["REGISTRY_AUTH_HTPASSWD_PATH"] == f"{mount['mountPath']}/htpasswd"
    assert mount["readOnly"] is True
    # The helm test stays on unauthenticated paths when auth is on.
    command = named(objects, "Pod", f"{NAME}-test")["spec"]["containers"][0]["command"]
    assert f"http://{NAME}:5000/" in command
    assert f"http://{NAME}:5000/v2/" not in command
    assert (
        f"http://{NAME}:5000/v2/"
        in named(render(), "Pod", f"{NAME}-test")["spec"]["containers"][0]["command"]
    )
    keyed = {"auth": {"htpasswd": {**AUTH["auth"]["htpasswd"], "key": "users"}}}
    volume = next(v for v in pod_spec(keyed)["volumes"] if v["name"] == "auth")
    assert volume["secret"]["items"] == [{"key": "users", "path": "htpasswd"}]
    missing = template({"auth": {"htpasswd": {"enabled": True}}})
    assert missing.returncode != 0
    assert "registry.auth.htpasswd.existingSecret" in missing.stderr


def test_http_secret_for_several_replicas() -> None:
    values = {
        "replicaCount": 2,
        "persistence": {"accessMode": "ReadWriteMany"},
        "httpSecret": {"existingSecret": "registry-http"},
    }
    env = env_of(pod_spec(values)["containers"][0])
    assert env["REGISTRY_HTTP_SECRET"] == {
        "secretKeyRef": {"name": "registry-http", "key": "http-secret"}
    }
    refused = template({"replicaCount": 2})
    assert refused.returncode != 0
    assert "registry.replicaCount" in refused.stderr


# --- the node proxy --------------------------------------------------------------------


def proxy_config(values: dict[str, Any] | None = None) -> str:
    return named(render(values), "ConfigMap", PROXY)["data"]["haproxy.cfg"]


def test_proxy_daemonset_on_host_port_5000() -> None:
    objects = render()
    daemonset = named(objects, "DaemonSet", PROXY)
    spec = daemonset["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    ports = {p["name"]: p for p in container["ports"]}
    assert ports["registry"]["containerPort"] == 5000
    assert ports["registry"]["hostPort"] == 5000
    assert "hostPort" not in ports["health"]
    assert container["image"] == "docker.io/library/haproxy:3.0.10-alpine"
    assert container["command"] == ["haproxy", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert mount["mountPath"] == "/usr/local/etc/haproxy"
    assert next(v for v in spec["volumes"] if v["name"] == "config")["configMap"]["name"] == PROXY
    # The proxy forwards to the registry Service on the Service's port.
    service = named(objects, "Service", NAME)["spec"]["ports"][0]["port"]
    assert f"server registry {NAME}.{NAMESPACE}.svc.cluster.local:{service} " in proxy_config()
    moved = {"service": {"port": 5050}, "proxy": {"hostPort": 30500}}
    assert f"{NAME}.{NAMESPACE}.svc.cluster.local:5050 " in proxy_config(moved)
    moved_pod = named(render(moved), "DaemonSet", PROXY)["spec"]["template"]
    assert moved_pod["spec"]["containers"][0]["ports"][0]["hostPort"] == 30500
    # A config change rolls the proxies.
    annotations = daemonset["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/config"] == hashlib.sha256(proxy_config().encode()).hexdigest()
    changed = moved_pod["metadata"]["annotations"]
    assert changed["checksum/config"] != annotations["checksum/config"]


def test_proxy_can_be_turned_off() -> None:
    on, off = names(render()), names(render({"proxy": {"enabled": False}}))
    proxy_objects = {
        ("DaemonSet", PROXY),
        ("ConfigMap", PROXY),
        ("ServiceAccount", PROXY),
        ("NetworkPolicy", PROXY),
    }
    assert proxy_objects <= on
    assert not proxy_objects & off
    assert on - proxy_objects == off
    assert not any(o["kind"] == "DaemonSet" for o in render({"proxy": {"enabled": False}}))


def test_pods_are_restricted_except_the_proxy_host_port() -> None:
    objects = render(AUTH)
    assert_restricted(named(objects, "Deployment", NAME)["spec"]["template"]["spec"])
    assert_restricted(named(objects, "Pod", f"{NAME}-test")["spec"])
    # The one stated exception: hostPort (Pod Security baseline "Host Ports").
    assert_restricted(
        named(objects, "DaemonSet", PROXY)["spec"]["template"]["spec"], host_ports=(5000,)
    )
    values = (REGISTRY.chart / "values.yaml").read_text()
    assert "POD SECURITY EXCEPTION" in values
    for account in (NAME, PROXY):
        assert named(objects, "ServiceAccount", account)["automountServiceAccountToken"] is False


def test_network_policies() -> None:
    objects = render(
        {
            "networkPolicy": {
                "extraIngress": [{"namespaceSelector": {"matchLabels": {"ci": "true"}}}]
            }
        }
    )
    registry = named(objects, "NetworkPolicy", NAME)["spec"]
    assert registry["podSelector"] == {"matchLabels": SELECTOR}
    assert registry["policyTypes"] == ["Ingress"]
    (rule,) = registry["ingress"]
    assert rule["ports"] == [{"port": 5000, "protocol": "TCP"}]
    assert {"podSelector": {"matchLabels": PROXY_SELECTOR}} in rule["from"]
    assert {"namespaceSelector": {"matchLabels": {"ci": "true"}}} in rule["from"]
    proxy = named(objects, "NetworkPolicy", PROXY)["spec"]
    assert proxy["podSelector"] == {"matchLabels": PROXY_SELECTOR}
    # hostPort traffic comes from the node's own addresses: any source, port 5000 only.
    assert proxy["ingress"] == [{"ports": [{"port": 5000, "protocol": "TCP"}]}]
    to_registry = [r for r in proxy["egress"] if "to" in r]
    assert to_registry == [
        {
            "to": [{"podSelector": {"matchLabels": SELECTOR}}],
            "ports": [{"port": 5000, "protocol": "TCP"}],
        }
    ]
    assert not any(
        o["kind"] == "NetworkPolicy" for o in render({"networkPolicy": {"enabled": False}})
    )


def test_helm_test_hook() -> None:
    hook = named(render(), "Pod", f"{NAME}-test")
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert hook["spec"]["containers"][0]["image"] == pod_spec()["containers"][0]["image"]
    assert not any(o["kind"] == "Pod" for o in render({"tests": {"enabled": False}}))


# --- the real thing: registry environment and proxy config on 127.0.0.1 ---------------------


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop()


def start_registry(
    processes: Processes, workdir: Path, values: dict[str, Any], files: dict[str, str]
) -> str:
    """Debian's distribution build with the Deployment's environment; paths inside the pod
    (the data volume, mounted secrets) map to directories under workdir."""
    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed (ci/install-deps.sh installs it)")
    container = pod_spec(values)["containers"][0]
    env = {k: v for k, v in env_of(container).items() if isinstance(v, str)}
    port = free_port()
    root = workdir / "pod"
    for pod_path, content in files.items():
        (root / pod_path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / pod_path.lstrip("/")).write_text(content)
    for key in ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "REGISTRY_AUTH_HTPASSWD_PATH"):
        if key in env:
            env[key] = str(root / env[key].lstrip("/"))
    env["REGISTRY_HTTP_ADDR"] = f"127.0.0.1:{port}"
    # A bare configuration: whatever the chart's environment does not set stays off.
    config = workdir / "config.yml"
    bare = {"version": 0.1, "storage": {"filesystem": {"rootdirectory": "/nonexistent"}}}
    config.write_text(json.dumps({**bare, "http": {"addr": ":1"}}))
    processes.start(
        f"registry-{port}",
        ["docker-registry", "serve", str(config)],
        {"PATH": os.environ["PATH"], **env},
    )
    wait_until_answers(f"http://127.0.0.1:{port}/", timeout=20)
    return f"127.0.0.1:{port}"


def start_proxy(processes: Processes, workdir: Path, registry: str) -> tuple[str, str]:
    """HAProxy with the rendered ConfigMap; only the addresses change (Service name and
    the pod's ports become 127.0.0.1 ports)."""
    if not shutil.which("haproxy"):
        pytest.skip("haproxy is not installed (add it to ci/apt-packages.txt)")
    cfg = proxy_config()
    listen, health = free_port(), free_port()
    service = f"{NAME}.{NAMESPACE}.svc.cluster.local:5000"
    assert cfg.count(service) == 1
    assert cfg.count("bind :5000") == cfg.count("bind :8404") == 1
    cfg = proxy_on_loopback(cfg, service, registry, listen, health)
    path = workdir / "haproxy.cfg"
    path.write_text(cfg)
    check = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    processes.start("haproxy", ["haproxy", "-db", "-f", str(path)], {"PATH": os.environ["PATH"]})
    wait_until_answers(f"http://127.0.0.1:{health}/healthz", timeout=20)
    return f"127.0.0.1:{listen}", f"127.0.0.1:{health}"


def push_image(base: str, name: str) -> str:
    """Push a config blob and an OCI manifest; return the manifest digest."""
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    start = requests.post(f"{base}/v2/{name}/blobs/uploads/", timeout=10)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    upload = location if location.startswith("http") else base + location
    sep = "&" if "?" in upload else "?"
    put = requests.put(f"{upload}{sep}digest={digest}", data=config, timeout=10)
    assert put.status_code == 201, put.text
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    pushed = requests.put(
        f"{base}/v2/{name}/manifests/1.0", data=manifest, headers=headers, timeout=10
    )
    assert pushed.status_code == 201, pushed.text
    return pushed.headers["Docker-Content-Digest"]


@pytest.mark.slow
def test_nodes_pull_through_the_proxy_but_cannot_push_or_delete(
    processes: Processes, tmp_path: Path
) -> None:
    registry = start_registry(processes, tmp_path, {}, {})
    proxy, health = start_proxy(processes, tmp_path, registry)
    wait_until_answers(f"http://{health}/readyz", timeout=20)
    base, direct = f"http://{proxy}", f"http://{registry}"
    # Pushes go straight to the registry (kubectl port-forward in the cluster).
    digest = push_image(direct, "hashstack/hash")
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    manifest = f"/v2/hashstack/hash/manifests/{digest}"
    pulled = requests.get(f"{base}/v2/hashstack/hash/manifests/1.0", headers=accept, timeout=10)
    assert pulled.status_code == 200
    assert pulled.headers["Docker-Content-Digest"] == digest
    config = json.loads(pulled.text)["config"]["digest"]
    assert requests.get(f"{base}/v2/hashstack/hash/blobs/{config}", timeout=10).status_code == 200
    assert requests.head(base + manifest, headers=accept, timeout=10).status_code == 200
    # A push through the proxy fails at its first step, and so does every other method.
    with pytest.raises(AssertionError, match="UNSUPPORTED"):
        push_image(base, "hashstack/pushed-through-the-proxy")
    for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        refused = requests.request(method, base + manifest, data=b"x", timeout=10)
        assert refused.status_code == 405, (method, refused.text)
        assert refused.headers["Allow"] == "GET, HEAD"
        assert refused.json()["errors"][0]["code"] == "UNSUPPORTED"
    # None of it reached the registry: the image is there, nothing else is.
    assert requests.get(direct + manifest, headers=accept, timeout=10).status_code == 200
    catalog = requests.get(f"{direct}/v2/_catalog", timeout=10).json()
    assert catalog["repositories"] == ["hashstack/hash"]
    # The registry itself would have deleted it (REGISTRY_STORAGE_DELETE_ENABLED from the chart).
    assert requests.delete(direct + manifest, timeout=10).status_code == 202


@pytest.mark.slow
def test_proxy_reports_not_ready_without_a_registry(processes: Processes, tmp_path: Path) -> None:
    _, health = start_proxy(processes, tmp_path, f"127.0.0.1:{free_port()}")
    assert requests.get(f"http://{health}/healthz", timeout=5).status_code == 200
    wait_until_answers(f"http://{health}/readyz", timeout=20, expect=503)


@pytest.mark.slow
def test_htpasswd_secret_guards_the_api_but_not_the_probe_path(
    processes: Processes, tmp_path: Path
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt  # bcrypt through libxcrypt; the registry accepts only bcrypt
        except ImportError:
            pytest.skip("this Python has no crypt module (removed in 3.13)")
        hashed = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH))
    if not hashed.startswith("$2"):
        pytest.skip("the C library's crypt() has no bcrypt")
    spec = pod_spec(AUTH)
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "auth")
    item = next(v for v in spec["volumes"] if v["name"] == "auth")["secret"]["items"][0]
    files = {f"{mount['mountPath']}/{item['path']}": f"ci:{hashed}\n"}
    base = "http://" + start_registry(processes, tmp_path, AUTH, files)
    assert requests.get(f"{base}/", timeout=5).status_code == 200  # the probes' path
    denied = requests.get(f"{base}/v2/", timeout=5)
    assert denied.status_code == 401
    assert 'realm="hashstack registry"' in denied.headers["WWW-Authenticate"]
    assert requests.get(f"{base}/v2/", auth=("ci", "s3cret"), timeout=5).status_code == 200
    assert requests.get(f"{base}/v2/", auth=("ci", "wrong"), timeout=5).status_code == 401

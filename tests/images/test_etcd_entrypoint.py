"""The etcd subchart's entrypoint and resize hook in the test etcd image (built like
registry.k8s.io/etcd: a static bash as /bin/sh, etcd, etcdctl and etcdutl, nothing else), as
podman containers on one network. The rendered pod environment is used as is: aardvark-dns
answers the headless Service's member names and the client Service's name (network aliases).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chart.etcd_cluster import FULLNAME, render
from tests.chart.k8s import named
from tests.chart.subchart import ETCD, env_of
from tests.support import podman as pm

SERVICE = f"{FULLNAME}.{ETCD.namespace}.svc.cluster.local"
HEADLESS = f"{FULLNAME}-headless.{ETCD.namespace}.svc.cluster.local"


class Pods:
    """Members named like the StatefulSet's pods, each answering to its headless DNS name."""

    def __init__(self, image: str, network: str, workdir: Path) -> None:
        self.image, self.network, self.workdir = image, network, workdir
        self.containers: dict[int, str] = {}
        self.objects = render(3, upgrade=False)
        scripts = named(self.objects, "ConfigMap", f"{FULLNAME}-scripts")["data"]
        (workdir / "scripts").mkdir()
        (workdir / "scripts" / "entrypoint.sh").write_text(scripts["entrypoint.sh"])

    def env(self, ordinal: int) -> dict[str, str]:
        sts = named(self.objects, "StatefulSet", FULLNAME)
        (container,) = sts["spec"]["template"]["spec"]["containers"]
        config = named(self.objects, "ConfigMap", f"{FULLNAME}-cluster")["data"]
        env = {}
        for name, value in env_of(container).items():
            if isinstance(value, dict) and "configMapKeyRef" in value:
                value = config[value["configMapKeyRef"]["key"]]
            elif isinstance(value, dict):
                continue  # POD_NAME from the downward API: set below
            env[name] = str(value).replace("$(POD_NAME)", f"{FULLNAME}-{ordinal}")
        env["POD_NAME"] = f"{FULLNAME}-{ordinal}"
        return env

    def start(self, ordinal: int, fresh_volume: bool = False) -> None:
        """A pod on its volume (a directory owned by the pod's user, as fsGroup makes it)."""
        volume = self.workdir / f"data-{FULLNAME}-{ordinal}"
        if fresh_volume:
            shutil.rmtree(volume)
        if not volume.exists():
            volume.mkdir()
            os.chown(volume, 10001, 10001)
        name = pm.unique(f"hashstack-test-{FULLNAME}-{ordinal}")
        self.containers[ordinal] = name
        pm.run_container(
            self.image, name, network=self.network, publish=False,
            aliases=[f"{FULLNAME}-{ordinal}.{HEADLESS}", SERVICE],
            environment=self.env(ordinal),
            extra=[
                "--volume", f"{volume}:/var/lib/etcd",
                "--volume", f"{self.workdir / 'scripts'}:/scripts:ro",
                "--tmpfs", "/lobby:rw,size=128m,mode=1777",  # the lobby's emptyDir
                "--restart", "on-failure",  # the kubelet restarts a member that exits
                "--entrypoint", "/bin/sh",
            ],
            command=["/scripts/entrypoint.sh"],
        )  # fmt: skip

    def stop(self, ordinal: int) -> None:
        pm.podman("rm", "--force", "--time", "10", self.containers.pop(ordinal))

    def ctl(self, ordinal: int, *args: str) -> str:
        result = pm.podman(
            "exec", self.containers[ordinal], "etcdctl", f"--endpoints=http://{SERVICE}:2379",
            "--dial-timeout=2s", *args, check=False,
        )  # fmt: skip
        return result.stdout if result.returncode == 0 else ""

    def members(self, ordinal: int) -> list[dict[str, Any]]:
        out = self.ctl(ordinal, "member", "list", "-w", "json")
        return list(json.loads(out).get("members", [])) if out else []

    def wait_members(self, ordinal: int, count: int, timeout: float = 120) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        members: list[dict[str, Any]] = []
        while time.monotonic() < end:
            members = self.members(ordinal)
            voting = [m for m in members if m.get("name") and not m.get("isLearner")]
            if len(members) == count and len(voting) == count:
                return members
            time.sleep(1)
        raise AssertionError(f"members never settled: {members}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            pm.podman("logs", c, check=False).stderr[-3000:] for c in self.containers.values()
        )

    def close(self) -> None:
        for ordinal in list(self.containers):
            pm.podman("rm", "--force", "--time", "0", self.containers.pop(ordinal), check=False)


@pytest.fixture
def pods(test_images: dict[str, str], network: str, tmp_path: Path) -> Iterator[Pods]:
    tmp_path.chmod(0o755)
    made = Pods(test_images["etcd"], network, tmp_path)
    yield made
    made.close()


def test_members_bootstrap_lose_a_volume_and_scale_down_in_the_etcd_image(pods: Pods) -> None:
    for ordinal in range(3):  # Parallel pod management
        pods.start(ordinal)
    first = pods.wait_members(0, 3)
    assert pods.ctl(0, "put", "/hashstack/counter", "4242").strip() == "OK"

    # Member 2's volume is gone (PVC deleted while the pod was away): it is replaced.
    pods.stop(2)
    pods.start(2, fresh_volume=True)
    after = pods.wait_members(0, 3)
    ids = {m["name"]: m["ID"] for m in first}
    new_ids = {m["name"]: m["ID"] for m in after}
    assert new_ids[f"{FULLNAME}-0"] == ids[f"{FULLNAME}-0"]
    assert new_ids[f"{FULLNAME}-2"] != ids[f"{FULLNAME}-2"]
    assert "as a learner" in pm.podman("logs", pods.containers[2]).stderr

    # helm upgrade --set replicaCount=1: the resize hook Job, then the StatefulSet shrinks.
    job = named(render(1, upgrade=True), "Job", f"{FULLNAME}-resize")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    hook = pm.podman(
        "run", "--rm", "--network", pods.network, "--read-only", "--tmpfs", "/tmp",
        *[arg for k, v in env_of(container).items() for arg in ("--env", f"{k}={v}")],
        "--entrypoint", "/bin/sh", pods.image, *container["command"][1:], timeout=300,
    )  # fmt: skip
    assert hook.stderr.count("removing") == 2, hook.stderr
    pods.stop(2)
    pods.stop(1)
    (only,) = pods.wait_members(0, 1)
    assert only["name"] == f"{FULLNAME}-0"
    got = pods.ctl(0, "get", "/hashstack/counter", "--print-value-only")
    assert got.strip() == "4242"

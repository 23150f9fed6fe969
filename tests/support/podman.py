"""The one podman runner: thin helpers over the podman command line (real podman, no API
client), in the environment ci/env.sh gives (CONTAINERS_CONF)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("hello", "persistence", "hash")
# ci/images.sh honours BASE_IMAGE too (a second base, e.g. to time a cold build).
BASE_IMAGE = os.environ.get("BASE_IMAGE", "localhost/hashstack-base/python:3.11-bookworm")
ETCD_TEST_IMAGE = "localhost/hashstack-test/etcd:local"
REGISTRY_TEST_IMAGE = "localhost/hashstack-test/registry:local"
HAPROXY_TEST_IMAGE = "localhost/hashstack-test/haproxy:local"


def env() -> dict[str, str]:
    """The environment ci/env.sh gives: above all CONTAINERS_CONF (runc, cgroupfs, ulimits)."""
    result = dict(os.environ)
    result["HASHSTACK_ROOT"] = str(ROOT)
    result.setdefault("HASHSTACK_CACHE", str(ROOT / ".cache"))
    result["CONTAINERS_CONF"] = str(ROOT / "ci" / "containers.conf")
    return result


def podman(
    *args: str, check: bool = True, timeout: float = 120, root: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs podman; `root` selects a separate image store (a clean pull)."""
    store: list[str] = []
    if root is not None:
        store = ["--root", str(root / "storage"), "--runroot", str(root / "run")]
    result = subprocess.run(
        ["podman", *store, *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def podman_bytes(
    *args: str, data: bytes | None = None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """podman with bytes in and out (a tar on stdin, an archive out)."""
    result = subprocess.run(
        ["podman", *args], input=data, capture_output=True, env=env(), timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.stderr.decode()[-2000:]}")
    return result


def script(*args: str, extra_env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Runs a project script (ci/...) and returns its output; fails with the output shown."""
    result = subprocess.run(
        list(args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env(), **(extra_env or {})},
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{output[-6000:]}")
    return output


def storage_conf(root: Path, path: Path) -> dict[str, str]:
    """The environment that points podman (and the scripts calling it) at the separate image
    store `root`, through a storage.conf written to `path`."""
    path.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root / "storage"}"\n'
        f'runroot = "{root / "run"}"\n'
    )
    return {"CONTAINERS_STORAGE_CONF": str(path)}


def inspect_image(ref: str, root: Path | None = None) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(podman("image", "inspect", ref, root=root).stdout)
    return data[0]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run_container(
    image: str,
    name: str,
    *,
    network: str | None = None,
    aliases: Sequence[str] = (),
    environment: dict[str, str] | None = None,
    publish: bool = True,
    extra: Sequence[str] = (),
    command: Sequence[str] = (),
    root: Path | None = None,
    read_only: bool = True,
) -> str:
    """Starts a detached container the way the chart runs it: read-only root, /tmp a tmpfs."""
    args = ["run", "--detach", "--name", name]
    if read_only:
        args += ["--read-only", "--tmpfs", "/tmp:rw,size=64m"]
    if network:
        args += ["--network", network]
        args += [f"--network-alias={alias}" for alias in aliases]
    if publish:
        args += ["--publish", "127.0.0.1::8080"]
    for key, value in (environment or {}).items():
        args += ["--env", f"{key}={value}"]
    podman(*args, *extra, image, *command, root=root)
    return name


def published_url(name: str, port: int = 8080) -> str:
    """http://127.0.0.1:<host port> for the container port published on loopback."""
    out = podman("port", name, f"{port}/tcp").stdout.strip().splitlines()[0]
    host, _, host_port = out.rpartition(":")
    return f"http://{host}:{host_port}"


def wait_http(url: str, name: str, timeout: float = 30) -> requests.Response:
    """Polls url until it answers 200; on failure the container's log is in the message."""
    deadline = time.monotonic() + timeout
    last: str = "no answer"
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return response
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except requests.RequestException as error:
            last = str(error)
        state = podman("inspect", "--format", "{{.State.Status}}", name, check=False).stdout
        if state.strip() == "exited":
            break
        time.sleep(0.3)
    logs = podman("logs", name, check=False)
    raise AssertionError(
        f"{url} never answered 200 ({last}); {name} log:\n{logs.stdout}{logs.stderr}"
    )


def remove_containers(*names: str) -> None:
    for name in names:
        podman("rm", "--force", "--time", "2", name, check=False)


# What skaffold runs in the container for a file sync (pkg/skaffold/sync: `tar xmf - -C /
# --no-same-owner`), fed a tar whose entries are named by their absolute destination.
SKAFFOLD_SYNC = ("tar", "xmf", "-", "-C", "/", "--no-same-owner")


def skaffold_tar(files: dict[str, bytes]) -> bytes:
    """Like skaffold's CreateMappedTar: one entry per file, named by its absolute dest."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for dest, content in files.items():
            info = tarfile.TarInfo(dest)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def skaffold_sync(name: str, files: dict[str, bytes]) -> None:
    """Sync `files` (absolute dest -> content) into container `name` exactly as skaffold does."""
    podman_bytes("exec", "-i", name, *SKAFFOLD_SYNC, data=skaffold_tar(files))


def start_to_ready(
    image: str,
    *,
    network: str | None = None,
    environment: dict[str, str] | None = None,
    timeout: float = 30,
) -> dict[str, float]:
    """One fresh container of `image`, run the chart's way, timed to its first /readyz 200:
    `start` from the moment the runtime started it (State.StartedAt: the kubelet's view of a
    container start), `run` from the `podman run` call (creating and mounting included).
    The container is removed afterwards."""
    name = unique("hashstack-start")
    called = time.time()
    run_container(image, name, network=network, environment=environment)
    try:
        url = published_url(name) + "/readyz"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    ready = time.time()
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                logs = podman("logs", name, check=False)
                raise AssertionError(f"{url} not ready in {timeout} s:\n{logs.stderr[-3000:]}")
            time.sleep(0.01)
        started_ns = int(
            podman("inspect", "--format", "{{.State.StartedAt.UnixNano}}", name).stdout
        )
        return {"start": ready - started_ns / 1e9, "run": ready - called}
    finally:
        remove_containers(name)


@contextmanager
def empty_store() -> Iterator[Path]:
    """A separate, empty podman image store (for `root=`): a pull into it really downloads
    every layer. Removed afterwards, with anything run or pulled into it."""
    # Short on purpose: podman refuses a runroot path longer than 50 characters.
    root = Path(tempfile.mkdtemp(prefix="hs-store-"))
    try:
        yield root
    finally:
        podman("rm", "--all", "--force", "--time", "2", root=root, check=False)
        podman("rmi", "--all", "--force", root=root, check=False)
        shutil.rmtree(root, ignore_errors=True)


def pull_seconds(refs: Sequence[str], root: Path) -> float:
    """Seconds to pull `refs` (from a plain-HTTP registry on localhost) into the store `root`,
    one after another; an empty store makes every layer come over the wire."""
    start = time.monotonic()
    for ref in refs:
        podman("pull", "--quiet", "--tls-verify=false", ref, root=root, timeout=300)
    return time.monotonic() - start


def service_start_times(
    images: dict[str, str], etcd_image: str, starts: int
) -> dict[str, list[dict[str, float]]]:
    """service -> `starts` timings of start_to_ready, each service with what its /readyz needs:
    persistence a real etcd (the test etcd image: its first etcd connection is part of the
    time), hash a running persistence; all on a podman network of their own, removed after."""
    network = unique("hashstack-start")
    podman("network", "create", network)
    helpers = [unique("hashstack-start-etcd"), unique("hashstack-start-persistence")]
    try:
        run_container(
            etcd_image, helpers[0], network=network, aliases=["etcd"], publish=False,
            environment={"ETCD_ADVERTISE_CLIENT_URLS": "http://etcd:2379"}, read_only=False,
        )  # fmt: skip
        etcd = {"ETCD_ENDPOINTS": "http://etcd:2379", "COUNTER_KEY": "/hashstack-start/counter"}
        run_container(
            images["persistence"], helpers[1], network=network, aliases=["persistence"],
            environment=etcd,
        )  # fmt: skip
        wait_http(published_url(helpers[1]) + "/readyz", helpers[1], timeout=60)
        environments = {
            "hello": {},
            "persistence": etcd,
            "hash": {"PERSISTENCE_URL": "http://persistence:8080"},
        }
        return {
            service: [
                start_to_ready(images[service], network=network, environment=environments[service])
                for _ in range(starts)
            ]
            for service in SERVICES
        }
    finally:
        remove_containers(*helpers)
        podman("network", "rm", "--force", network, check=False)

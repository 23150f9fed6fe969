"""The seed's registry flow: push to a real registry on localhost, pull back, run what came back."""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from localstack import free_port
from tests.support import podman as pm
from tests.support.measurements import record
from tests.support.wait import wait_until

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry as a process on 127.0.0.1, with the project's config file."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("docker-registry is not installed (ci/install-deps.sh installs it)")
    # The seed's name is localhost:5000; another port only when 5000 is taken on this machine.
    port = 5000 if port_is_free(5000) else free_port()
    data = tmp_path_factory.mktemp("registry")
    log = (data / "registry.log").open("w")
    process = subprocess.Popen(
        [binary, "serve", str(pm.ROOT / "ci" / "images" / "registry.yml")],
        env={
            **pm.env(),
            "REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}",
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(data / "store"),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def answers() -> bool:
            assert process.poll() is None, (data / "registry.log").read_text()
            try:
                return requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(answers, 20, "the registry answering /v2/", interval=0.2)
        yield f"localhost:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def registry_digest(registry: str, repository: str, tag: str) -> str:
    response = requests.head(
        f"http://{registry.replace('localhost', '127.0.0.1')}/v2/{repository}/manifests/{tag}",
        headers={"Accept": MANIFEST_TYPES},
        timeout=10,
    )
    assert response.status_code == 200, response.status_code
    return response.headers["Docker-Content-Digest"]


def test_push_pull_run(
    images: dict[str, str], image_tag: str, registry: str, scratch_store: Path
) -> None:
    # `make push REGISTRY=...` is this script.
    start = time.monotonic()
    out = pm.script("ci/images.sh", "push", registry, extra_env={"TAG": image_tag})
    record("push of the three images (s)", round(time.monotonic() - start, 1))
    pushed = dict(
        re.findall(rf"pushed {re.escape(registry)}/(hashstack/\w+):\S+@(sha256:\w+)", out)
    )
    assert set(pushed) == {f"hashstack/{svc}" for svc in pm.SERVICES}, out

    catalog = requests.get(f"http://127.0.0.1:{registry.split(':')[1]}/v2/_catalog", timeout=5)
    assert set(pushed) <= set(catalog.json()["repositories"])
    for repository, digest in pushed.items():
        assert registry_digest(registry, repository, image_tag) == digest

    # Gone locally: the registry's names are removed from this store, and the pull goes into a
    # second, empty store, so every layer really comes over the wire.
    for repository in pushed:
        pm.podman("rmi", f"{registry}/{repository}:{image_tag}")
        assert (
            pm.podman(
                "image", "exists", f"{registry}/{repository}:{image_tag}", check=False
            ).returncode
            == 1
        )

    took = pm.pull_seconds([f"{registry}/{r}:{image_tag}" for r in pushed], scratch_store)
    record("pull of the three images into an empty store (s)", round(took, 1))
    for repository, digest in pushed.items():
        pulled = pm.inspect_image(f"{registry}/{repository}:{image_tag}", root=scratch_store)
        assert pulled["Digest"] == digest
        original = pm.inspect_image(images[repository.split("/")[1]])
        # The very image that was built: same configuration, same layers.
        assert pulled["Id"] == original["Id"]
        assert pulled["RootFS"]["Layers"] == original["RootFS"]["Layers"]

    # Run what was pulled: persistence (memory store) and hash, on the host's loopback only.
    names = [
        pm.unique("hashstack-test-pulled-persistence"),
        pm.unique("hashstack-test-pulled-hash"),
    ]
    ports = [free_port(), free_port()]
    try:
        for name, service, port, extra_env in (
            (names[0], "persistence", ports[0], {"STORE": "memory"}),
            (names[1], "hash", ports[1], {"PERSISTENCE_URL": f"http://127.0.0.1:{ports[0]}"}),
        ):
            pm.run_container(
                f"{registry}/hashstack/{service}:{image_tag}", name, publish=False,
                extra=["--network", "host"], root=scratch_store,
                environment={"HOST": "127.0.0.1", "PORT": str(port), **extra_env},
            )  # fmt: skip
        response = wait_ok(f"http://127.0.0.1:{ports[1]}/", names[1], scratch_store)
        number = response.json()["data"]["number"]
        assert response.json()["data"]["hash"] == hashlib.sha256(str(number).encode()).hexdigest()
    finally:
        for name in names:
            pm.podman("rm", "--force", "--time", "2", name, root=scratch_store, check=False)


def wait_ok(url: str, name: str, root: Path) -> requests.Response:
    def ok() -> requests.Response | None:
        try:
            response = requests.get(url, timeout=2)
        except requests.RequestException:
            return None
        return response if response.status_code == 200 else None

    try:
        return wait_until(ok, 30, f"{url} answering 200", interval=0.3)
    except TimeoutError as error:
        logs = pm.podman("logs", name, root=root, check=False)
        raise AssertionError(f"{error}:\n{logs.stdout}{logs.stderr}") from None


def test_registry_test_image_stores_pushes(
    images: dict[str, str], test_images: dict[str, str], containers: list[str]
) -> None:
    """The test-only registry image (Debian binary, non-root) accepts a push: it owns its data."""
    name = pm.unique("hashstack-test-registry")
    containers.append(name)
    pm.podman(
        "run", "--detach", "--name", name, "--publish", "127.0.0.1::5000", test_images["registry"],
    )  # fmt: skip
    url = pm.published_url(name, 5000)
    pm.wait_http(f"{url}/v2/", name)
    target = (
        f"{url.removeprefix('http://').replace('127.0.0.1', 'localhost')}/hashstack/hello:probe"
    )
    pm.podman("tag", images["hello"], target)
    try:
        pm.podman("push", "--quiet", "--tls-verify=false", target, timeout=300)
    finally:
        pm.podman("rmi", target, check=False)
    tags = requests.get(f"{url}/v2/hashstack/hello/tags/list", timeout=5).json()
    assert tags["tags"] == ["probe"]

"""Fixtures of the images rung: the three images are built once per session with ci/images.sh
(the `make images` path: local base image, host wheelhouse, --network=none), under a tag unique to
the session so parallel runs and the user's own images do not collide."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import podman as pm


@pytest.fixture(scope="session")
def test_images(podman_ready: None) -> dict[str, str]:
    pm.script("ci/images.sh", "testimages")
    return {
        "etcd": pm.ETCD_TEST_IMAGE,
        "registry": pm.REGISTRY_TEST_IMAGE,
        "haproxy": pm.HAPROXY_TEST_IMAGE,
    }


@pytest.fixture
def network(podman_ready: None) -> Iterator[str]:
    """A podman network of its own (netavark + aardvark-dns: names and aliases resolve)."""
    name = pm.unique("hashstack-test")
    pm.podman("network", "create", name)
    yield name
    attached = pm.podman(
        "ps", "--all", "--filter", f"network={name}", "--format", "{{.Names}}", check=False
    ).stdout.split()
    pm.remove_containers(*attached)
    pm.podman("network", "rm", "--force", name, check=False)


@pytest.fixture
def containers() -> Iterator[list[str]]:
    """Names appended here are removed after the test, whatever happened."""
    names: list[str] = []
    yield names
    pm.remove_containers(*names)


@pytest.fixture
def scratch_store() -> Iterator[Path]:
    """A separate, empty podman image store: a pull into it really downloads every layer."""
    with pm.empty_store() as root:
        yield root


@pytest.fixture(scope="module")
def module_store() -> Iterator[Path]:
    """A separate store shared by one module's tests (e.g. a node's image store)."""
    with pm.empty_store() as root:
        yield root

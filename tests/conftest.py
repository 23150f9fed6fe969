"""Shared by every rung: the markers (tests/support/markers.py) and the three service images,
built once per session for the images rung and the skaffold sync test alike. Fixtures only;
each rung's conftest wires its own from tests/support."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest

from tests.support import markers, measurements
from tests.support import podman as pm
from tests.support.measurements import record

# etcd3 needs protobuf's pure-Python backend; set before any test imports it (see ci/env.sh).
os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"


def pytest_configure(config: pytest.Config) -> None:
    measurements.start_session(config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    measurements.summary(terminalreporter)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markers.apply(items)


@pytest.fixture(scope="session")
def podman_ready() -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (ci/install-deps.sh installs it)")
    info = pm.podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False)
    if info.returncode != 0:
        pytest.skip(f"podman cannot run here: {info.stderr.strip().splitlines()[-1:]}")


@pytest.fixture(scope="session")
def image_tag() -> str:
    return pm.unique("test")


@pytest.fixture(scope="session")
def images(podman_ready: None, image_tag: str) -> Iterator[dict[str, str]]:
    """service -> image reference, built by `ci/images.sh build` exactly as `make images` does."""
    start = time.monotonic()
    pm.script("ci/images.sh", "build", extra_env={"TAG": image_tag})
    record(
        "build of the three images (s, base and wheelhouse cached or made)",
        round(time.monotonic() - start, 1),
    )
    refs = {svc: f"localhost/hashstack/{svc}:{image_tag}" for svc in pm.SERVICES}
    yield refs
    # Only this session's tags go; the layers stay in the build cache for the next run.
    for ref in refs.values():
        pm.podman("rmi", ref, check=False)

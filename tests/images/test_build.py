"""The three images as built offline by ci/images.sh: metadata, size, contents."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.chart.rendering import CHART_VERSION
from tests.support import podman as pm
from tests.support.measurements import record

MB = 1_000_000
# Each service image, uncompressed as podman reports it (issue 24). The images are about 51 MB
# today: the rest is headroom for planned dependencies (OpenTelemetry).
SIZE_LIMIT = 60 * MB
CONTENTS = pm.ROOT / "images" / "contents.txt"


def rootfs_tool() -> ModuleType:
    """images/imagefs/rootfs.py, the build's own contents check (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("rootfs", pm.ROOT / "images/imagefs/rootfs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mounted(images: dict[str, str]) -> Iterator[dict[str, Path]]:
    """service -> the image's root filesystem, mounted read-only by podman (nothing runs)."""
    roots = {}
    try:
        for service, ref in images.items():
            roots[service] = Path(pm.podman("image", "mount", ref).stdout.strip())
        yield roots
    finally:
        for ref in images.values():
            pm.podman("image", "unmount", ref, check=False)


@pytest.mark.parametrize("service", pm.SERVICES)
def test_image_metadata(images: dict[str, str], service: str) -> None:
    config = pm.inspect_image(images[service])["Config"]
    assert config["User"] == "10001:10001"
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Entrypoint"] == [
        "/opt/venv/bin/gunicorn",
        "-c",
        "python:hashstack.gunicorn_conf",
    ]
    assert config["Cmd"] == [f"hashstack.{service}:create_app()"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONPATH"] == "/app"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == f"hashstack-{service}"
    # The release version, which ci/version.py keeps in images/pyproject.toml too.
    assert labels["org.opencontainers.image.version"] == CHART_VERSION
    assert labels["org.opencontainers.image.revision"]
    assert "org.opencontainers.image.source" in labels


def test_image_sizes(images: dict[str, str]) -> None:
    # The base only feeds the builder stage: the images are FROM scratch.
    record(
        "base image size (MB, builder only)", round(pm.inspect_image(pm.BASE_IMAGE)["Size"] / MB, 1)
    )
    for service, ref in images.items():
        size = int(pm.inspect_image(ref)["Size"])
        record(f"{service} image size (MB)", round(size / MB, 1))
        assert size <= SIZE_LIMIT, f"{service} is {size / MB:.1f} MB (limit {SIZE_LIMIT / MB:.0f})"


@pytest.mark.parametrize("service", pm.SERVICES)
def test_image_holds_exactly_the_contents_list(mounted: dict[str, Path], service: str) -> None:
    tool = rootfs_tool()
    paths = tool.entries(mounted[service])
    problems = tool.differences(tool.read_list(CONTENTS.read_text()), paths)
    assert not problems, "\n".join(problems)
    # Nothing to run a script with, nor to install anything.
    for absent in ("/bin/sh", "/usr/bin/sh", "/usr/bin/bash", "/usr/bin/dpkg", "/usr/bin/apt"):
        assert absent not in paths
    assert not [p for p in paths if "/pip/" in p or p.startswith("/usr/share/")]


def test_contents_check_names_what_differs() -> None:
    # The check itself: an extra path and a missing one are both reported, `?` lines are optional.
    tool = rootfs_tool()
    lines = tool.read_list("/etc/passwd  # why\n/usr/lib/*.so.*\n?/lib64  # amd64 only\n")
    assert tool.differences(lines, {"/etc/passwd", "/usr/lib/x/libc.so.6"}) == []
    problems = tool.differences(lines, {"/etc/passwd", "/bin/sh"})
    assert problems == [
        "not on the list: /bin/sh",
        "on the list but not in the image: /usr/lib/*.so.*",
    ]


def test_targets_share_all_layers(images: dict[str, str]) -> None:
    # One dependency layer for the three services: only the command differs.
    layers = {svc: pm.inspect_image(ref)["RootFS"]["Layers"] for svc, ref in images.items()}
    assert layers["hello"] == layers["persistence"] == layers["hash"]


def test_image_contents(images: dict[str, str]) -> None:
    # Checked from inside, as the image's own user, with the root filesystem read-only; in
    # python, since the image has no shell.
    probe = """
import importlib.util, json, os, shutil
import hashstack, flask, gunicorn, etcd3, prometheus_client
print(json.dumps({
    "ids": [os.getuid(), os.getgid()],
    "tar": shutil.which("tar"),
    "shell": shutil.which("sh") or shutil.which("bash"),
    "app_writable": os.access("/app/hashstack", os.W_OK),
    "app_owner": os.stat("/app/hashstack").st_uid,
    "tmp_writable": os.access("/tmp", os.W_OK),
    "compiler": shutil.which("gcc") or shutil.which("cc"),
    "pip": importlib.util.find_spec("pip") is not None,
    "pyc": len([f for f in os.listdir("/app/hashstack/__pycache__") if f.endswith(".pyc")]),
}))
"""
    out = pm.podman(
        "run", "--rm", "--network=none", "--read-only", "--tmpfs", "/tmp",
        "--entrypoint", "python3", images["hash"], "-c", probe,
    ).stdout  # fmt: skip
    found = json.loads(out)
    assert found["ids"] == [10001, 10001]
    assert found["tar"] == "/usr/bin/tar"  # skaffold's file sync runs tar in the container
    assert found["shell"] is None
    assert found["app_writable"] is False
    assert found["app_owner"] == 0
    assert found["tmp_writable"] is True
    assert found["compiler"] is None
    assert found["pip"] is False
    assert found["pyc"] >= 5, "the source is byte-compiled at build time"

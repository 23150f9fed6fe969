"""The three images as built offline by ci/images.sh: metadata, size, contents."""

from __future__ import annotations

import pytest

from tests.chart.rendering import CHART_VERSION
from tests.support import podman as pm
from tests.support.measurements import record

MB = 1_000_000
# The goal: the service adds at most 40 MB to the Python base image.
SIZE_BUDGET = 40 * MB


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
    base = int(pm.inspect_image(pm.BASE_IMAGE)["Size"])
    record("base image size (MB)", round(base / MB, 1))
    for service, ref in images.items():
        size = int(pm.inspect_image(ref)["Size"])
        record(f"{service} image size (MB)", f"{size / MB:.1f} (base + {(size - base) / MB:.1f})")
        assert size - base <= SIZE_BUDGET, f"{service} adds {(size - base) / MB:.1f} MB to the base"


def test_targets_share_all_layers(images: dict[str, str]) -> None:
    # One dependency layer for the three services: only the command differs.
    layers = {svc: pm.inspect_image(ref)["RootFS"]["Layers"] for svc, ref in images.items()}
    assert layers["hello"] == layers["persistence"] == layers["hash"]


def test_image_contents(images: dict[str, str]) -> None:
    # Checked from inside, as the image's own user, with the root filesystem read-only.
    probe = (
        "set -e; id -u; id -g; "
        "command -v tar; "  # skaffold's file sync runs tar in the container
        "test ! -w /app/hashstack && echo app-read-only; "
        "stat -c %u /app/hashstack; "
        "test -w /tmp && echo tmp-writable; "
        "! command -v gcc && ! command -v cc && echo no-compiler; "
        "! /opt/venv/bin/python -m pip --version 2>/dev/null && echo no-pip; "
        "python3 -c 'import hashstack, flask, gunicorn, etcd3, prometheus_client' && echo imports; "
        "ls /app/hashstack/__pycache__ | grep -c pyc"
    )
    out = pm.podman(
        "run", "--rm", "--network=none", "--read-only", "--tmpfs", "/tmp",
        "--entrypoint", "sh", images["hash"], "-c", probe,
    ).stdout.split()  # fmt: skip
    assert out[:2] == ["10001", "10001"]
    assert out[2].endswith("/tar")
    assert out[3:9] == ["app-read-only", "0", "tmp-writable", "no-compiler", "no-pip", "imports"]
    assert int(out[9]) >= 5, "the source is byte-compiled at build time"

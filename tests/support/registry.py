"""A real OCI registry for the chart and bundle tests: Debian's docker-registry (CNCF
distribution) as a process on 127.0.0.1, plain HTTP, with the project's config file."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localstack import LOOPBACK, ROOT, Supervised, free_port, wait_until_answers

# The media type of a Helm chart's content layer in an OCI manifest.
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def proxy_on_loopback(cfg: str, upstream: str, registry: str, listen: int, health: int) -> str:
    """The chart's node-proxy haproxy.cfg with only its addresses moved onto loopback: the
    registry Service `upstream` becomes `registry`, the pod's ports 5000 (pulls) and 8404
    (health) become `listen` and `health`."""
    cfg = cfg.replace(upstream, registry)
    cfg = cfg.replace("bind :5000", f"bind {LOOPBACK}:{listen}")
    return cfg.replace("bind :8404", f"bind {LOOPBACK}:{health}")


@dataclass
class Registry(Supervised):
    data_dir: Path = Path()
    port: int = 0

    @property
    def address(self) -> str:
        """What clients name it: localhost, which podman and helm treat as plain HTTP."""
        return f"localhost:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Registry:
        binary = shutil.which("docker-registry")
        if binary is None:
            pytest.skip("docker-registry is not installed (ci/install-deps.sh installs it)")
        self.port = self.port or free_port()
        env = {
            **os.environ,
            "REGISTRY_HTTP_ADDR": f"{LOOPBACK}:{self.port}",
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(self.data_dir / "store"),
        }
        self.spawn([binary, "serve", str(ROOT / "ci" / "images" / "registry.yml")], env)
        try:
            wait_until_answers(f"{self.url}/v2/", timeout=20)
        except TimeoutError:
            self.stop()
            raise AssertionError(f"registry did not start:\n{self.log_text()}") from None
        return self

    def get(self, path: str, method: str = "GET") -> tuple[dict[str, str], bytes]:
        request = urllib.request.Request(
            f"{self.url}/v2/{path}", method=method, headers={"Accept": MANIFEST_TYPES}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(response.headers), response.read()

    def manifest(self, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
        """(digest, manifest) of repository:reference as the registry serves it."""
        headers, body = self.get(f"{repository}/manifests/{reference}")
        return headers["Docker-Content-Digest"], json.loads(body)

    def blob(self, repository: str, digest: str) -> bytes:
        return self.get(f"{repository}/blobs/{digest}")[1]

    def repositories(self) -> list[str]:
        return list(json.loads(self.get("_catalog")[1])["repositories"])


@contextmanager
def running_registry(data_dir: Path) -> Iterator[Registry]:
    registry = Registry("registry", data_dir / "registry.log", data_dir=data_dir).start()
    try:
        yield registry
    finally:
        registry.stop(timeout=10)

"""Clients the cluster suite drives: the helm CLI and hash through the API server's proxy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pykube
import pytest
from rendered import CHART, ROOT, Rendered

from .helpers import (
    helm_set_args,
    image_values,
    kubeconfig_candidates,
    parse_hash_answer,
    service_proxy_path,
)

__all__ = [
    "CHART",
    "RELEASE",
    "ROOT",
    "HashClient",
    "Helm",
    "Rendered",
    "image_overrides",
    "render",
]

RELEASE = os.environ.get("HASHSTACK_E2E_RELEASE", "hashstack")


def render(values: dict[str, str] | None = None, values_files: tuple[Path, ...] = ()) -> Rendered:
    """The suite's release as `Helm.upgrade_install(values, values_files)` installs it: where the
    tests take names, selectors, images and ports from (rendered once per set of values)."""
    return Rendered.of(values, values_files, release=RELEASE)


def find_kubeconfig(option: str | None) -> Path | None:
    for path in kubeconfig_candidates(option, os.environ, Path.home()):
        if path.is_file():
            return path
    return None


def unreachable_reason(option: str | None) -> str | None:
    """None when a cluster answers; otherwise one line saying why the suite cannot run."""
    path = find_kubeconfig(option)
    if path is None:
        return "no reachable cluster: no kubeconfig (set KUBECONFIG, or run `make e2e` for kind)"
    try:
        api = pykube.HTTPClient(pykube.KubeConfig.from_file(str(path)), timeout=5)
        server = api.url
        api.version  # noqa: B018 - the property performs GET /version
    except Exception as exc:  # whatever failed, there is no usable cluster
        first_line = (str(exc).splitlines() or [""])[0][:120]
        return f"no reachable cluster: {path}: {type(exc).__name__}: {first_line}"
    if shutil.which(os.environ.get("HELM", "helm")) is None:
        return f"cluster {server} reachable but helm is not on PATH (run ci/install-tools.sh)"
    return None


class Helm:
    """The helm CLI bound to one kubeconfig and namespace."""

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        self.binary = os.environ.get("HELM", "helm")
        self.kubeconfig = kubeconfig
        self.namespace = namespace

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, *args, "--kubeconfig", self.kubeconfig, "--namespace", self.namespace]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            output = f"{proc.stdout}\n{proc.stderr}"
            pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output}")
        return proc

    def upgrade_install(
        self, values: dict[str, Any], values_files: tuple[Path, ...] = (), release: str = RELEASE
    ) -> None:
        files = [arg for path in values_files for arg in ("--values", str(path))]
        self.run(
            "upgrade", "--install", release, str(CHART), "--wait", "--timeout", "10m",
            *files, *helm_set_args(values),
        )  # fmt: skip

    def history(self) -> list[dict[str, Any]]:
        return list(json.loads(self.run("history", RELEASE, "--output", "json").stdout))


class HashClient:
    """Calls hash through the API server's service proxy with the kubeconfig's credentials: its
    Service and the port that leads to its API, as `rendered` (default: the release with the
    suite's image values) names them."""

    def __init__(
        self, api: pykube.HTTPClient, namespace: str, rendered: Rendered | None = None
    ) -> None:
        rendered = rendered or render(image_overrides())
        service = rendered.name("Service", "hash")
        port = rendered.service_port("hash", rendered.api_port("hash"))
        self.session = api.session
        self.url = api.url + service_proxy_path(namespace, service, port.ref)

    def call(self) -> tuple[int, int | None]:
        """(status, number); number is None unless hash answered a valid 200."""
        try:
            resp = self.session.get(self.url, timeout=10)
        except Exception:  # a reset while pods are deleted: a failed call, not a bug
            return 0, None
        if resp.status_code != 200:
            return resp.status_code, None
        return 200, parse_hash_answer(resp.json())


def image_overrides(tag: str | None = None) -> dict[str, str]:
    """Where ci/e2e.sh pushed the images (HASHSTACK_E2E_REGISTRY, HASHSTACK_E2E_TAG; `tag`
    picks another pushed tag); empty means the chart's own defaults."""
    return image_values(
        os.environ.get("HASHSTACK_E2E_REGISTRY", ""),
        tag if tag is not None else os.environ.get("HASHSTACK_E2E_TAG", ""),
    )

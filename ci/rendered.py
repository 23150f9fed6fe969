#!/usr/bin/env python3
"""A release as the chart renders it (`helm template` with the values it is installed with):
where the cluster suite (tests/cluster) and the scripts that talk to a release take object
names, label selectors, images and ports from, so that none is a literal that goes stale when
the chart changes (tests/ci/test_cluster_ports.py holds them to that). Needs helm, no cluster.

    ci/rendered.py [--release R] [--values FILE]... [--set KEY=VALUE]... QUERY ARGS...

    name KIND COMPONENT        metadata.name of the KIND whose app.kubernetes.io/name is COMPONENT
    service-port COMPONENT     the number of COMPONENT's Service port that leads to its API (the
                               container port its readiness probe asks)
    service-port-ref COMPONENT the same port as the API server's proxy path names it
    host-port COMPONENT        the hostPort COMPONENT's workload binds on every node
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "hashstack"
NAME = "app.kubernetes.io/name"
HOOK = "helm.sh/hook"
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass(frozen=True)
class Port:
    """A container port: its name (may be empty) and number."""

    name: str
    number: int

    @property
    def ref(self) -> str:
        """How a Service's targetPort or the API server's proxy path names it."""
        return self.name or str(self.number)


def helm_set_args(values: Mapping[str, str | int | bool]) -> list[str]:
    """`--set key=value` pairs in a stable order (so revisions differ only by real changes)."""
    args: list[str] = []
    for key in sorted(values):
        value = values[key]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["--set", f"{key}={text}"]
    return args


@dataclass(frozen=True)
class Rendered:
    objects: tuple[dict[str, Any], ...]
    release: str

    @classmethod
    def of(
        cls,
        values: Mapping[str, str | int | bool] | None = None,
        values_files: tuple[Path, ...] = (),
        release: str = "hashstack",
        chart: Path = CHART,
        namespace: str | None = None,
    ) -> Rendered:
        """What `helm upgrade --install RELEASE CHART -f FILES --set VALUES [-n NAMESPACE]`
        installs."""
        return _render(
            tuple(sorted((values or {}).items())), tuple(map(str, values_files)), release,
            str(chart), namespace,
        )  # fmt: skip

    def find(self, kind: str, component: str, *, hook: bool = False) -> list[dict[str, Any]]:
        """The objects of `kind` whose app.kubernetes.io/name is `component`; hooks (Jobs, test
        Pods) only with hook=True."""
        return [
            o for o in self.objects
            if o["kind"] == kind and o["metadata"].get("labels", {}).get(NAME) == component
            and (HOOK in (o["metadata"].get("annotations") or {})) == hook
        ]  # fmt: skip

    def one(self, kind: str, component: str, *, hook: bool = False) -> dict[str, Any]:
        found = self.find(kind, component, hook=hook)
        if len(found) != 1:
            names = [o["metadata"]["name"] for o in found]
            raise LookupError(f"{len(found)} {kind} objects of {component} rendered: {names}")
        return found[0]

    def name(self, kind: str, component: str) -> str:
        return str(self.one(kind, component)["metadata"]["name"])

    def workload(self, component: str) -> dict[str, Any]:
        """The Deployment, StatefulSet or DaemonSet of `component`."""
        found = [o for kind in WORKLOADS for o in self.find(kind, component)]
        if len(found) != 1:
            raise LookupError(f"{len(found)} workloads of {component} rendered")
        return found[0]

    def selector(self, component: str) -> dict[str, str]:
        """The labels the workload of `component` selects its pods by."""
        return dict(self.workload(component)["spec"]["selector"]["matchLabels"])

    def container(self, component: str) -> dict[str, Any]:
        """The workload's first container (the service itself; sidecars come after it)."""
        return dict(self.workload(component)["spec"]["template"]["spec"]["containers"][0])

    def container_port(self, component: str, port: str | int) -> Port:
        for p in self.container(component).get("ports", []):
            if port in (p.get("name"), p["containerPort"]):
                return Port(p.get("name", ""), int(p["containerPort"]))
        raise LookupError(f"{component} renders no container port {port!r}")

    def api_port(self, component: str) -> Port:
        """The port the container's readiness probe asks: the one it serves its API on."""
        probe = self.container(component)["readinessProbe"]
        action = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
        if action is None:
            raise LookupError(f"{component}'s readiness probe names no port")
        return self.container_port(component, action["port"])

    def env(self, component: str) -> dict[str, str]:
        """The container's environment as the chart sets it: the ConfigMaps of its envFrom,
        then its env values (references to Secrets and fields left out)."""
        container = self.container(component)
        maps = {o["metadata"]["name"]: o.get("data") or {} for o in self.objects
                if o["kind"] == "ConfigMap"}  # fmt: skip
        found: dict[str, str] = {}
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref:
                prefix = source.get("prefix", "")
                found.update({prefix + k: str(v) for k, v in maps.get(ref["name"], {}).items()})
        for entry in container.get("env", []):
            if "value" in entry:
                found[entry["name"]] = str(entry["value"])
        return found

    def metrics_port(self, component: str) -> Port:
        """The port the image serves /metrics on: its METRICS_PORT, as the chart sets it."""
        env = self.env(component)
        if env.get("METRICS_PORT") is None:
            raise LookupError(f"{component} renders no METRICS_PORT")
        return self.container_port(component, int(env["METRICS_PORT"]))

    def service(self, component: str) -> dict[str, Any]:
        """The component's Service (its headless sibling, if any, left out)."""
        found = [s for s in self.find("Service", component) if s["spec"].get("clusterIP") != "None"]
        if len(found) != 1:
            raise LookupError(f"{len(found)} Services of {component} rendered")
        return found[0]

    def service_port(self, component: str, target: Port) -> Port:
        """The Service port that leads to the container port `target`."""
        for p in self.service(component)["spec"]["ports"]:
            if p.get("targetPort", p["port"]) in (target.name, target.number):
                return Port(p.get("name", ""), int(p["port"]))
        raise LookupError(f"no Service port of {component} leads to {target}")

    def host_ports(self, component: str) -> list[tuple[int, str | None]]:
        """(hostPort, hostIP) of every container port of the workload that binds the node."""
        ports = [p for c in self.workload(component)["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", []) if "hostPort" in p]  # fmt: skip
        return [(int(p["hostPort"]), p.get("hostIP")) for p in ports]

    def image(self, component: str) -> str:
        return str(self.container(component)["image"])

    def kept_claims(self) -> tuple[set[str], list[str]]:
        """What `helm uninstall` leaves of the release's volumes: the names of its
        PersistentVolumeClaims marked helm.sh/resource-policy: keep, and the name prefixes
        (`<template>-<set>-`) of the claims its StatefulSets' volumeClaimTemplates make, which
        Kubernetes never deletes with the set."""
        kept = {
            o["metadata"]["name"] for o in self.objects
            if o["kind"] == "PersistentVolumeClaim"
            and (o["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") == "keep"
        }  # fmt: skip
        prefixes = [
            f"{t['metadata']['name']}-{o['metadata']['name']}-"
            for o in self.objects if o["kind"] == "StatefulSet"
            for t in o["spec"].get("volumeClaimTemplates", [])
        ]  # fmt: skip
        return kept, prefixes

    def test_pods(self, component: str) -> list[str]:
        """Names of the helm test Pods that check `component` (labelled `<component>-test`)."""
        return [o["metadata"]["name"] for o in self.find("Pod", f"{component}-test", hook=True)]


@functools.cache
def _render(
    values: tuple[tuple[str, str | int | bool], ...],
    values_files: tuple[str, ...],
    release: str,
    chart: str,
    namespace: str | None,
) -> Rendered:
    files = [arg for path in values_files for arg in ("--values", path)]
    where = ["--namespace", namespace] if namespace else []
    cmd = [os.environ.get("HELM", "helm"), "template", release, chart, *where, *files,
           *helm_set_args(dict(values))]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    objects = tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)
    return Rendered(objects, release)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", default="hashstack")
    parser.add_argument("--values", action="append", default=[], type=Path)
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    parser.add_argument("query", choices=["name", "service-port", "service-port-ref", "host-port"])
    parser.add_argument("args", nargs="+")
    opts = parser.parse_args(argv)
    values = dict(item.split("=", 1) for item in opts.sets)
    rendered = Rendered.of(values, tuple(opts.values), release=opts.release)
    try:
        if opts.query == "name":
            kind, component = opts.args
            print(rendered.name(kind, component))
        elif opts.query in ("service-port", "service-port-ref"):
            (component,) = opts.args
            port = rendered.service_port(component, rendered.api_port(component))
            print(port.number if opts.query == "service-port" else port.ref)
        else:
            (component,) = opts.args
            [(host_port, _)] = rendered.host_ports(component)
            print(host_port)
    except (LookupError, ValueError) as error:
        print(f"rendered.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

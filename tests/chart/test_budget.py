"""The release fits where people start: one 2-CPU node (kind, minikube, a small CI runner) beside
the cluster's own pods. Every pod of the rendered release is counted with what the scheduler
reserves for it, for the defaults and every ci values file; the production preset
(values-production.yaml) renders bigger. The figures behind the requests: docs/scaling.md."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest

from .k8s import by_kind, pod_requests, quantity
from .rendering import CI_VALUES, PRESETS, RenderFn

MI = quantity("1Mi")
# One node of 2 CPUs. kind's own pods request 0.95 CPU (kube-apiserver 250m, controller-manager
# 200m, scheduler 100m, etcd 100m, CoreDNS 2 x 100m, kindnet 100m; minikube's about 0.75), and
# the HPAs of the HA shape need metrics-server (100m; kind has none of its own). What is left,
# 2 - 0.95 - 0.1 = 0.95 CPU, holds the release at rest, plus what an upgrade adds while it rolls
# (one surge pod per Deployment, all rolling at once) and one hook or test pod (Helm runs them
# one at a time).
CPU_BUDGET = quantity("2") - quantity("950m") - quantity("100m")
# Memory, on a node of 2 GiB (a small VM): kind's own pods request 290Mi (CoreDNS 2 x 70Mi, etcd
# 100Mi, kindnet 50Mi), metrics-server 200Mi, and the kubelet, the runtime and the kernel use
# about 300 MiB that no request shows: 2048 - 290 - 200 - 300 = 1258 MiB, so 1.2Gi.
MEMORY_BUDGET = quantity("1.2Gi")
# A pod's own probes and metrics scrapes never reach an HPA's target: it scales at no less
# than this much CPU per pod on average (about 100 req/s through hash, docs/scaling.md).
HPA_FLOOR = quantity("100m")
SMALL = [v for v in CI_VALUES if v not in PRESETS]


@dataclass
class Footprint:
    """What the release asks the scheduler for: (CPU cores, memory bytes) per line."""

    steady: dict[str, tuple[int, Fraction, Fraction]] = field(default_factory=dict)
    surge: dict[str, tuple[int, Fraction, Fraction]] = field(default_factory=dict)
    transient: dict[str, tuple[Fraction, Fraction]] = field(default_factory=dict)

    @staticmethod
    def _sum(rows: dict[str, tuple[int, Fraction, Fraction]], i: int) -> Fraction:
        return sum((row[0] * row[i] for row in rows.values()), Fraction(0))

    def total(self, i: int) -> Fraction:
        """At rest, plus every surge pod, plus the largest transient pod; i=1 CPU, 2 memory."""
        biggest = max((row[i - 1] for row in self.transient.values()), default=Fraction(0))
        return self._sum(self.steady, i) + self._sum(self.surge, i) + biggest

    def at_rest(self, i: int) -> Fraction:
        return self._sum(self.steady, i)

    def table(self) -> str:
        def row(name: str, count: object, cpu: Fraction, memory: Fraction) -> str:
            return (
                f"{name:<48} {count!s:>5} {float(cpu * 1000):>6.0f}m {float(memory / MI):>6.0f}Mi"
            )

        lines = [f"{'pod':<48} {'count':>5} {'cpu':>7} {'memory':>8}"]
        lines += [row(name, *r) for name, r in self.steady.items()]
        lines += [row(f"surge {name}", *r) for name, r in self.surge.items()]
        lines += [row(f"one at a time {name}", "", *r) for name, r in self.transient.items()]
        lines.append(row("total", "", self.total(1), self.total(2)))
        return "\n".join(lines)


def _surge(deployment: dict[str, Any], replicas: int) -> int:
    strategy = deployment["spec"].get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        return math.ceil(replicas * int(surge[:-1]) / 100)
    return int(surge)


def footprint(objects: list[dict[str, Any]]) -> Footprint:
    """Deployments x replicas (an HPA's minReplicas when one scales it), StatefulSets x
    replicas, DaemonSets x 1 node; hook and test pods, Jobs and CronJobs one at a time."""
    hpa_min = {
        h["spec"]["scaleTargetRef"]["name"]: int(h["spec"]["minReplicas"])
        for h in by_kind(objects, "HorizontalPodAutoscaler")
    }
    found = Footprint()
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        hook = "helm.sh/hook" in (obj["metadata"].get("annotations") or {})
        spec = obj.get("spec") or {}
        key = f"{kind}/{name}"
        if kind in ("Deployment", "StatefulSet", "DaemonSet") and not hook:
            replicas = 1 if kind == "DaemonSet" else int(spec.get("replicas", 1))
            if kind == "Deployment" and name in hpa_min:
                assert "replicas" not in spec, f"{key}: the HPA owns its replicas"
                replicas = hpa_min[name]
            cpu, memory = pod_requests(spec["template"]["spec"])
            found.steady[key] = (replicas, cpu, memory)
            if kind == "Deployment" and (surge := _surge(obj, replicas)):
                found.surge[key] = (surge, cpu, memory)
        elif kind in ("Job", "CronJob", "Pod"):
            job = spec["jobTemplate"]["spec"] if kind == "CronJob" else spec
            found.transient[key] = pod_requests(spec if kind == "Pod" else job["template"]["spec"])
    assert found.steady, "no pod rendered"
    return found


@pytest.mark.parametrize("values", SMALL)
def test_every_scenario_fits_one_small_node(values: str, render: RenderFn) -> None:
    """Default, HA (what ct installs on kind) and every other ci values file: the release at
    rest, its rollout surge and one hook or test pod fit beside kind's own pods on 2 CPUs."""
    found = footprint(render(values))
    print(f"\n{values}:\n{found.table()}")
    assert found.transient, "the helm test pods are counted"
    assert found.total(1) <= CPU_BUDGET, (
        f"{values}: {float(found.total(1)):.3f} CPU > {float(CPU_BUDGET):.2f}\n{found.table()}"
    )
    assert found.total(2) <= MEMORY_BUDGET, (
        f"{values}: {float(found.total(2) / MI):.0f}Mi > 1.2Gi\n{found.table()}"
    )


def test_the_ha_shape_is_counted_in_full(render: RenderFn) -> None:
    """The HA shape's pods are all there: 3 etcd members, HPAs at their minReplicas."""
    found = footprint(render("ha"))
    counts = {key: row[0] for key, row in found.steady.items()}
    assert counts["StatefulSet/hashstack-etcd"] == 3
    assert counts["Deployment/hashstack-hash"] == counts["Deployment/hashstack-persistence"] == 3
    assert counts["DaemonSet/hashstack-registry-proxy"] == 1
    assert found.at_rest(1) > footprint(render("default")).at_rest(1)


def test_pod_requests_count_init_containers_the_kubernetes_way() -> None:
    def container(cpu: str, memory: str, **extra: str) -> dict[str, Any]:
        return {"resources": {"requests": {"cpu": cpu, "memory": memory}}, **extra}

    spec = {
        "initContainers": [container("300m", "8Mi"), container("10m", "1Gi")],
        "containers": [container("100m", "64Mi"), container("50m", "16Mi")],
    }
    assert pod_requests(spec) == (quantity("300m"), quantity("1Gi"))  # max(init) wins
    spec["initContainers"] = [container("10m", "8Mi")]
    assert pod_requests(spec) == (quantity("150m"), quantity("80Mi"))  # sum(containers) wins
    # A sidecar (restartPolicy Always) runs on beside the app and the later init containers.
    spec["initContainers"] = [
        container("20m", "8Mi", restartPolicy="Always"),
        container("160m", "8Mi"),
    ]
    assert pod_requests(spec) == (quantity("180m"), quantity("88Mi"))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_production_preset_is_bigger(preset: str, render: RenderFn) -> None:
    """The load-based sizing renders, and asks for more than the defaults for every service."""
    small, big = footprint(render("default")), footprint(render(preset))
    print(f"\n{preset}:\n{big.table()}")
    for key, (_, cpu, memory) in small.steady.items():
        _, big_cpu, big_memory = big.steady[key]
        assert big_cpu >= cpu, key
        assert big_memory >= memory, key
    services = [f"Deployment/hashstack-{s}" for s in ("hello", "persistence", "hash")]
    assert all(big.steady[s][1] > small.steady[s][1] for s in services)
    assert big.at_rest(1) > CPU_BUDGET >= small.total(1)


@pytest.mark.parametrize("preset", [None, *sorted(PRESETS)])
def test_hpas_scale_at_a_real_load(preset: str | None, render: RenderFn) -> None:
    """targetCPUUtilizationPercentage is a share of the request: with light requests it must
    still mean a real load per pod, and no more than the pod's 2 workers can use. The HA shape
    alone and with each preset after it (its HPAs, the preset's sizing)."""
    values = f"ha + {preset}" if preset else "ha"
    objects = render("ha", extra=("-f", str(PRESETS[preset])) if preset else ())
    requests = {
        d["metadata"]["name"]: pod_requests(d["spec"]["template"]["spec"])[0]
        for d in by_kind(objects, "Deployment")
    }
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpas
    for hpa in hpas:
        (cpu,) = [m for m in hpa["spec"]["metrics"] if m["resource"]["name"] == "cpu"]
        target = cpu["resource"]["target"]["averageUtilization"] / 100
        scales_at = target * requests[hpa["spec"]["scaleTargetRef"]["name"]]
        name = hpa["metadata"]["name"]
        print(f"{values} {name}: scales out above {float(scales_at * 1000):.0f}m a pod")
        assert HPA_FLOOR <= scales_at <= 1, name

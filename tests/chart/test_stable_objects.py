"""Every object the chart renders is stored as rendered: no perpetual diff under Argo CD or
Flux drift detection. The rules, and the Kubernetes behaviour behind each, are in apiserver.py
(docs/gitops.md lists them); these tests apply them to every ci values file and show that
each rule catches what it is about."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from .apiserver import RULES, autoscaled_replicas, canonical_quantity, nodes
from .k8s import by_kind
from .rendering import CHART, CI_VALUES, NAMESPACE, RELEASE, RenderFn, ci_values_file, run_helm


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("values", CI_VALUES)
def test_objects_are_stored_as_rendered(values: str, rule: str, render: RenderFn) -> None:
    objects = render(values)
    problems = [p for obj in objects for p in RULES[rule](obj)]
    assert not problems, "\n".join(problems)


# Switches no ci values file turns on: etcd's CronJobs, restore Job and TLS; no volumes.
FEATURES = {
    "etcd-jobs-and-tls": (
        "etcd.backup.enabled=true", "etcd.backup.restore.snapshot=s.db", "etcd.defrag.enabled=true",
        "etcd.tls.enabled=true", "etcd.tls.existingSecret=etcd-tls",
    ),
    "no-volumes": ("etcd.persistence.enabled=false", "registry.persistence.enabled=false"),
}  # fmt: skip


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_optional_objects_are_stored_as_rendered(feature: str, render: RenderFn) -> None:
    extra = tuple(arg for value in FEATURES[feature] for arg in ("--set", value))
    objects = render("default", extra=extra)
    assert len(objects) > len(render("minimal"))
    problems = [p for obj in objects for check in RULES.values() for p in check(obj)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("values", CI_VALUES)
def test_autoscaled_workloads_leave_replicas_to_the_hpa(values: str, render: RenderFn) -> None:
    problems = autoscaled_replicas(render(values))
    assert not problems, "\n".join(problems)


def test_the_rules_see_every_built_in_object(render: RenderFn) -> None:
    """The schema walk reaches the fields the rules are about (else they would pass vacuously):
    the etcd StatefulSet's claim template, quantities, int-or-strings and every port."""
    objects = render("ha")
    found = {n.ref for obj in objects for n in nodes(obj)}
    assert {
        "io.k8s.api.core.v1.PersistentVolumeClaim",
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        "io.k8s.api.core.v1.ContainerPort",
        "io.k8s.api.core.v1.ServicePort",
        "io.k8s.api.networking.v1.NetworkPolicyPort",
    } <= found
    assert by_kind(objects, "HorizontalPodAutoscaler"), "ha autoscales hash and persistence"


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("1000m", "1"), ("1500m", "1500m"), ("0.5", "500m"), ("0.1", "100m"), ("2", "2"),
        ("1000", "1k"), ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("1.5Gi", "1536Mi"),
        ("0.5Gi", "512Mi"), ("64Mi", "64Mi"), ("0.5Ki", "512"), ("128974848", "128974848"),
        ("129e6", "129e6"), ("1e3", "1e3"), ("0Mi", "0"), ("1n", "1n"), ("0.1n", "1n"),
    ],
)  # fmt: skip
def test_canonical_quantity(written: str, stored: str) -> None:
    """resource.Quantity's canonical strings, as `kubectl get -o yaml` shows them."""
    assert canonical_quantity(written) == stored


def _statefulset(render: RenderFn) -> dict[str, Any]:
    (sts,) = by_kind(render("default"), "StatefulSet")
    return copy.deepcopy(sts)


def test_each_rule_catches_its_case(render: RenderFn) -> None:
    """Break the etcd StatefulSet in each rule's way: the rule (and only it) reports it."""
    base = _statefulset(render)
    container = base["spec"]["template"]["spec"]["containers"][0]

    def broken(change: Any) -> dict[str, Any]:
        obj = copy.deepcopy(base)
        change(obj["spec"]["template"]["spec"]["containers"][0], obj)
        return obj

    def strip_type_meta(_: Any, obj: dict[str, Any]) -> None:
        for claim in obj["spec"]["volumeClaimTemplates"]:
            claim.pop("apiVersion", None), claim.pop("kind", None)

    def bad_quantity(c: Any, _: Any) -> None:
        c["resources"]["requests"]["memory"] = "1024Mi"

    def quoted_port(c: Any, _: Any) -> None:
        c["livenessProbe"]["httpGet"]["port"] = "2381"

    def no_protocol(c: Any, _: Any) -> None:
        del c["ports"][0]["protocol"]

    def empty_map(_: Any, obj: dict[str, Any]) -> None:
        obj["spec"]["template"]["spec"]["nodeSelector"] = {}

    def repeated_env(c: Any, _: Any) -> None:
        c["env"].append(dict(c["env"][-1]))

    cases = {
        "embedded-type-meta": strip_type_meta,
        "canonical-quantities": bad_quantity,
        "int-or-string": quoted_port,
        "explicit-protocols": no_protocol,
        "nothing-dropped": empty_map,
        "unique-keys": repeated_env,
    }
    # The HTTPRoute and Job rules are about other kinds: tests of their own below.
    assert set(cases) == set(RULES) - {"gateway-api-defaults", "jobs-are-hooks"}
    assert container["ports"], "the cases need ports"
    assert base["spec"]["volumeClaimTemplates"], "and a claim template"
    for name, change in cases.items():
        obj = broken(change)
        caught = {rule for rule, check in RULES.items() if check(obj)}
        assert caught == {name}, f"{name}: reported by {caught}"


def test_an_httproute_without_the_gateway_defaults_is_caught(render: RenderFn) -> None:
    routes = copy.deepcopy(by_kind(render("ingress"), "HTTPRoute"))
    assert routes
    assert not [p for r in routes for p in RULES["gateway-api-defaults"](r)]
    del routes[0]["spec"]["rules"][0]["backendRefs"][0]["weight"]
    del routes[1]["spec"]["parentRefs"][0]["kind"]
    assert [len(RULES["gateway-api-defaults"](r)) for r in routes] == [1, 1]


def test_a_job_that_is_not_a_hook_is_caught(render: RenderFn) -> None:
    (job,) = copy.deepcopy(by_kind(render("default"), "Job"))
    assert not RULES["jobs-are-hooks"](job)
    del job["metadata"]["annotations"]["helm.sh/hook"]
    assert RULES["jobs-are-hooks"](job)


def test_an_hpa_target_with_replicas_is_caught(render: RenderFn) -> None:
    objects = copy.deepcopy(render("ha"))
    (hpa, *_) = by_kind(objects, "HorizontalPodAutoscaler")
    ref = hpa["spec"]["scaleTargetRef"]
    (target,) = [o for o in by_kind(objects, ref["kind"]) if o["metadata"]["name"] == ref["name"]]
    target["spec"]["replicas"] = 3
    assert autoscaled_replicas(objects)


def test_rendering_is_deterministic(built_chart: Path, helm_bins: dict[str, Path]) -> None:
    """Two renders of the same values are identical (no random or time-based value), so Argo
    CD's repeated `helm template` sees no change between refreshes; and no template asks the
    cluster (`lookup` finds nothing under `helm template`, which is how Argo CD renders)."""
    templates = [p for p in CHART.rglob("templates/**/*") if p.is_file()]
    assert templates
    assert not [p for p in templates if re.search(r"\blookup\b", p.read_text())]
    args = ["template", RELEASE, str(built_chart), "--namespace", NAMESPACE]
    args += ["-f", str(ci_values_file("ha"))]
    first, second = (run_helm(helm_bins["helm"], *args).stdout for _ in range(2))
    assert first == second

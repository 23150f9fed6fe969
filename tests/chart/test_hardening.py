"""What `helm template` accepted but a real cluster, Helm 4 or a chart user would trip over:
one NetworkPolicy switch, repeated list keys, open `global`, the memory store, merged labels,
no version labels on pod templates, test pods outside the mesh."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
import yaml

from .hardening import (
    DuplicateKeyError,
    built_chart,
    load_strict,
    pod_specs,
    render,
    template,
)
from .k8s import PolicyModel, by_kind, named, pods
from .rendering import CHART, HELMS, RELEASE, ROOT, ci_values_file, installed_helms, run_helm
from .subchart import ETCD, ETCD_TLS, REGISTRY, REGISTRY_AUTH, env_of

SELECTOR = ("app.kubernetes.io/name", "app.kubernetes.io/instance")
VERSION_LABELS = ("app.kubernetes.io/version", "helm.sh/chart")


def _pod(objects: list[dict[str, Any]], name: str) -> Any:
    for pod in pods(objects):
        if pod.labels.get("app.kubernetes.io/name") == name and not pod.hook:
            return pod
    raise KeyError(name)


def _model(objects: list[dict[str, Any]]) -> PolicyModel:
    return PolicyModel(list(pods(objects)), by_kind(objects, "NetworkPolicy"))


# --- one NetworkPolicy switch ----------------------------------------------------------


@pytest.mark.parametrize("helm", HELMS)
def test_global_switch_turns_every_chart_policy_off(helm: str) -> None:
    objects = render({"global": {"networkPolicy": {"enabled": False}}}, helm)
    assert by_kind(objects, "NetworkPolicy") == []


@pytest.mark.parametrize("helm", HELMS)
def test_global_switch_turns_every_chart_policy_on(helm: str) -> None:
    objects = render(
        {
            "global": {"networkPolicy": {"enabled": True}},
            "networkPolicy": {"enabled": False},
            "etcd": {"networkPolicy": {"enabled": False}},
            "registry": {"networkPolicy": {"enabled": False}},
        },
        helm,
    )
    names = {p["metadata"]["name"] for p in by_kind(objects, "NetworkPolicy")}
    assert {f"{RELEASE}-default-deny", f"{RELEASE}-etcd", f"{RELEASE}-registry"} <= names


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"networkPolicy": {"enabled": False}},
        {"etcd": {"networkPolicy": {"enabled": False}}},
        {"global": {"networkPolicy": {"enabled": False}}},
    ],
    ids=["all-on", "umbrella-off", "etcd-off", "global-off"],
)
def test_persistence_reaches_etcd_whichever_policies_are_on(values: dict[str, Any]) -> None:
    """Before: with only the umbrella's policies off, etcd's own policy kept persistence out."""
    objects = render(values)
    model = _model(objects)
    persistence, etcd, hash_ = (_pod(objects, n) for n in ("persistence", "etcd", "hash"))
    assert model.allows(persistence, etcd, 2379)
    if by_kind(objects, "NetworkPolicy"):
        # etcd admits its clients by label, not the whole release.
        assert not model.allows(hash_, etcd, 2379)


# --- no repeated keys in lists (Helm 4 server-side apply rejects them) -----------------


def test_etcd_extra_env_may_not_repeat_a_chart_variable() -> None:
    objects = ETCD.render(ETCD_TLS)
    (sts,) = by_kind(objects, "StatefulSet")
    chart_names = list(env_of(sts["spec"]["template"]["spec"]["containers"][0]))
    assert "ETCD_SNAPSHOT_COUNT" in chart_names
    for name in chart_names:
        result = ETCD.template({**ETCD_TLS, "extraEnv": [{"name": name, "value": "1"}]})
        assert result.returncode != 0, f"extraEnv {name} was accepted"
        assert f"etcd.extraEnv: {name} is set twice" in result.stderr


def test_registry_extra_env_may_not_repeat_a_chart_variable() -> None:
    values = {**REGISTRY_AUTH, "httpSecret": {"existingSecret": "s"}}
    (deployment,) = by_kind(REGISTRY.render(values), "Deployment")
    chart_names = list(env_of(deployment["spec"]["template"]["spec"]["containers"][0]))
    assert "OTEL_TRACES_EXPORTER" in chart_names
    for name in chart_names:
        result = REGISTRY.template({**values, "extraEnv": [{"name": name, "value": "1"}]})
        assert result.returncode != 0, f"extraEnv {name} was accepted"
        assert f"registry.extraEnv: {name} is set twice" in result.stderr


@pytest.mark.parametrize("sub", [ETCD, REGISTRY], ids=["etcd", "registry"])
def test_subchart_extra_env_may_not_repeat_itself(sub: Any) -> None:
    twice = [{"name": "EXTRA", "value": "a"}, {"name": "EXTRA", "value": "b"}]
    result = sub.template({"extraEnv": twice})
    assert result.returncode != 0
    assert "EXTRA is set twice" in result.stderr
    ok = sub.render({"extraEnv": [{"name": "ETCD_HEARTBEAT_INTERVAL", "value": "200"}]})
    assert any(
        "ETCD_HEARTBEAT_INTERVAL" in env_of(c) for _, s in pod_specs(ok) for c in s["containers"]
    )


def test_pull_secrets_appear_once_per_pod() -> None:
    objects = render(
        {
            "global": {"imagePullSecrets": ["regcred"]},
            "hash": {"imagePullSecrets": ["regcred", "other"]},
            "etcd": {"imagePullSecrets": ["regcred"]},
            "registry": {"imagePullSecrets": ["regcred", "other"]},
        }
    )
    checked = 0
    for where, spec in pod_specs(objects):
        names = [s["name"] for s in spec.get("imagePullSecrets", [])]
        assert "regcred" in names, where
        assert len(names) == len(set(names)), f"{where}: {names}"
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("values", ["default", "ha", "dev", "ingress", "minimal"])
def test_no_list_repeats_a_name(values: str) -> None:
    """env, ports, volumes, mounts and containers: each name once in every pod."""
    objects = render(yaml.safe_load(ci_values_file(values).read_text()) or {})
    for where, spec in pod_specs(objects):
        for key in ("containers", "initContainers", "volumes", "imagePullSecrets"):
            names = [item["name"] for item in spec.get(key, [])]
            assert not [n for n, c in Counter(names).items() if c > 1], f"{where} {key}"
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for key in ("env", "ports", "volumeMounts"):
                names = [item.get("name", item.get("mountPath")) for item in c.get(key, [])]
                repeats = [n for n, k in Counter(names).items() if k > 1]
                assert not repeats, f"{where} {c['name']} {key}: {repeats}"


# --- global accepts keys the chart does not know -----------------------------------------


@pytest.mark.parametrize("helm", HELMS)
def test_global_accepts_unknown_keys(helm: str) -> None:
    extra = {"global": {"storageClass": "fast", "parentChart": {"anything": [1, 2]}}}
    result = template(extra, helm)
    assert result.returncode == 0, result.stderr
    for sub in (ETCD, REGISTRY):
        assert sub.template(extra, helm=helm).returncode == 0


# --- the memory store runs one pod ----------------------------------------------------------


@pytest.mark.parametrize("helm", HELMS)
@pytest.mark.parametrize(
    "persistence",
    [{"replicaCount": 2}, {"autoscaling": {"enabled": True}}],
    ids=["replicas", "hpa"],
)
def test_memory_store_refuses_more_than_one_pod(helm: str, persistence: dict[str, Any]) -> None:
    values = {"persistence": {"config": {"STORE": "memory"}, **persistence}}
    by_schema = template(values, helm)
    assert by_schema.returncode != 0
    assert "persistence" in by_schema.stderr
    # The template refuses it too, with the reason, when the schema is skipped.
    by_template = template(values, helm, ("--skip-schema-validation",))
    assert by_template.returncode != 0
    assert "STORE=memory keeps the counter in one pod" in by_template.stderr


def test_memory_store_rolls_out_with_recreate() -> None:
    objects = render({"persistence": {"config": {"STORE": "memory"}}})
    deployment = named(objects, "Deployment", f"{RELEASE}-persistence")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    etcd_store = named(render(), "Deployment", f"{RELEASE}-persistence")
    assert etcd_store["spec"]["strategy"]["type"] == "RollingUpdate"


# --- labels: merged as maps, the selector labels winning, no versions on pod templates ----

CLASHING = {
    "global": {"commonLabels": {"team": "numbers", "app.kubernetes.io/name": "global-evil"}},
    "commonLabels": {
        "app.kubernetes.io/component": "mine",
        "app.kubernetes.io/instance": "evil",
        "cost-centre": "42",
    },
    "hash": {"podLabels": {"app.kubernetes.io/name": "evil", "tier": "api"}},
    "etcd": {"commonLabels": {"app.kubernetes.io/instance": "evil"}, "podLabels": {"db": "yes"}},
    "registry": {"podLabels": {"app.kubernetes.io/name": "evil"}},
}


def test_clashing_labels_render_each_key_once_and_keep_the_selectors() -> None:
    result = template(CLASHING)
    assert result.returncode == 0, result.stderr
    try:
        objects = load_strict(result.stdout)
    except DuplicateKeyError as error:
        pytest.fail(f"a label is rendered twice: {error}")
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels["app.kubernetes.io/instance"] == RELEASE, where
        assert "evil" not in labels.values(), where
        # global.commonLabels reach the subcharts' objects as well as the umbrella's.
        assert labels.get("team") == "numbers", where
    for pod in pods(objects):
        assert pod.labels["app.kubernetes.io/instance"] == RELEASE, pod.name
        assert "evil" not in pod.labels.values(), pod.name
        selector = pod.owner.get("spec", {}).get("selector", {}).get("matchLabels")
        if selector:
            assert selector.items() <= pod.labels.items(), pod.name
    hash_pod = _pod(objects, "hash")
    assert hash_pod.labels["tier"] == "api"
    assert hash_pod.labels["app.kubernetes.io/component"] == "mine"
    assert _pod(objects, "etcd").labels["db"] == "yes"


@pytest.mark.parametrize("sub", [ETCD, REGISTRY], ids=["etcd", "registry"])
def test_subchart_pod_templates_carry_no_version_labels(sub: Any) -> None:
    objects = sub.render({})
    for pod in pods(objects):
        if pod.hook:
            continue
        assert not set(VERSION_LABELS) & set(pod.labels), pod.name
        assert set(VERSION_LABELS) <= set(pod.owner["metadata"]["labels"]), pod.name


# --- test pods opt out of service-mesh injection ----------------------------------------


def test_test_pods_opt_out_of_mesh_injection() -> None:
    """Test pods and hook jobs: a mesh sidecar would keep them running after they end."""
    hooks = [p for p in pods(render()) if p.hook]
    assert len(hooks) >= 5
    for pod in hooks:
        annotations = pod.annotations
        assert annotations["sidecar.istio.io/inject"] == "false", pod.name
        assert annotations["linkerd.io/inject"] == "disabled", pod.name


# --- metrics on their own port ------------------------------------------------------------


def test_metrics_have_their_own_port_and_only_the_scraper_reaches_it() -> None:
    values = yaml.safe_load(ci_values_file("ha").read_text())
    objects = render(values)
    model = _model(objects)
    monitoring_only = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    for name in ("hello", "persistence", "hash"):
        service = named(objects, "Service", f"{RELEASE}-{name}")
        ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
        assert ports["metrics"] == (9090, "metrics")
        config = named(objects, "ConfigMap", f"{RELEASE}-{name}")["data"]
        assert config["METRICS_PORT"] == "9090"
        monitor = named(objects, "ServiceMonitor", f"{RELEASE}-{name}")
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
        pod = _pod(objects, name)
        assert model.allows(None, pod, 9090)
        # The scrape rule names the monitoring namespace and the metrics port, nothing else.
        policy = named(objects, "NetworkPolicy", f"{RELEASE}-{name}")
        scrape = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == 9090]
        assert [r["from"] for r in scrape] == [monitoring_only]
    assert not model.allows(None, _pod(objects, "persistence"), 8080)


# --- what chart users expect: overrides, ServiceAccounts, volumes, extra containers ------


def test_default_names_are_unchanged_and_overrides_rename_consistently() -> None:
    default = {(o["kind"], o["metadata"]["name"]) for o in render()}
    assert ("Deployment", f"{RELEASE}-hash") in default
    assert ("NetworkPolicy", f"{RELEASE}-default-deny") in default
    for values, prefix in (
        ({"fullnameOverride": "shop"}, "shop"),
        ({"nameOverride": "numbers"}, f"{RELEASE}-numbers"),
    ):
        objects = render(values)
        names = {(o["kind"], o["metadata"]["name"]) for o in objects}
        for service in ("hello", "persistence", "hash"):
            for kind in ("Deployment", "Service", "ServiceAccount", "ConfigMap"):
                assert (kind, f"{prefix}-{service}") in names
        assert ("NetworkPolicy", f"{prefix}-default-deny") in names
        # Links follow the new names; the subcharts keep theirs.
        config = named(objects, "ConfigMap", f"{prefix}-hash")["data"]
        assert config["PERSISTENCE_URL"] == f"http://{prefix}-persistence-headless:8080"
        assert ("Service", f"{prefix}-persistence-headless") in names
        assert ("StatefulSet", f"{RELEASE}-etcd") in names
        assert _model(objects).allows(_pod(objects, "hash"), _pod(objects, "persistence"), 8080)


def test_service_accounts_per_service() -> None:
    objects = render(yaml.safe_load(ci_values_file("extras").read_text()))
    sa = named(objects, "ServiceAccount", f"{RELEASE}-hash")
    assert sa["metadata"]["annotations"] == {"iam.example.com/role": "hash-reader"}
    assert sa["automountServiceAccountToken"] is False
    persistence = named(objects, "Deployment", f"{RELEASE}-persistence")
    assert persistence["spec"]["template"]["spec"]["serviceAccountName"] == "shared-runner"
    names = {o["metadata"]["name"] for o in by_kind(objects, "ServiceAccount")}
    assert f"{RELEASE}-persistence" not in names
    assert "shared-runner" not in names  # not created: the user's own
    named_sa = render({"hello": {"serviceAccount": {"create": True, "name": "greeter"}}})
    assert named(named_sa, "ServiceAccount", "greeter")
    hello = named(named_sa, "Deployment", f"{RELEASE}-hello")
    assert hello["spec"]["template"]["spec"]["serviceAccountName"] == "greeter"


def test_extra_volumes_and_containers_reach_the_pod_and_stay_restricted() -> None:
    objects = render(yaml.safe_load(ci_values_file("extras").read_text()))
    spec = named(objects, "Deployment", f"{RELEASE}-hash")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["hash", "log-shipper"]
    assert [c["name"] for c in spec["initContainers"]] == ["wait-a-moment"]
    assert {"name": "cache", "emptyDir": {"sizeLimit": "16Mi"}} in spec["volumes"]
    assert {"name": "cache", "mountPath": "/var/cache/hash"} in spec["containers"][0][
        "volumeMounts"
    ]
    for c in spec["containers"][1:] + spec["initContainers"]:
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # A container may still say otherwise for itself.
    own = render(
        {
            "hash": {
                "sidecars": [{"name": "s", "image": "i", "securityContext": {"runAsUser": 2000}}]
            }
        }
    )
    sidecar = named(own, "Deployment", f"{RELEASE}-hash")["spec"]["template"]["spec"]["containers"][
        1
    ]
    assert sidecar["securityContext"]["runAsUser"] == 2000
    assert sidecar["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"extraVolumes": [{"name": "tmp", "emptyDir": {}}]}, 'name "tmp" appears twice'),
        (
            {"extraVolumeMounts": [{"name": "x", "mountPath": "/tmp"}]},
            'mountPath "/tmp" appears twice',
        ),
        ({"sidecars": [{"name": "hash", "image": "i"}]}, 'name "hash" appears twice'),
        (
            {"initContainers": [{"name": "a", "image": "i"}, {"name": "a", "image": "j"}]},
            'name "a" appears twice',
        ),
    ],
    ids=["volume", "mount", "sidecar", "init"],
)
def test_repeated_extra_names_are_refused(values: dict[str, Any], message: str) -> None:
    result = template({"hash": values})
    assert result.returncode != 0
    assert message in result.stderr


# --- NOTES.txt and Chart.yaml ----------------------------------------------------------------


def _notes(helm: str, *args: str) -> str:
    result = run_helm(
        installed_helms()[helm], "install", RELEASE, str(built_chart()), "-n", "demo",
        "--dry-run=client", *args,
    )  # fmt: skip
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_state_the_pod_security_level_and_the_push_before_wait() -> None:
    # Helm 4 only: Helm 3's `install --dry-run=client` still asks a cluster for its version,
    # and `helm template` never renders NOTES.txt.
    helm = "helm"
    notes = _notes(helm)
    assert "enforce=privileged" in notes
    assert "kubectl label namespace demo pod-security.kubernetes.io/enforce=privileged" in notes
    assert "`helm install --wait` succeeds only once the images are pushed" in notes
    assert "ci/images.sh build && ci/images.sh push localhost:5000" in notes
    without_proxy = _notes(helm, "--set", "registry.proxy.enabled=false")
    assert "no more than enforce=restricted" in without_proxy
    no_registry = _notes(helm, "--set", "registry.enabled=false")
    assert "enforce=restricted" in no_registry
    assert "localhost:5000/hashstack/hash:0.1.0" in no_registry
    assert "before `helm install --wait`" in no_registry


# Every topology the chart documents, as `helm install --dry-run=client` shows its NOTES.
NOTES_TOPOLOGIES = {
    "registry-only": ("--values", str(ROOT / "ci" / "registry-flow" / "registry.yaml")),
    "app-without-registry": ("--values", str(ROOT / "ci" / "registry-flow" / "app.yaml")),
    "external-etcd": (
        "--set", "etcd.enabled=false",
        "--set", "externalEtcd.endpoints={http://etcd-a.db:2379,http://etcd-b.db:2379}",
    ),
    "no-etcd": (
        "--set", "etcd.enabled=false", "--set", "persistence.enabled=false",
        "--set", "hash.enabled=false", "--set", "registry.enabled=false",
    ),
    "nothing-public": (
        "--set", "etcd.enabled=false", "--set", "persistence.enabled=false",
        "--set", "hash.enabled=false", "--set", "hello.enabled=false",
    ),
}  # fmt: skip


@pytest.mark.parametrize("topology", sorted(NOTES_TOPOLOGIES))
def test_notes_leave_nothing_blank_in_any_topology(topology: str) -> None:
    notes = _notes("helm", *NOTES_TOPOLOGIES[topology])
    # An empty value leaves "at ." or "<no value>"; every sentence names what it is about.
    assert "<no value>" not in notes
    assert not re.search(r"\s[.,:;]", notes.replace(" &\n", "\n")), notes
    assert not re.search(r"(at|from|pull|pulls|in)\s*\.$", notes, re.MULTILINE), notes
    values = {
        "registry-only": ("none of hello, persistence and hash", "only the registry, which serves"),
        "app-without-registry": ("The counter lives in etcd (hashstack-etcd", "restricted"),
        "external-etcd": (
            "The counter lives in the external etcd at http://etcd-a.db:2379, http://etcd-b.db:2379.",
        ),
        "no-etcd": ("the pods pull localhost:5000/hashstack/hello:0.1.0;", "only hello accepts"),
        "nothing-public": ("the registry accepts traffic from its node proxy only",),
    }[topology]
    for text in values:
        assert text in notes, f"{topology}: {text!r} not in\n{notes}"
    if topology in ("registry-only", "no-etcd", "nothing-public"):
        # No persistence: no counter to speak of, and no hash to reach.
        assert "counter" not in notes, notes
        assert "Reach hash" not in notes
    if topology in ("registry-only", "nothing-public"):
        assert "Check the release:\n" in notes  # no service, so no service's test image


def test_notes_follow_the_proxys_host_port() -> None:
    notes = _notes("helm", "--set", "registry.proxy.hostPort=5002")
    assert "binds hostPort 5002" in notes
    assert "every node pulls localhost:5002/..." in notes
    assert "hostPort 5000" not in notes
    assert "localhost:5000/..." not in notes


def test_chart_yaml_has_what_artifact_hub_shows() -> None:
    for chart in (CHART, CHART / "charts" / "etcd", CHART / "charts" / "registry"):
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        for key in ("home", "sources", "icon"):
            assert meta.get(key), f"{chart.name}: {key}"
        assert meta["annotations"]["artifacthub.io/license"] == "Apache-2.0"
    umbrella = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert all(m.get("email") or m.get("url") for m in umbrella["maintainers"])


@pytest.mark.parametrize("helm", HELMS)
def test_lint_strict_leaves_no_info_line(helm: str) -> None:
    for chart in (built_chart(), CHART / "charts" / "etcd", CHART / "charts" / "registry"):
        out = run_helm(installed_helms()[helm], "lint", "--strict", str(chart)).stdout
        assert "[INFO]" not in out, out

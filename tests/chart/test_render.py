"""helm dependency build, lint --strict, template + Kubernetes schema validation, package."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from .rendering import (
    CHART,
    CHART_VERSION,
    CI_VALUES,
    HELMS,
    KUBE_VERSIONS,
    PRESETS,
    RELEASE,
    RenderFn,
    ci_values_file,
    run_helm,
)

# Custom resources: no OpenAPI schema in kubernetes-validate; checked by shape below.
CRD_KINDS = {
    "HTTPRoute": "gateway.networking.k8s.io/v1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
}


def test_ci_values_files_are_the_scenarios() -> None:
    assert set(CI_VALUES) >= {"default", "minimal", "ha", "ingress", "dev"}


@pytest.mark.parametrize("helm", HELMS)
def test_dependency_build_matches_the_lock(
    helm: str, chart_copy: Path, helm_bins: dict[str, Path], tmp_path: Path
) -> None:
    """Chart.lock agrees with Chart.yaml (helm refuses an out-of-sync lock) and both
    subcharts resolve from the local directories."""
    chart = tmp_path / "hashstack"
    shutil.copytree(chart_copy, chart, ignore=shutil.ignore_patterns("*.tgz"))
    result = run_helm(helm_bins[helm], "dependency", "build", str(chart))
    assert "Saving 2 charts" in result.stdout
    assert sorted(p.name for p in (chart / "charts").glob("*.tgz")) == [
        f"etcd-{CHART_VERSION}.tgz",
        f"registry-{CHART_VERSION}.tgz",
    ]
    listing = run_helm(helm_bins[helm], "dependency", "list", str(chart)).stdout
    rows = [line.split() for line in listing.splitlines()[1:] if line.strip()]
    assert {(r[0], r[-1]) for r in rows} == {("etcd", "ok"), ("registry", "ok")}
    # The lock names exactly the dependencies Chart.yaml declares.
    lock = yaml.safe_load((CHART / "Chart.lock").read_text())
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert [(d["name"], d["version"], d["repository"]) for d in lock["dependencies"]] == [
        (d["name"], d["version"], d["repository"]) for d in meta["dependencies"]
    ]


def test_chart_metadata() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    assert meta["type"] == "application"
    assert meta["kubeVersion"].startswith(">=")
    assert {d["name"]: d["condition"] for d in meta["dependencies"]} == {
        "etcd": "etcd.enabled",
        "registry": "registry.enabled",
    }
    assert all(d["repository"].startswith("file://charts/") for d in meta["dependencies"])
    assert any(key.startswith("artifacthub.io/") for key in meta["annotations"])
    images = yaml.safe_load(meta["annotations"]["artifacthub.io/images"])
    # The services' images and the subcharts' (tests/ci/test_version.py checks the references).
    assert {i["name"] for i in images} == {
        "hello", "persistence", "hash", "etcd", "registry", "registry-proxy",
    }  # fmt: skip


@pytest.mark.parametrize("helm", HELMS)
@pytest.mark.parametrize("values", CI_VALUES)
def test_lint_strict(values: str, helm: str, built_chart: Path, helm_bins: dict[str, Path]) -> None:
    result = run_helm(
        helm_bins[helm],
        "lint",
        "--strict",
        str(built_chart),
        "-f",
        str(ci_values_file(values)),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("values", CI_VALUES)
def test_objects_validate_against_kubernetes(values: str, kube: str, render: RenderFn) -> None:
    objects = render(values, kube=kube)
    assert objects, "nothing rendered"
    checked = 0
    for obj in objects:
        kind = obj["kind"]
        where = f"{values} {kind}/{obj['metadata']['name']} on Kubernetes {kube}"
        if kind in CRD_KINDS:
            assert obj["apiVersion"] == CRD_KINDS[kind], where
            continue
        try:
            kubernetes_validate.validate(obj, kube, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{where}: {error.message} at {list(error.path)}")
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("values", CI_VALUES)
def test_helm3_renders_like_helm4(values: str, render: RenderFn) -> None:
    """The chart needs no Helm-4-only template function: both render the same objects."""

    def keyed(objects: list[dict]) -> dict[tuple[str, str], dict]:
        return {(o["kind"], o["metadata"]["name"]): o for o in objects}

    assert keyed(render(values, helm="helm3")) == keyed(render(values, helm="helm"))


def test_custom_resources_have_their_shape(render: RenderFn) -> None:
    """HTTPRoute and ServiceMonitor (no schema to validate against): the fields that matter."""
    routes = [o for o in render("ingress") if o["kind"] == "HTTPRoute"]
    assert {r["metadata"]["name"] for r in routes} == {f"{RELEASE}-hash", f"{RELEASE}-hello"}
    for route in routes:
        spec = route["spec"]
        assert spec["parentRefs"]
        assert all("name" in p for p in spec["parentRefs"])
        backend = spec["rules"][0]["backendRefs"][0]
        assert backend == {
            "group": "", "kind": "Service", "name": route["metadata"]["name"], "port": 80,
            "weight": 1,
        }  # fmt: skip
    monitors = [o for o in render("ha") if o["kind"] == "ServiceMonitor"]
    assert {m["metadata"]["name"] for m in monitors} == {
        f"{RELEASE}-{s}" for s in ("hello", "persistence", "hash")
    }
    for monitor in monitors:
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
        assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_package_renders_like_the_directory(
    built_chart: Path, helm_bins: dict[str, Path], render: RenderFn, tmp_path: Path
) -> None:
    run_helm(helm_bins["helm"], "package", str(built_chart), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("hashstack-*.tgz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    # Subcharts ship once, as directories; no dependency archives inside the package.
    assert not [n for n in names if n.endswith(".tgz")]
    assert len(names) == len(set(names)), "duplicate entries in the package"
    assert "hashstack/values.schema.json" in names
    # The presets ship with the chart: `-f values-production.yaml` works from a pulled chart.
    assert {f"hashstack/{p.name}" for p in PRESETS.values()} <= set(names)
    assert PRESETS, "values-production.yaml is missing"
    for values in CI_VALUES:
        assert render.text(values, "helm", "1.35.0", archive, ()) == render.text(  # type: ignore[attr-defined]
            values, "helm", "1.35.0", None, ()
        ), values


def test_a_fourth_service_is_a_values_block_and_one_line(
    built_chart: Path, helm_bins: dict[str, Path], tmp_path: Path
) -> None:
    """The services share one set of named templates: a new one needs its values (and
    schema entry) and a one-line template file, nothing else."""
    chart = tmp_path / "hashstack"
    shutil.copytree(built_chart, chart)
    (chart / "templates" / "echo.yaml").write_text(
        '{{- include "hashstack.component" (dict "root" . "name" "echo") }}\n'
    )
    schema = json.loads((chart / "values.schema.json").read_text())
    schema["properties"]["echo"] = schema["properties"]["hello"]
    (chart / "values.schema.json").write_text(json.dumps(schema))
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    echo = {**values["hello"], "component": "echo", "links": {"HELLO_URL": "hello"}}
    echo["image"] = {**echo["image"], "repository": "hashstack/echo"}
    values_file = tmp_path / "echo.yaml"
    values_file.write_text(yaml.safe_dump({"echo": echo}))
    out = run_helm(
        helm_bins["helm"], "template", RELEASE, str(chart), "-f", str(values_file)
    ).stdout
    objects = {(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(out) if o}
    for kind in ("Deployment", "Service", "ServiceAccount", "ConfigMap", "NetworkPolicy"):
        assert (kind, f"{RELEASE}-echo") in objects
    # Its link opens exactly echo -> hello.
    assert ("NetworkPolicy", f"{RELEASE}-hello-from-echo") in objects
    config = next(
        o
        for o in yaml.safe_load_all(out)
        if o and o["metadata"]["name"] == f"{RELEASE}-echo" and o["kind"] == "ConfigMap"
    )
    assert config["data"]["HELLO_URL"] == f"http://{RELEASE}-hello:80"

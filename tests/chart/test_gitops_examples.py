"""The GitOps examples people copy (docs/examples, shown in docs/gitops.md): every object
validates against its schema (the CRDs' from tests/data/crds, Kubernetes' own for the rest),
they point at where ci/release.sh publishes the chart, and the values they give are accepted
by values.schema.json and render, with helm, objects that validate and are stored as rendered."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.paths import CRDS, EXAMPLES
from tests.support.schemas import crd_file_sha256, crd_sources, crd_validator

from .apiserver import RULES, kind_schema
from .k8s import HOOK
from .rendering import (
    CHART,
    CHART_VERSION,
    KUBE_VERSIONS,
    ROOT,
    parse_docs,
    run_helm,
    with_defaults,
)

KUBE = KUBE_VERSIONS[-1]
EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.yaml"))
OWNER = "owner"  # the placeholder the examples and docs/gitops.md tell readers to replace
# The newest OCIRepository schema a registry package ships as data is v1beta2 (Flux 2.5.1);
# Flux 2.6 promoted that API to v1 with the fields the example uses unchanged.
SERVED_AS = {("source.toolkit.fluxcd.io/v1", "OCIRepository"): "source.toolkit.fluxcd.io/v1beta2"}


def docs_of(path: Path) -> list[dict[str, Any]]:
    return parse_docs(path.read_text())


def one(path: Path, kind: str) -> dict[str, Any]:
    (obj,) = [d for d in docs_of(path) if d["kind"] == kind]
    return obj


FLUX = EXAMPLES / "flux" / "hashstack.yaml"
ARGO = EXAMPLES / "argocd" / "hashstack.yaml"


def schema_problems(obj: dict[str, Any]) -> list[str]:
    """Validation errors of one example object: its CRD's schema, else Kubernetes' own."""
    api_version = SERVED_AS.get((obj["apiVersion"], obj["kind"]), obj["apiVersion"])
    if kind_schema(obj) is None:
        validator = crd_validator(api_version, obj["kind"], KUBE)
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors({**obj, "apiVersion": api_version})
        ]
    try:
        kubernetes_validate.validate(obj, KUBE, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{list(error.path)}: {error.message}"]
    return []


def test_the_examples_are_there() -> None:
    kinds = {d["kind"] for path in EXAMPLE_FILES for d in docs_of(path)}
    assert {"OCIRepository", "HelmRelease", "Application"} <= kinds


def test_the_crd_schemas_are_the_recorded_ones() -> None:
    """Each schema file is what tests/data/crds/extract.py took from the package named in
    sources.json (hash recorded), and the README names where each came from."""
    readme = (CRDS / "README.md").read_text()
    sources = crd_sources()
    assert set(sources) == {p.name for p in CRDS.glob("*.json")} - {"sources.json"}
    for name, source in sources.items():
        assert crd_file_sha256(name) == source["sha256"], f"{name} differs from what was extracted"
        for recorded in (name, source["package"], source["upstream"]):
            assert recorded in readme, f"tests/data/crds/README.md does not say {recorded}"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_examples_validate_against_their_schemas(path: Path) -> None:
    problems = [
        f"{obj['kind']}/{obj['metadata']['name']} {p}"
        for obj in docs_of(path)
        for p in schema_problems(obj)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("path", "kind", "breakage"),
    [
        (FLUX, "HelmRelease", lambda o: o["spec"]["chartRef"].update(kind="GitRepository")),
        (FLUX, "HelmRelease", lambda o: o["spec"].update(intervall="5m")),
        (FLUX, "OCIRepository", lambda o: o["spec"].update(url="https://ghcr.io/x")),
        (FLUX, "OCIRepository", lambda o: o["spec"]["ref"].update(tagg="1")),
        (ARGO, "Application", lambda o: _helm(o)["parameters"][0].update(value=1)),
        (ARGO, "Application", lambda o: o["spec"]["source"].update(chartt="x")),
        (ARGO, "Application", lambda o: o["metadata"].update(label={"a": "b"})),
    ],
    ids=[
        "chartRef-kind", "unknown-field", "oci-url", "ref-unknown", "parameter-int", "unknown",
        "object-meta",
    ],
)  # fmt: skip
def test_the_schemas_catch_a_broken_example(path: Path, kind: str, breakage: Any) -> None:
    obj = copy.deepcopy(one(path, kind))
    breakage(obj)
    assert schema_problems(obj)


def _helm(app: dict[str, Any]) -> dict[str, Any]:
    helm: dict[str, Any] = app["spec"]["source"]["helm"]
    return helm


def _workflow_env() -> dict[str, str]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    owner = "${{ github.repository_owner }}"
    return {k: str(v).replace(owner, OWNER) for k, v in workflow["env"].items()}


def test_examples_point_at_the_published_chart() -> None:
    """Where the release workflow pushes the chart (CHART_REPO) and the images
    (IMAGE_REGISTRY), at this chart version, with the cosign identity of its keyless signing."""
    env = _workflow_env()
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())["name"]
    oci = one(FLUX, "OCIRepository")
    release = one(FLUX, "HelmRelease")
    assert oci["spec"]["url"] == f"{env['CHART_REPO']}/{chart}"
    assert oci["spec"]["ref"] == {"tag": CHART_VERSION}
    assert release["spec"]["chartRef"] == {"kind": "OCIRepository", "name": oci["metadata"]["name"]}
    assert release["metadata"]["namespace"] == oci["metadata"]["namespace"]
    (identity,) = oci["spec"]["verify"]["matchOIDCIdentity"]
    signer = f"https://github.com/{OWNER}/hashstack/.github/workflows/release.yml@refs/tags/v{CHART_VERSION}"
    assert re.fullmatch(identity["subject"], signer)
    assert re.fullmatch(identity["issuer"], "https://token.actions.githubusercontent.com")

    app = one(ARGO, "Application")
    source = app["spec"]["source"]
    assert (source["repoURL"], source["chart"]) == (env["CHART_REPO"].removeprefix("oci://"), chart)
    assert source["targetRevision"] == CHART_VERSION
    (repository,) = [d for d in docs_of(ARGO) if d["kind"] == "Secret"]
    assert repository["stringData"]["url"] == source["repoURL"]
    assert repository["stringData"]["enableOCI"] == "true"
    for values in (release["spec"]["values"], source["helm"]["valuesObject"]):
        for service in ("hello", "persistence", "hash"):
            assert values[service]["image"]["registry"] == env["IMAGE_REGISTRY"]


def _render(
    built_chart: Path, helm_bins: dict[str, Path], tmp_path: Path, release: str, namespace: str,
    values: dict[str, Any], *sets: str,
) -> list[dict[str, Any]]:  # fmt: skip
    """helm template as the GitOps tool runs it, after checking the merged values against
    values.schema.json (helm checks them too; this names the failing value)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(with_defaults(values), schema)
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    args = ["template", release, str(built_chart), "--namespace", namespace, "--kube-version", KUBE]
    out = run_helm(helm_bins["helm"], *args, "-f", str(file), *sets).stdout
    objects = parse_docs(out)
    for obj in objects:
        if obj["kind"] not in ("HTTPRoute", "ServiceMonitor"):
            kubernetes_validate.validate(obj, KUBE, strict=True)
    problems = [p for obj in objects for rule in RULES.values() for p in rule(obj)]
    assert not problems, "\n".join(problems)
    return objects


def test_flux_values_render(built_chart: Path, helm_bins: dict[str, Path], tmp_path: Path) -> None:
    release = one(FLUX, "HelmRelease")
    spec = release["spec"]
    namespace = spec.get("targetNamespace", release["metadata"]["namespace"])
    objects = _render(
        built_chart, helm_bins, tmp_path, spec["releaseName"], namespace, spec["values"]
    )
    kinds = {o["kind"] for o in objects}
    assert "StatefulSet" in kinds, "etcd"
    assert "DaemonSet" not in kinds, "no registry proxy: registry.enabled is false"
    images = {c["image"] for o in objects if o["kind"] == "Deployment"
              for c in o["spec"]["template"]["spec"]["containers"]}  # fmt: skip
    assert images == {
        f"ghcr.io/{OWNER}/hashstack/{s}:{CHART_VERSION}" for s in ("hello", "persistence", "hash")
    }


def test_argo_values_render(built_chart: Path, helm_bins: dict[str, Path], tmp_path: Path) -> None:
    """valuesObject as a values file and each parameter as Argo CD passes it to helm template
    (--set, or --set-string with forceString); the parameter really turns the test pods off."""
    app = one(ARGO, "Application")
    helm = app["spec"]["source"]["helm"]
    sets = []
    for parameter in helm["parameters"]:
        flag = "--set-string" if parameter.get("forceString") else "--set"
        sets += [flag, f"{parameter['name']}={parameter['value']}"]
    objects = _render(
        built_chart, helm_bins, tmp_path, helm["releaseName"],
        app["spec"]["destination"]["namespace"], helm["valuesObject"], *sets,
    )  # fmt: skip
    assert not [o for o in objects if o["metadata"].get("annotations", {}).get(HOOK) == "test"]


def _yaml_blocks(text: str) -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```$", text, flags=re.M | re.S)


def test_the_docs_show_the_example_files() -> None:
    """docs/gitops.md shows each example file whole, as it is."""
    blocks = [b.strip() for b in _yaml_blocks((ROOT / "docs" / "gitops.md").read_text())]
    for path in EXAMPLE_FILES:
        assert path.read_text().strip() in blocks, f"docs/gitops.md does not show {path}"

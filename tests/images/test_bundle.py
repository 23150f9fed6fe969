"""`make bundle` without a cluster: what the bundle holds and that it is intact, the push of every
artifact into a real registry on loopback (its install.sh, step 2), and the application chart
installed from that registry (step 3, rendered) naming exactly the images that were pushed.
Steps 1-3 on a real cluster: tests/cluster/test_bundle.py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.chart.k8s import pods
from tests.chart.rendering import CHART_VERSION
from tests.support import podman as pm
from tests.support.registry import HELM_CHART_LAYER, Registry, running_registry


@dataclass
class Entry:
    """One line of the bundle's images.txt."""

    name: str
    role: str
    target: str
    manifest: str
    config: str


@dataclass
class Bundle:
    archive: Path
    root: Path
    sources: dict[str, str]

    def entries(self) -> dict[str, Entry]:
        lines = (self.root / "images.txt").read_text().splitlines()
        return {line.split()[0]: Entry(*line.split()) for line in lines}

    def install(
        self, *args: str, registry: Registry, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.root / "install.sh"), *args],
            capture_output=True, text=True, timeout=300, check=False,
            env={**pm.env(), "REGISTRY_ADDR": registry.address, **(env or {})},
        )  # fmt: skip


def chart_default(name: str) -> str:
    out = pm.script("ci/version.sh", "images")
    return dict(line.split() for line in out.splitlines() if " " in line)[name]


@pytest.fixture(scope="module")
def bundle(
    images: dict[str, str],
    image_tag: str,
    test_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Bundle:
    out = tmp_path_factory.mktemp("bundle")
    archive = out / "bundle.tar"
    sources = {**images, "etcd": test_images["etcd"], "registry": test_images["registry"]}
    pm.script(
        "ci/bundle.sh", str(archive),
        extra_env={"TAG": image_tag, "ETCD_IMAGE": sources["etcd"],
                   "REGISTRY_IMAGE": sources["registry"]},
    )  # fmt: skip
    with tarfile.open(archive) as tar:
        tar.extractall(out / "x", filter="data")
    return Bundle(archive, out / "x" / f"hashstack-bundle-{CHART_VERSION}", sources)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundle_holds_images_charts_script_and_checksums(bundle: Bundle) -> None:
    files = sorted(str(p.relative_to(bundle.root)) for p in bundle.root.rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith("images/blobs/")] == [
        "SHA256SUMS",
        f"charts/hashstack-{CHART_VERSION}.tgz",
        f"charts/registry-{CHART_VERSION}.tgz",
        "images.txt",
        "images/index.json",
        "images/oci-layout",
        "install.sh",
    ]
    sums: dict[str, str] = {}
    for line in (bundle.root / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    assert sorted(sums) == [f for f in files if f != "SHA256SUMS"]
    for name, digest in sums.items():
        assert sha256(bundle.root / name) == digest, name
    assert os.access(bundle.root / "install.sh", os.X_OK)


def test_every_image_is_the_local_one_under_the_name_the_chart_uses(bundle: Bundle) -> None:
    entries = bundle.entries()
    assert sorted(entries) == ["etcd", "hash", "hello", "persistence", "registry"]
    for svc in pm.SERVICES:
        assert (entries[svc].role, entries[svc].target) == (
            "push",
            f"hashstack/{svc}:{CHART_VERSION}",
        )
    etcd_default = chart_default("etcd")  # registry.k8s.io/etcd:TAG
    assert (entries["etcd"].role, entries["etcd"].target) == ("push", etcd_default.split("/", 1)[1])
    # The registry's own image goes onto the nodes, named as the registry subchart asks for it.
    assert (entries["registry"].role, entries["registry"].target) == (
        "node", chart_default("registry"),
    )  # fmt: skip

    layout = bundle.root / "images"
    index = json.loads((layout / "index.json").read_text())
    by_name = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
    assert sorted(by_name) == sorted(entries)
    for name, entry in entries.items():
        assert by_name[name]["digest"] == entry.manifest
        manifest_file = layout / "blobs" / "sha256" / entry.manifest.split(":")[1]
        assert "sha256:" + sha256(manifest_file) == entry.manifest
        manifest = json.loads(manifest_file.read_text())
        # The very image that was built: its configuration digest is the local image's ID.
        assert manifest["config"]["digest"] == entry.config
        assert entry.config == "sha256:" + pm.inspect_image(bundle.sources[name])["Id"]
        for layer in manifest["layers"]:
            blob = layout / "blobs" / "sha256" / layer["digest"].split(":")[1]
            assert blob.stat().st_size == layer["size"], f"{name}: layer {layer['digest']}"


def test_charts_in_the_bundle_are_this_release(bundle: Bundle) -> None:
    for name in ("hashstack", "registry"):
        with tarfile.open(bundle.root / "charts" / f"{name}-{CHART_VERSION}.tgz") as tar:
            member = tar.extractfile(f"{name}/Chart.yaml")
            assert member is not None
            assert yaml.safe_load(member.read())["version"] == CHART_VERSION


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("bundle-registry")) as running:
        yield running


@pytest.fixture(scope="module")
def pushed(bundle: Bundle, registry: Registry) -> subprocess.CompletedProcess[str]:
    result = bundle.install("push", registry=registry)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_push_puts_every_artifact_into_the_registry(
    bundle: Bundle, registry: Registry, pushed: subprocess.CompletedProcess[str]
) -> None:
    entries = bundle.entries()
    pushes = {name: e for name, e in entries.items() if e.role == "push"}
    assert sorted(registry.repositories()) == sorted(
        ["charts/hashstack", *(e.target.split(":")[0] for e in pushes.values())]
    )
    for entry in pushes.values():
        repository, tag = entry.target.rsplit(":", 1)
        digest, manifest = registry.manifest(repository, tag)
        # Copied as it is in the bundle: the same manifest, so the same digest.
        assert digest == entry.manifest
        assert manifest["config"]["digest"] == entry.config
    digest, manifest = registry.manifest("charts/hashstack", CHART_VERSION)
    [layer] = [m for m in manifest["layers"] if m["mediaType"] == HELM_CHART_LAYER]
    assert layer["digest"] == "sha256:" + sha256(
        bundle.root / "charts" / f"hashstack-{CHART_VERSION}.tgz"
    )
    assert digest in pushed.stdout + pushed.stderr


def test_push_with_podman_where_skopeo_is_missing(
    bundle: Bundle, scratch_store: Path, tmp_path: Path
) -> None:
    """The fallback copy: podman, here in a store of its own so the shared one stays as it is."""
    conf = tmp_path / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{scratch_store / "storage"}"\n'
        f'runroot = "{scratch_store / "run"}"\n'
    )
    with running_registry(tmp_path / "registry") as registry:
        env = {"COPY_TOOL": "podman", "CONTAINERS_STORAGE_CONF": str(conf)}
        result = bundle.install("push", registry=registry, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        for entry in bundle.entries().values():
            if entry.role == "push":
                # podman may recompress the layers: the image (its configuration) is the same.
                _, manifest = registry.manifest(*entry.target.rsplit(":", 1))
                assert manifest["config"]["digest"] == entry.config
    assert pm.podman("images", "--quiet", root=scratch_store).stdout.split(), "podman copied"


def test_app_from_the_registry_renders_the_pushed_images(
    bundle: Bundle, registry: Registry, pushed: subprocess.CompletedProcess[str]
) -> None:
    result = bundle.install("app", "--template", registry=registry)
    assert result.returncode == 0, result.stderr
    assert f"Pulled: {registry.address}/charts/hashstack:{CHART_VERSION}" in result.stderr
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    images = {c["image"] for pod in pods(objects) for c in pod.containers()}
    targets = {f"localhost:5000/{e.target}" for e in bundle.entries().values() if e.role == "push"}
    # Every image comes from the in-cluster registry, and each is one the bundle pushed.
    assert images == targets
    for image in images:
        repository, tag = image.removeprefix("localhost:5000/").rsplit(":", 1)
        registry.manifest(repository, tag)
    # The registry is its own release: the application does not bring a second one.
    assert not [o for o in objects if "registry" in o["metadata"]["name"]]


def test_a_damaged_bundle_is_refused_before_anything_happens(
    bundle: Bundle, registry: Registry, tmp_path: Path
) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle.root, copy)
    chart = copy / "charts" / f"hashstack-{CHART_VERSION}.tgz"
    chart.write_bytes(chart.read_bytes()[:-10])
    before = sorted(registry.repositories())
    result = Bundle(bundle.archive, copy, bundle.sources).install("push", registry=registry)
    assert result.returncode == 1
    assert "the bundle is damaged" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(registry.repositories()) == before

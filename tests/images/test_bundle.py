"""`make bundle` without a cluster: what the bundle holds and that it is intact (all six images:
the three services and every third-party image the chart renders, here the project's stand-ins
under the chart's own references, since nothing can be pulled), how it finds those images (the
local store, else a pull), and install.sh's flow as far as it goes without a cluster: step 0
loads the registry's own images onto "a node" (a separate podman store), the registry runs from
that image, step 2 pushes every other artifact into it, and step 3 renders the application
naming exactly the images that were pushed. Steps 0-3 on a real cluster:
tests/cluster/test_bundle.py."""

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

from tests.chart.k8s import Pod, pods
from tests.chart.rendering import CHART_VERSION
from tests.support import podman as pm
from tests.support.helm import parse_docs, run_helm
from tests.support.paths import CHART
from tests.support.registry import HELM_CHART_LAYER, Registry, running_registry
from tests.support.wait import wait_until

# The stand-in (ci/images.sh testimages) for each third-party image, by its images.txt name.
STAND_INS = {"etcd": "etcd", "registry": "registry", "registry-proxy": "haproxy"}
REGISTRY_CHART = CHART / "charts" / "registry"


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
        self, *args: str, registry: Registry | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        address = {"REGISTRY_ADDR": registry.address} if registry else {}
        return subprocess.run(
            [str(self.root / "install.sh"), *args],
            capture_output=True, text=True, timeout=300, check=False,
            env={**pm.env(), **address, **(env or {})},
        )  # fmt: skip


def chart_defaults() -> dict[str, str]:
    """name -> reference of every image the chart deploys by default (ci/version.sh images)."""
    out = pm.script("ci/version.sh", "images")
    return dict(line.split() for line in out.splitlines() if " " in line)


def rendered_pods(chart: Path) -> list[Pod]:
    """The pods `helm template` renders of `chart` with its defaults (hooks and tests too)."""
    return list(pods(parse_docs(run_helm("helm", "template", "bundle", str(chart)).stdout)))


def rendered_images(chart: Path) -> set[str]:
    return {c["image"] for pod in rendered_pods(chart) for c in pod.containers()}


def registry_chart_pod(kind: str) -> Pod:
    """The registry chart's pod of workload `kind` (not a hook), as rendered."""
    [pod] = [p for p in rendered_pods(REGISTRY_CHART) if p.owner["kind"] == kind and not p.hook]
    return pod


def without_host(ref: str) -> str:
    """A reference without its registry host: its name inside the in-cluster registry."""
    first, _, rest = ref.partition("/")
    return rest if rest and ("." in first or ":" in first or first == "localhost") else ref


@dataclass(frozen=True)
class ChartImages:
    services: frozenset[str]  # the three services' references
    node: frozenset[str]  # what the registry chart renders: onto the nodes
    push: frozenset[str]  # every other reference the umbrella chart renders

    @property
    def third_party(self) -> frozenset[str]:
        return self.node | self.push


@pytest.fixture(scope="module")
def chart_images() -> ChartImages:
    defaults = chart_defaults()
    services = frozenset(defaults[svc] for svc in pm.SERVICES)
    umbrella = rendered_images(CHART)
    node = frozenset(rendered_images(REGISTRY_CHART))
    assert services <= umbrella
    assert node <= umbrella
    return ChartImages(services, node, frozenset(umbrella - services - node))


@pytest.fixture(scope="module")
def third_party(chart_images: ChartImages, test_images: dict[str, str]) -> Iterator[dict[str, str]]:
    """name -> chart reference of each third-party image, present in the local store: the
    stand-in tagged under the chart's reference unless that reference is there already (a
    real image is left as it is). The tags added here go again afterwards."""
    names = {ref: name for name, ref in chart_defaults().items()}
    assert set(names) >= chart_images.third_party, "a rendered image ci/version.sh does not name"
    refs = {names[ref]: ref for ref in chart_images.third_party}
    assert sorted(refs) == sorted(STAND_INS)
    added = []
    for name, ref in refs.items():
        if pm.podman("image", "exists", ref, check=False).returncode != 0:
            pm.podman("tag", test_images[STAND_INS[name]], ref)
            added.append((test_images[STAND_INS[name]], ref))
    yield refs
    for stand_in, ref in added:
        pm.podman("untag", stand_in, ref, check=False)


def make_bundle(out: Path, sources: dict[str, str], env: dict[str, str]) -> Bundle:
    archive = out / "bundle.tar"
    pm.script("ci/bundle.sh", str(archive), extra_env=env)
    with tarfile.open(archive) as tar:
        tar.extractall(out / "x", filter="data")
    return Bundle(archive, out / "x" / f"hashstack-bundle-{CHART_VERSION}", sources)


@pytest.fixture(scope="module")
def bundle(
    images: dict[str, str],
    image_tag: str,
    third_party: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Bundle:
    # No ETCD_IMAGE/REGISTRY_IMAGE/PROXY_IMAGE: the defaults find every image by itself.
    out = tmp_path_factory.mktemp("bundle")
    bundle = make_bundle(out, {**images, **third_party}, {"TAG": image_tag})
    print(f"\nbundle: {bundle.archive.stat().st_size / 2**20:.1f} MiB, 6 images (stand-ins)")
    return bundle


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


def test_all_six_images_are_in_the_bundle_under_the_names_the_chart_renders(
    bundle: Bundle, chart_images: ChartImages
) -> None:
    entries = bundle.entries()
    assert sorted(entries) == sorted([*pm.SERVICES, *STAND_INS])
    assert len(entries) == 6
    for svc in pm.SERVICES:
        assert (entries[svc].role, entries[svc].target) == (
            "push",
            f"hashstack/{svc}:{CHART_VERSION}",
        )
    # The registry's own images go onto the nodes under the references its chart renders; the
    # rest into the registry under the umbrella chart's references minus their registry host.
    assert {e.target for e in entries.values() if e.role == "node"} == chart_images.node
    assert {e.target for e in entries.values() if e.role == "push"} == {
        without_host(ref) for ref in chart_images.services | chart_images.push
    }


def test_every_image_is_the_local_one(bundle: Bundle) -> None:
    entries = bundle.entries()
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


def test_third_party_0_bundles_the_services_only(
    images: dict[str, str], image_tag: str, tmp_path: Path
) -> None:
    only = make_bundle(tmp_path, images, {"TAG": image_tag, "THIRD_PARTY": "0"})
    assert sorted(only.entries()) == sorted(pm.SERVICES)


def test_a_named_local_copy_stands_for_the_charts_reference(
    images: dict[str, str],
    image_tag: str,
    third_party: dict[str, str],
    test_images: dict[str, str],
    tmp_path: Path,
) -> None:
    """ETCD_IMAGE names another local image: it is shipped under etcd's target instead (here the
    haproxy stand-in, so its ID tells which one went in)."""
    copy = test_images["haproxy"]
    named = make_bundle(
        tmp_path, {**images, **third_party, "etcd": copy}, {"TAG": image_tag, "ETCD_IMAGE": copy}
    )
    entry = named.entries()["etcd"]
    assert entry.config == "sha256:" + pm.inspect_image(copy)["Id"]
    assert entry.config != "sha256:" + pm.inspect_image(third_party["etcd"])["Id"]
    assert entry.target == without_host(third_party["etcd"])
    missing = failed_bundle(tmp_path / "m", {"ETCD_IMAGE": "localhost/hashstack-test/none:x"})
    assert "no local image localhost/hashstack-test/none:x (named for etcd)" in missing.stderr


def registries_conf(path: Path, refs: set[str], line: str) -> dict[str, str]:
    """A registries.conf with one [[registry]] per host of `refs`, each with `line`."""
    hosts = sorted({ref.split("/", 1)[0] for ref in refs})
    path.write_text("".join(f'[[registry]]\nprefix = "{h}"\n{line}\n\n' for h in hosts))
    return {"CONTAINERS_REGISTRIES_CONF": str(path)}


def failed_bundle(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """ci/bundle.sh with `env`, which must fail (exit 1) and leave no bundle behind."""
    result = subprocess.run(
        ["ci/bundle.sh", str(tmp_path / "b.tar")], cwd=pm.ROOT, env={**pm.env(), **env},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert not (tmp_path / "b.tar").exists()
    return result


def test_an_image_missing_from_the_store_is_pulled(
    third_party: dict[str, str], scratch_store: Path, tmp_path: Path
) -> None:
    """A store without the third-party images, whose registries are mirrored by a real registry
    on loopback holding the stand-ins: bundle.sh pulls each by the chart's reference (and then
    stops at the services, which were never built in that store)."""
    with running_registry(tmp_path / "mirror") as mirror:
        for ref in third_party.values():
            pm.podman("push", "--quiet", "--tls-verify=false", ref,
                      f"docker://{mirror.address}/{without_host(ref)}")  # fmt: skip
        env = {
            **pm.storage_conf(scratch_store, tmp_path / "storage.conf"),
            **registries_conf(
                tmp_path / "registries.conf", set(third_party.values()),
                f'location = "{mirror.address}"\ninsecure = true',
            ),
            "TAG": "never-built",
        }  # fmt: skip
        result = failed_bundle(tmp_path, env)
    assert "no local image hashstack/hello:never-built" in result.stderr
    for ref in third_party.values():
        assert f"{ref} is not in the local store" in result.stdout
        pulled = pm.inspect_image(ref, root=scratch_store)
        assert pulled["Id"] == pm.inspect_image(ref)["Id"], ref


def test_an_image_that_cannot_be_pulled_stops_the_bundle_with_the_way_out(
    third_party: dict[str, str], scratch_store: Path, tmp_path: Path
) -> None:
    env = {
        **pm.storage_conf(scratch_store, tmp_path / "storage.conf"),
        **registries_conf(tmp_path / "r.conf", set(third_party.values()), "blocked = true"),
    }
    result = failed_bundle(tmp_path, env)
    assert "cannot pull" in result.stderr
    assert "THIRD_PARTY=0" in result.stderr
    assert "Traceback" not in result.stderr


# --- install.sh, step by step -------------------------------------------------------------


def node_import(store: Path) -> dict[str, str]:
    """NODE_IMPORT for "a node" whose runtime's image store is `store` (podman load)."""
    return {"NODE_IMPORT": f"podman --root {store / 'storage'} --runroot {store / 'run'} load -i"}


@pytest.fixture(scope="module")
def node(bundle: Bundle, module_store: Path) -> Path:
    """A node's image store after step 0."""
    result = bundle.install("load", env=node_import(module_store))
    assert result.returncode == 0, result.stdout + result.stderr
    return module_store


def test_load_puts_the_registry_images_on_the_node_under_the_charts_references(
    bundle: Bundle, node: Path, chart_images: ChartImages
) -> None:
    loaded = {}
    for line in pm.podman("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}",
                          "--no-trunc", root=node).stdout.splitlines():  # fmt: skip
        ref, image_id = line.split()
        loaded[ref] = image_id
    assert set(loaded) == chart_images.node
    for entry in bundle.entries().values():
        if entry.role == "node":
            assert loaded[entry.target] == entry.config
    # The archives went once imported.
    assert not (bundle.root / "node-images").exists()


def test_load_without_an_importer_leaves_archives_that_name_the_images(
    bundle: Bundle, tmp_path: Path
) -> None:
    result = bundle.install("load", env={"NODE_IMAGES_DIR": str(tmp_path / "n")})
    assert result.returncode == 0, result.stderr
    nodes = [e for e in bundle.entries().values() if e.role == "node"]
    assert sorted(p.name for p in (tmp_path / "n").iterdir()) == sorted(
        f"{e.name}.tar" for e in nodes
    )
    for entry in nodes:
        with tarfile.open(tmp_path / "n" / f"{entry.name}.tar") as tar:
            member = tar.extractfile("manifest.json")
            assert member is not None
            [manifest] = json.loads(member.read())
        # What `ctr images import` names it: the chart's reference.
        assert manifest["RepoTags"] == [entry.target]
        assert f"copy {tmp_path / 'n' / entry.name}.tar to each node" in result.stderr


def test_the_proxy_image_on_the_node_has_the_charts_command(node: Path) -> None:
    [container] = registry_chart_pod("DaemonSet").containers()
    version = pm.podman(
        "run", "--rm", "--entrypoint", container["command"][0], container["image"], "-v",
        root=node,
    )  # fmt: skip
    assert "HAProxy version" in version.stdout


@pytest.fixture(scope="module")
def registry(
    node: Path, chart_images: ChartImages, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """The registry as step 1 runs it: from the image step 0 put on the node, under the
    reference the registry chart renders for its Deployment (nothing else provides it)."""
    [container] = registry_chart_pod("Deployment").containers()
    [port] = [p["containerPort"] for p in container["ports"]]
    name = pm.unique("hs-bundle-registry")
    pm.podman("run", "--detach", "--name", name, "--publish", f"127.0.0.1::{port}",
              container["image"], root=node)  # fmt: skip
    try:
        published = pm.podman("port", name, f"{port}/tcp", root=node).stdout.split()[0]
        running = Registry(
            name, tmp_path_factory.mktemp("r") / "log", port=int(published.rsplit(":", 1)[1])
        )

        wait_until(lambda: running.get(""), 30, "the registry from the bundle's image")
        yield running
    finally:
        pm.podman("rm", "--force", "--time", "2", name, root=node, check=False)


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
    with running_registry(tmp_path / "registry") as registry:
        env = {"COPY_TOOL": "podman", **pm.storage_conf(scratch_store, tmp_path / "storage.conf")}
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
    objects = parse_docs(result.stdout)
    images = {c["image"] for pod in pods(objects) for c in pod.containers()}
    # What the nodes pull from: localhost on the registry proxy's hostPort.
    [host_port] = [
        p["hostPort"] for p in registry_chart_pod("DaemonSet").ports() if "hostPort" in p
    ]
    node = f"localhost:{host_port}"
    targets = {f"{node}/{e.target}" for e in bundle.entries().values() if e.role == "push"}
    # Every image comes from the in-cluster registry (etcd's too), and each is one the bundle
    # pushed: nothing the application runs needs the internet.
    assert images == targets
    for image in images:
        repository, tag = image.removeprefix(f"{node}/").rsplit(":", 1)
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

"""The podman profile's custom builder run for real, exactly as skaffold runs it: the artifact's
buildCommand through `sh -c`, in the artifact's context, with skaffold's variables ($IMAGE,
$PUSH_IMAGE, $BUILD_CONTEXT, $IMAGE_REPO, $IMAGE_TAG) added to the environment. The contract:
$IMAGE exists in the local store after a build (skaffold then asks the Docker API for its id),
or in the registry after a push (skaffold then reads its digest there); the layers are those of
`make images`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.skaffold import model
from tests.support import podman as pm
from tests.support.registry import Registry, running_registry

pytestmark = [pytest.mark.podman, pytest.mark.slow]


def custom_artifact(config: dict[str, Any], image: str) -> dict[str, Any]:
    (profile,) = [p for p in config["profiles"] if p["name"] == "podman"]
    (artifact,) = [a for a in profile["build"]["artifacts"] if a["image"] == image]
    return dict(artifact)


def run_build_command(
    artifact: dict[str, Any], image: str, push: bool, **extra: str
) -> subprocess.CompletedProcess[str]:
    """skaffold's custom/script.go: `sh -c <buildCommand>`, cwd and BUILD_CONTEXT the
    absolute context, IMAGE the full reference, PUSH_IMAGE true/false, then the OS env."""
    context = (pm.ROOT / artifact["context"]).resolve()
    ref = model.parse_reference(image)
    skaffold_env = {
        "IMAGE": image,
        "PUSH_IMAGE": "true" if push else "false",
        "BUILD_CONTEXT": str(context),
        "IMAGE_REPO": ref.base_name,
        "IMAGE_TAG": ref.tag,
    }
    return subprocess.run(
        ["sh", "-c", artifact["custom"]["buildCommand"]],
        cwd=context,
        env={**pm.env(), **skaffold_env, **extra},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def layers(ref: str) -> list[str]:
    return list(pm.inspect_image(ref)["RootFS"]["Layers"])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("custom-build")) as started:
        yield started


def test_local_build_is_make_images(config, images: dict[str, str], image_tag: str):
    """PUSH_IMAGE=false: $IMAGE is in the local store, built from the same layers as
    `ci/images.sh build` (the session's images) and the same Dockerfile target."""
    image = f"localhost/hello:git-{image_tag}"
    result = run_build_command(custom_artifact(config, "hello"), image, push=False)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        assert layers(image) == layers(images["hello"])
        labels = pm.inspect_image(image)["Config"]["Labels"]
        assert labels["org.opencontainers.image.title"] == "hashstack-hello"
        assert labels == pm.inspect_image(images["hello"])["Config"]["Labels"]
    finally:
        pm.podman("rmi", image, check=False)


def test_push_puts_image_in_the_registry(
    config, images: dict[str, str], image_tag: str, registry: Registry
):
    """PUSH_IMAGE=true: $IMAGE is in the registry under its tag (where skaffold reads the
    digest it deploys), and the manifest's layers are the local image's."""
    image = f"{registry.address}/hashstack/persistence:git-{image_tag}"
    result = run_build_command(custom_artifact(config, "persistence"), image, push=True)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        digest, manifest = registry.manifest("hashstack/persistence", f"git-{image_tag}")
        assert f"pushed {image}@{digest}" in result.stdout
        assert len(manifest["layers"]) == len(layers(images["persistence"]))
    finally:
        pm.podman("rmi", image, check=False)


def test_build_refuses_several_platforms_and_a_bad_push_flag(config):
    """Without a build: the contract's other values are checked first."""
    artifact = custom_artifact(config, "hash")
    several = run_build_command(artifact, "hash:x", False, PLATFORMS="linux/amd64,linux/arm64")
    assert several.returncode == 2
    assert "one platform at a time" in several.stderr
    bad = run_build_command(artifact, "hash:x", False, PUSH_IMAGE="yes")
    assert bad.returncode == 2
    assert "PUSH_IMAGE must be true or false" in bad.stderr


def test_build_needs_skaffolds_variables(config):
    artifact = custom_artifact(config, "hash")
    context = (pm.ROOT / artifact["context"]).resolve()
    env = {k: v for k, v in pm.env().items() if k not in ("IMAGE", "BUILD_CONTEXT")}
    result = subprocess.run(
        ["sh", "-c", artifact["custom"]["buildCommand"]],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "IMAGE is not set" in result.stderr

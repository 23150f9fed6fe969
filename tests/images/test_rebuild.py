"""Editing the source rebuilds only the source layer; the dependency layer comes from the cache."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tests.support import podman as pm
from tests.support.measurements import record


def test_touching_one_py_file_reuses_the_dependency_layer(
    images: dict[str, str], image_tag: str, tmp_path: Path
) -> None:
    # A copy of the build context: the repository's sources stay as they are.
    context = tmp_path / "images"
    shutil.copytree(
        pm.ROOT / "images", context, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    edited = context / "hashstack" / "hello.py"
    # A different edit every session, so the source layer is really rebuilt, never cached.
    edited.write_text(edited.read_text() + f"\n# edited by the rebuild test {image_tag}\n")
    tag = f"{image_tag}-rebuild"
    start = time.monotonic()
    out = pm.script(
        "ci/images.sh", "build", "hash", extra_env={"TAG": tag, "CONTEXT": str(context)}
    )
    took = time.monotonic() - start
    record("rebuild of hash after editing one .py file (s)", round(took, 1))
    rebuilt = f"localhost/hashstack/hash:{tag}"
    try:
        before = pm.inspect_image(images["hash"])["RootFS"]["Layers"]
        after = pm.inspect_image(rebuilt)["RootFS"]["Layers"]
        # root filesystem (interpreter, libraries), venv (dependencies), source: only the last
        # one is new.
        assert len(after) == len(before) == 3, (before, after)
        assert after[:-1] == before[:-1]
        assert after[-1] != before[-1]
        # The dependency install itself was not run again.
        assert "Processing /wheels/" not in out
        probe = pm.podman(
            "run", "--rm", "--network=none", "--entrypoint", "python3", rebuilt, "-c",
            "print(open('/app/hashstack/hello.py').read().splitlines()[-1])",
        ).stdout  # fmt: skip
        assert f"edited by the rebuild test {image_tag}" in probe
    finally:
        pm.podman("rmi", rebuilt, check=False)


def test_dev_build_gives_app_to_the_service_user(images: dict[str, str], image_tag: str) -> None:
    # APP_OWNER=10001:10001: /app writable for file sync; everything below it stays shared.
    tag = f"{image_tag}-appowner"
    pm.script("ci/images.sh", "build", "hello", extra_env={"TAG": tag, "APP_OWNER": "10001:10001"})
    dev = f"localhost/hashstack/hello:{tag}"
    try:
        before = pm.inspect_image(images["hello"])["RootFS"]["Layers"]
        after = pm.inspect_image(dev)["RootFS"]["Layers"]
        assert after[:-1] == before[:-1]
        out = pm.podman(
            "run", "--rm", "--network=none", "--entrypoint", "python3", dev, "-c",
            "import os; print(os.stat('/app/hashstack').st_uid,"
            " os.stat('/app/hashstack/hello.py').st_uid)\n"
            "open('/app/hashstack/x', 'w'); print('ok')",
        ).stdout.split()  # fmt: skip
        assert out == ["10001", "10001", "ok"]
    finally:
        pm.podman("rmi", dev, check=False)

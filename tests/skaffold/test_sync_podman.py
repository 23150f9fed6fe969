"""File sync for real, without a cluster: the hello image runs the way the dev values render it
(init container copying /app to a writable volume, read-only root, the rendered environment),
a source file goes in exactly as Skaffold sends it (a tar through `tar xmf - -C /`), and gunicorn
serves the new code after its reload."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
import requests

from tests.skaffold.scenarios import ROOT, SCENARIO_IDS, SCENARIOS, ApplyFn, pod_spec
from tests.support.podman import podman_bytes as podman

pytestmark = [pytest.mark.podman, pytest.mark.slow]


@pytest.fixture(scope="module")
def hello_image() -> Iterator[str]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (ci/install-deps.sh installs it)")
    if podman("info", check=False).returncode != 0:
        pytest.skip("podman cannot run containers here")
    tag = f"skaffold-sync-{uuid.uuid4().hex[:8]}"
    build = subprocess.run(
        [str(ROOT / "ci" / "images.sh"), "build", "hello"],
        cwd=ROOT,
        env={**os.environ, "TAG": tag},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    ref = f"localhost/hashstack/hello:{tag}"
    yield ref
    podman("rmi", ref, check=False)


def skaffold_tar(files: dict[str, bytes]) -> bytes:
    """Like Skaffold's CreateMappedTar: one entry per file, named by its absolute dest."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for dest, content in files.items():
            info = tarfile.TarInfo(dest)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def wait_for(url: str, text: str, name: str, timeout: float = 45) -> float:
    start = time.monotonic()
    last = ""
    while time.monotonic() - start < timeout:
        try:
            answer = requests.get(url, timeout=2)
            last = answer.text
            if answer.status_code == 200 and answer.text == text:
                return time.monotonic() - start
        except requests.RequestException as error:
            last = str(error)
        time.sleep(0.25)
    logs = podman("logs", name, check=False)
    raise AssertionError(
        f"{url} never said {text!r} (last: {last!r}):\n{logs.stderr.decode()[-3000:]}"
    )


def test_synced_source_is_served_after_reload(applied: ApplyFn, hello_image: str, tmp_path: Path):
    dev = applied(SCENARIOS[SCENARIO_IDS.index("dev-kind")])
    spec = pod_spec(dev.objects("Deployment")["hashstack-hello"])
    (main,) = [c for c in spec["containers"] if c["name"] == "hello"]
    artifact = next(a for a in dev.artifacts if a["image"] == "hello")
    (rule,) = artifact["sync"]["manual"]
    app_volume = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}[rule["dest"]]
    (init,) = [
        c for c in spec["initContainers"] if app_volume in {m["name"] for m in c["volumeMounts"]}
    ]
    init_mount = next(m["mountPath"] for m in init["volumeMounts"] if m["name"] == app_volume)
    env = dev.objects("ConfigMap")["hashstack-hello"]["data"]
    user = f"{spec['securityContext']['runAsUser']}:{spec['securityContext']['runAsGroup']}"

    # The emptyDir as the kubelet makes it with an fsGroup: owned by root, group fsGroup,
    # mode 2777 (the init container may write into it but not change the directory itself).
    app = tmp_path / "app"
    app.mkdir()
    os.chown(app, 0, spec["securityContext"]["fsGroup"])
    app.chmod(0o2777)
    common = ["--read-only", "--tmpfs", "/tmp:rw,size=64m", "--user", user, "--network", "none"]
    podman(
        "run",
        "--rm",
        *common,
        "-v",
        f"{app}:{init_mount}",
        "--entrypoint",
        json.dumps(init["command"]),
        hello_image,
    )
    assert (app / "hashstack" / "hello.py").exists(), "the init container copied /app"

    name = f"hs-sync-{uuid.uuid4().hex[:8]}"
    run = ["run", "--detach", "--name", name, "--read-only", "--tmpfs", "/tmp:rw,size=64m"]
    run += ["--user", user, "-v", f"{app}:{rule['dest']}", "--publish", "127.0.0.1::8080"]
    run += [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    try:
        podman(*run, hello_image)
        port = podman("port", name, "8080/tcp").stdout.decode().split()[0].rpartition(":")[2]
        url = f"http://127.0.0.1:{port}/"
        wait_for(url, "Hello, World!", name)

        source = (ROOT / "images" / "hashstack" / "hello.py").read_text()
        assert "Hello, World!" in source
        rel = "hashstack/hello.py"
        dest = str(PurePosixPath(rule["dest"], rel))
        changed = source.replace("Hello, World!", "Hello, sync!").encode()
        synced = podman(
            "exec",
            "-i",
            name,
            "tar",
            "xmf",
            "-",
            "-C",
            "/",
            "--no-same-owner",
            data=skaffold_tar({dest: changed}),
        )
        assert synced.returncode == 0
        seconds = wait_for(url, "Hello, sync!", name)
        print(f"[skaffold] sync to served: {seconds:.1f} s")
        # Only the app dir took the write: the root filesystem is still read-only.
        denied = podman("exec", name, "touch", "/opt/venv/x", check=False)
        assert denied.returncode != 0
    finally:
        podman("rm", "--force", "--time", "2", name, check=False)

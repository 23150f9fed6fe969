"""File sync for real, without a cluster: the hello image runs the way the dev values render it
(init container copying /app to a writable volume, read-only root, the rendered environment),
a source file goes in exactly as Skaffold sends it (a tar through `tar xmf - -C / --no-same-owner`),
and gunicorn serves the new code after its reload (hashstack.devreload)."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path, PurePosixPath

import pytest
import requests

from tests.skaffold.scenarios import ROOT, SCENARIO_IDS, SCENARIOS, ApplyFn, pod_spec
from tests.support.podman import podman_bytes as podman
from tests.support.podman import skaffold_sync
from tests.support.wait import wait_until

pytestmark = [pytest.mark.podman, pytest.mark.slow]


@pytest.fixture(scope="module")
def hello_image(images: dict[str, str]) -> str:
    """The session's hello image (tests/conftest.py): `make test` builds it once for both
    this test and the images rung; OFFLINE=0 (the workflow) builds it the online way."""
    return images["hello"]


def wait_for(url: str, text: str, name: str, timeout: float = 45) -> float:
    """Seconds until `url` answers 200 with exactly `text`; the container's log on failure."""
    start = time.monotonic()

    def says_it() -> bool:
        try:
            answer = requests.get(url, timeout=2)
        except requests.RequestException:
            return False
        return answer.status_code == 200 and answer.text == text

    try:
        wait_until(says_it, timeout, f"{url} saying {text!r}", interval=0.25)
    except TimeoutError as error:
        logs = podman("logs", name, check=False)
        raise AssertionError(f"{error}:\n{logs.stderr.decode()[-3000:]}") from None
    return time.monotonic() - start


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
        skaffold_sync(name, {dest: changed})
        seconds = wait_for(url, "Hello, sync!", name)
        print(f"[skaffold] sync to served: {seconds:.1f} s")
        # Only the app dir took the write: the root filesystem is still read-only.
        # (python: the image has no shell tools; an error other than EROFS fails the check.)
        denied = podman(
            "exec", name, "python3", "-c",
            "import errno\ntry:\n    open('/opt/venv/x', 'w')\n"
            "except OSError as e:\n    raise SystemExit(0 if e.errno == errno.EROFS else 2)\n"
            "raise SystemExit(1)",
            check=False,
        )  # fmt: skip
        assert denied.returncode == 0, denied.stderr.decode()
    finally:
        podman("rm", "--force", "--time", "2", name, check=False)

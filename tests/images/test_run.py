"""Each image starts as the chart runs it (non-root, read-only root, /tmp a tmpfs) and serves."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.support import podman as pm
from tests.support.measurements import record
from tests.support.wait import wait_until


@pytest.mark.parametrize("service", pm.SERVICES)
def test_runs_read_only_and_serves_healthz(
    images: dict[str, str], containers: list[str], service: str
) -> None:
    name = pm.unique(f"hashstack-test-{service}")
    containers.append(name)
    # No etcd and no persistence here: liveness must not depend on them.
    pm.run_container(images[service], name, environment={"WEB_CONCURRENCY": "1"})
    url = pm.published_url(name)
    response = pm.wait_http(f"{url}/healthz", name)
    assert response.headers["Content-Type"].startswith("application/json")

    # python, not sh: the image has no shell.
    probe = (
        "import os\nprint(os.getuid(), os.getgid())\n"
        "try:\n    open('/app/x', 'w')\nexcept OSError:\n    print('denied')\n"
        "print(os.path.isdir('/tmp/hashstack-metrics'))"
    )
    ps = pm.podman("exec", name, "python3", "-c", probe)
    ids, denied, metrics_dir = ps.stdout.splitlines()
    assert ids == "10001 10001"
    assert denied == "denied"
    # The multiprocess metrics directory lives on the tmpfs and /metrics works from it.
    assert metrics_dir == "True"
    assert requests.get(f"{url}/metrics", timeout=5).status_code == 200
    if service == "hello":
        assert requests.get(url, timeout=5).text.startswith("Hello, World!")

    # SIGTERM reaches gunicorn (PID 1) and it stops on its own, well before podman's SIGKILL.
    start = time.monotonic()
    pm.podman("stop", "--time", "15", name)
    took = time.monotonic() - start
    code = pm.podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    record(f"{service}: stop after SIGTERM (s)", round(took, 2))
    assert took < 10
    assert code == "0", f"exit code {code} after SIGTERM"


def test_dev_file_sync_into_a_writable_copy_of_app(
    images: dict[str, str], containers: list[str], tmp_path: Path
) -> None:
    """The chart's dev mode with the production image: an init step copies /app (as 10001) into
    an emptyDir-like directory mounted on /app; skaffold's sync (a tar piped into `tar xmf - -C /`)
    lands there and gunicorn's reload serves the new code; the root filesystem stays read-only."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    app_dir.chmod(0o777)  # an emptyDir is world-writable
    pm.podman(
        "run", "--rm", "--network=none", "--read-only", "--user", "10001:10001",
        "--volume", f"{app_dir}:/writable-app", "--entrypoint", "python", images["hello"],
        # Copy the package directory, not /app itself: copying /app's mode and times onto the
        # volume's root (owned by root) is not permitted to UID 10001.
        "-c", 'import shutil; shutil.copytree("/app/hashstack", "/writable-app/hashstack")',
    )  # fmt: skip
    assert (app_dir / "hashstack" / "hello.py").is_file()

    name = pm.unique("hashstack-test-sync")
    containers.append(name)
    pm.run_container(
        images["hello"], name, extra=["--volume", f"{app_dir}:/app"],
        environment={"GUNICORN_RELOAD": "true", "WEB_CONCURRENCY": "1"},
    )  # fmt: skip
    url = pm.published_url(name)
    assert pm.wait_http(url + "/", name).text.startswith("Hello, World!")

    # What skaffold sends for images/hashstack/hello.py with dest /app.
    source = (pm.ROOT / "images" / "hashstack" / "hello.py").read_text()
    assert '"Hello, World!"' in source
    edited = source.replace('"Hello, World!"', '"Hello, synced world!"')
    pm.skaffold_sync(name, {"/app/hashstack/hello.py": edited.encode()})

    def synced() -> bool:
        try:
            return requests.get(url + "/", timeout=2).text.startswith("Hello, synced world!")
        except requests.RequestException:
            return False

    wait_until(synced, 30, "the reload picking up the synced file", interval=0.5)

"""The service images as a node meets them (issue 24): size, container start -> /readyz over
several fresh starts per service, and the pull of the three images into an empty podman store
from a real registry on loopback. Real podman, the images ci/images.sh built under `tag`, the
test etcd image for persistence's first etcd connection."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tests.support import podman as pm
from tests.support.registry import running_registry

MB = 1_000_000


def measure_images(tag: str, starts: int, pulls: int) -> dict[str, Any]:
    refs = {svc: f"localhost/hashstack/{svc}:{tag}" for svc in pm.SERVICES}
    sizes = {svc: round(int(pm.inspect_image(ref)["Size"]) / MB, 1) for svc, ref in refs.items()}
    print(f"  start -> /readyz: {starts} fresh containers per service", flush=True)
    times = pm.service_start_times(refs, pm.ETCD_TEST_IMAGE, starts)
    pull_times = []
    with tempfile.TemporaryDirectory() as data, running_registry(Path(data)) as registry:
        pm.script("ci/images.sh", "push", registry.address, extra_env={"TAG": tag})
        pushed = [f"{registry.address}/hashstack/{svc}:{tag}" for svc in pm.SERVICES]
        pm.podman("rmi", *pushed, check=False)  # the registry's names only; the images stay
        for round_ in range(pulls):
            with pm.empty_store() as store:
                pull_times.append(round(pm.pull_seconds(pushed, store), 2))
            print(f"  pull of the three images, round {round_ + 1}: {pull_times[-1]} s", flush=True)
    return {
        "tag": tag,
        "size_mb": sizes,
        "start_to_ready_s": {
            svc: [round(r["start"], 3) for r in rows] for svc, rows in times.items()
        },
        "run_to_ready_s": {svc: [round(r["run"], 3) for r in rows] for svc, rows in times.items()},
        "pull_s": pull_times,
    }

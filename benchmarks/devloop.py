"""The inner loop's steps that run without a cluster, measured (`make bench-devloop`):

1. sync: one edit of hashstack/hello.py goes into a running hello container exactly as skaffold
   sends it (a tar into `tar xmf - -C / --no-same-owner`), gunicorn's dev reload
   (hashstack.devreload) swaps the worker, and the new answer is served. A client calls the
   service every 10 ms meanwhile and counts every failed call (refused, reset, non-200).
2. rebuild: an edit that skaffold rebuilds for: `ci/images.sh skaffold hello` run as skaffold's
   custom builder runs it (cwd the context; IMAGE, PUSH_IMAGE, BUILD_CONTEXT), then a new
   container from that image until it serves the new answer.

The container runs as the dev values render it: read-only root, /app a writable directory
holding the package (the emptyDir), GUNICORN_RELOAD=true, one worker. Prints each step's median
and spread (min-max) over the rounds. Heavy (podman builds and runs): run it alone.

    python -m benchmarks.devloop [--syncs 10] [--rebuilds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

from tests.support.caller import Caller
from tests.support.podman import (
    ROOT,
    env,
    podman,
    published_url,
    remove_containers,
    run_container,
    script,
    skaffold_sync,
    unique,
    wait_http,
)

APP_USER = "10001:10001"
DEV_ENV = {"GUNICORN_RELOAD": "true", "WEB_CONCURRENCY": "1", "LOG_LEVEL": "info"}
GREETING = re.compile(r"Hello, [^\"!]*!")


def served_after(url: str, text: str, start: float, timeout: float = 60) -> float:
    """Seconds from `start` until `url` answers `text` (polled every 5 ms)."""
    while time.monotonic() - start < timeout:
        try:
            if requests.get(url, timeout=2).text == text:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"{url} never said {text!r}")


PACKAGE = ROOT / "images" / "hashstack"


def greeting_source(text: str, package: Path = PACKAGE) -> bytes:
    source = (package / "hello.py").read_text()
    assert GREETING.search(source), "hello.py's greeting moved: update benchmarks/devloop.py"
    return GREETING.sub(text, source, count=1).encode()


def writable_app(where: Path, package: Path) -> Path:
    """The dev pod's /app: a copy of the package the service user may write into."""
    app = where / "app"
    shutil.copytree(
        package,
        app / "hashstack",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    uid, gid = (int(x) for x in APP_USER.split(":"))
    for path in [app, *app.rglob("*")]:
        os.chown(path, uid, gid)
    return app


def dev_container(image: str, app: Path) -> tuple[str, str]:
    name = unique("hs-devloop")
    extra = ["--user", APP_USER, "-v", f"{app}:/app"]
    run_container(image, name, environment=DEV_ENV, extra=extra)
    url = published_url(name) + "/"
    wait_http(url, name)
    return name, url


def measure_syncs(
    image: str, rounds: int, package: Path = PACKAGE
) -> tuple[list[float], int, list[str]]:
    with tempfile.TemporaryDirectory() as where:
        name, url = dev_container(image, writable_app(Path(where), package))
        seconds = []
        try:
            with Caller(url) as caller:
                for i in range(rounds):
                    text = f"Hello, sync {i}!"
                    start = time.monotonic()
                    source = greeting_source(text, package)
                    skaffold_sync(name, {"/app/hashstack/hello.py": source})
                    seconds.append(served_after(url, text, start))
                    time.sleep(1.0)  # the old worker's graceful stop is inside the window
        finally:
            remove_containers(name)
        return seconds, caller.calls, caller.failures


def measure_rebuilds(rounds: int) -> tuple[list[float], list[float]]:
    builds, served = [], []
    with tempfile.TemporaryDirectory() as where:
        context = Path(where) / "images"
        shutil.copytree(ROOT / "images", context, ignore=shutil.ignore_patterns("__pycache__"))
        for i in range(rounds):
            text = f"Hello, rebuild {i} {time.time_ns()}!"
            (context / "hashstack" / "hello.py").write_bytes(greeting_source(text))
            image = f"localhost/hashstack-bench/hello:devloop-{i}"
            start = time.monotonic()
            subprocess.run(
                ["sh", "-c", f"{ROOT}/ci/images.sh skaffold hello"],
                cwd=context,
                env={**env(), "IMAGE": image, "PUSH_IMAGE": "false", "BUILD_CONTEXT": str(context)},
                check=True,
                capture_output=True,
                timeout=900,
            )
            builds.append(time.monotonic() - start)
            name = unique("hs-devloop")
            try:
                run_container(image, name, environment=DEV_ENV)
                url = published_url(name) + "/"
                served.append(served_after(url, text, start))
            finally:
                remove_containers(name)
                podman("rmi", image, check=False)
    return builds, served


def line(label: str, values: list[float]) -> str:
    return (
        f"{label:<44} median {statistics.median(values):6.3f} s   "
        f"spread {min(values):.3f}-{max(values):.3f} s   ({len(values)} rounds)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syncs", type=int, default=10)
    parser.add_argument("--rebuilds", type=int, default=3)
    parser.add_argument(
        "--package",
        type=Path,
        default=PACKAGE,
        help="the hashstack package the sync step serves from /app (its gunicorn config "
        "included), e.g. an older revision's, to compare",
    )
    args = parser.parse_args()
    tag = unique("devloop")
    script("ci/images.sh", "build", "hello", extra_env={"TAG": tag})
    image = f"localhost/hashstack/hello:{tag}"
    try:
        syncs, calls, failures = measure_syncs(image, args.syncs, args.package.resolve())
        print(line("sync: edit -> tar -> reload -> new answer", syncs))
        kinds = Counter("refused" if "refused" in f else f.split(":")[0] for f in failures)
        failed = f"{len(failures)} of {calls} {dict(kinds) or ''}"
        print(f"{'sync: failed calls during the reloads':<44} {failed}")
        if args.rebuilds:
            builds, served = measure_rebuilds(args.rebuilds)
            print(line("rebuild: ci/images.sh skaffold hello", builds))
            print(line("rebuild: edit -> new container serving", served))
    finally:
        podman("rmi", image, check=False)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

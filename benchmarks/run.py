"""`make bench`: every figure as a ratio to this machine's own ceiling, all taken in one run.

Shared CI machines drift by tens of percent within minutes, so absolute req/s mean little.
Each round measures every configuration back to back (the order rotates between rounds) and a
ratio is taken within a round; the printed figure is the median over the rounds with its
min-max, and a goal counts as met only when every round meets it.

Phases: worker balance (fresh starts, old config vs the fix), maximum throughput with wrk over
a range of concurrencies, latency at a fixed offered load (open loop, half of each service's
maximum), and the allocator alone. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import system
from benchmarks.allocator_bench import measure_allocator
from benchmarks.openloop import run_open_loop
from benchmarks.readme import every_round_meets, markdown, spread, write_figures
from benchmarks.sampler import BodySampler, number_in, repeated
from benchmarks.stack import (
    BASELINE_CONFIG,
    PROJECT_CONFIG,
    ROOT,
    BenchStack,
    OtlpSink,
    Target,
)
from benchmarks.tracing_bench import hooks_off_seconds
from benchmarks.wrk import finish_wrk, start_wrk

HEADLINE = 32  # connections for the maximum-throughput figures (the wrk -t2 -c32)
SWEEP_TARGETS = ("hello", "persistence", "hash", "hash-memory")
# hash-etcd-1w: the fair partner of hash-memory for R3; hash-traced: hash with tracing on.
HEADLINE_ONLY = ("hash-etcd-1w", "hash-traced")
FIXED_LOAD_TARGETS = ("hello", "persistence", "hash")
SATURATED = 0.85
WORST_SPLIT = 0.65


@dataclass(frozen=True)
class Plan:
    repeats: int
    seconds: float
    concurrencies: tuple[int, ...]
    fixed_seconds: float
    balance_starts: int
    allocator_seconds: float
    image_starts: int = 5  # fresh containers per service, timed from start to /readyz
    image_pulls: int = 3  # pulls of the three images into an empty store


FULL = Plan(3, 4.0, (1, 8, 32, 64), 4.0, 4, 2.0)
QUICK = Plan(1, 2.0, (8, 32), 2.0, 1, 1.0, image_starts=2, image_pulls=1)


@dataclass
class Run:
    """Everything recorded during the benchmark; turned into JSON at the end."""

    plan: Plan
    throughput: list[dict[str, Any]] = field(default_factory=list)
    fixed_load: list[dict[str, Any]] = field(default_factory=list)
    balance: list[dict[str, Any]] = field(default_factory=list)
    allocator: list[dict[str, Any]] = field(default_factory=list)
    tracing_off: list[dict[str, Any]] = field(default_factory=list)
    numbers: dict[str, list[int]] = field(default_factory=dict)
    sampler_problems: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    spans_exported: int = 0

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        print(f"  WARNING: {message}", flush=True)


def measure_throughput(
    target: Target, connections: int, seconds: float, sample: bool
) -> dict[str, Any]:
    """One wrk run, with the machine's and each worker's CPU and the connection split."""
    workers = target.service.worker_pids()
    upstream = target.upstream.worker_pids() if target.upstream else []
    machine_before = system.machine_cpu()
    cpu_before = system.cpu_of(workers)
    upstream_before = system.cpu_of(upstream)
    sampler = BodySampler(target.service.port) if sample and target.counter else None
    if sampler:
        sampler.__enter__()
    wrk = start_wrk(target.url, connections, seconds)
    time.sleep(seconds / 2)
    connections_split = system.connections_per_worker(target.service.port, workers)
    upstream_split = (
        system.connections_per_worker(target.upstream.port, upstream) if target.upstream else []
    )
    result = finish_wrk(wrk, connections)
    if sampler:
        sampler.__exit__()
    busy = system.busy_fraction(machine_before, system.machine_cpu())
    worker_cpu = system.cpu_used(cpu_before, system.cpu_of(workers))
    upstream_cpu = system.cpu_used(upstream_before, system.cpu_of(upstream))
    return {
        "target": target.name,
        **result.as_dict(),
        "machine_busy": round(busy, 3),
        "worker_cpu_s": [round(v, 2) for v in worker_cpu],
        "worker_connections": connections_split,
        "upstream_cpu_s": [round(v, 2) for v in upstream_cpu],
        "upstream_connections": upstream_split,
        "sampled_numbers": sampler.numbers if sampler else [],
        "sampler_problems": dict(sampler.problems) if sampler else {},
    }


def phase_balance(stack: BenchStack, run: Run) -> None:
    print("\n== worker balance: fresh hello starts, shared socket (old) vs SO_REUSEPORT (fix)")
    for start in range(run.plan.balance_starts):
        for config in (BASELINE_CONFIG, PROJECT_CONFIG):
            process = stack.fresh_hello(config).start()
            try:
                time.sleep(0.3)
                target = Target(process.name, process.name, process)
                row = measure_throughput(target, HEADLINE, run.plan.seconds, sample=False)
            finally:
                process.stop(timeout=10)
            row["config"] = "shared socket (old)" if config == BASELINE_CONFIG else "reuse_port"
            row["start"] = start
            run.balance.append(row)
            print(
                f"  {row['config']:<20} start {start}: connections "
                f"{'/'.join(map(str, row['worker_connections'])):<6} cpu "
                f"{_split(row['worker_cpu_s']):<6} {row['rps']:>7.0f} req/s",
                flush=True,
            )


def phase_throughput(stack: BenchStack, run: Run) -> None:
    plan = run.plan
    print(f"\n== maximum throughput (wrk, {plan.seconds:.0f} s per run, {plan.repeats} rounds)")
    for name in (*SWEEP_TARGETS, *HEADLINE_ONLY):  # warm every path once
        finish_wrk(start_wrk(stack.targets[name].url, 8, 1), 8)
    stack.settle()
    for round_ in range(plan.repeats):
        for connections in plan.concurrencies:
            names = list(SWEEP_TARGETS) + (list(HEADLINE_ONLY) if connections == HEADLINE else [])
            shift = round_ % len(names)  # rotate so no configuration always goes first
            for name in names[shift:] + names[:shift]:
                target = stack.targets[name]
                row = measure_throughput(target, connections, plan.seconds, sample=True)
                if name == "hash-traced":
                    stack.settle()
                row["round"] = round_
                run.throughput.append(row)
                numbers = row.pop("sampled_numbers")
                if target.counter:
                    run.numbers.setdefault(target.counter, []).extend(numbers)
                for problem, count in row.pop("sampler_problems").items():
                    run.sampler_problems[problem] = run.sampler_problems.get(problem, 0) + count
                print(
                    f"  round {round_} c={connections:<3} {name:<13} {row['rps']:>7.0f} req/s  "
                    f"p99 {row['p99_ms']:>7.1f} ms  busy {row['machine_busy']:>4.0%}  workers "
                    f"{_split(row['worker_cpu_s'])}"
                    + (f"  persistence {_split(row['upstream_cpu_s'])}" if target.upstream else "")
                    + (f"  ERRORS {row['errors']}" if row["error_count"] else ""),
                    flush=True,
                )


def phase_fixed_load(stack: BenchStack, run: Run, maxima: dict[str, float]) -> None:
    plan = run.plan
    rates = {name: maxima[name] / 2 for name in FIXED_LOAD_TARGETS}
    print("\n== latency at a fixed offered load (open loop, half of each maximum)")
    jobs = [(name, name, rates[name]) for name in FIXED_LOAD_TARGETS]
    jobs.append(("hello", "hello@hash-rate", rates["hash"]))  # the same absolute load as hash
    for round_ in range(plan.repeats):
        shift = round_ % len(jobs)
        for name, label, rate in jobs[shift:] + jobs[:shift]:
            target = stack.targets[name]
            result = run_open_loop(
                target.service.port, rate, plan.fixed_seconds, keep_bodies=bool(target.counter)
            )
            if target.counter:
                run.numbers.setdefault(target.counter, []).extend(
                    number_in(body) for body in result.bodies
                )
            row = {"target": label, "round": round_, **result.summary()}
            row["error_count"] = result.error_count
            run.fixed_load.append(row)
            print(
                f"  round {round_} {label:<16} {row['offered_rps']:>7.0f} req/s offered, "
                f"{row['achieved_rps']:>7.0f} answered  p50 {row['p50_ms']:>6.1f} ms  "
                f"p99 {row['p99_ms']:>7.1f} ms  (generator lag p99 "
                f"{row['generator_lag_p99_ms']:.1f} ms)"
                + (f"  ERRORS {row['statuses']} {row['errors']}" if row["error_count"] else ""),
                flush=True,
            )


def phase_allocator(stack: BenchStack, run: Run, block_size: int) -> None:
    plan = run.plan
    print(f"\n== the allocator alone (2 processes x 4 threads, {plan.allocator_seconds:.0f} s)")
    for round_ in range(plan.repeats):
        for size in (1, block_size) if round_ % 2 == 0 else (block_size, 1):
            result = measure_allocator(stack.etcd.client_url, size, plan.allocator_seconds, round_)
            run.allocator.append(
                {
                    "round": round_,
                    "block_size": size,
                    "numbers": result.numbers,
                    "per_second": round(result.per_second, 1),
                    "measured_s": round(result.seconds, 3),
                    "duplicates": result.duplicates,
                }
            )
            print(
                f"  round {round_} block {size:<5} {result.per_second:>10,.0f} numbers/s"
                f" over {result.seconds:.2f} s measured"
                f"  duplicates {result.duplicates}",
                flush=True,
            )


def phase_tracing_off(run: Run) -> None:
    print("\n== tracing off: the hooks of one hash request, timed in this process")
    for round_ in range(run.plan.repeats):
        seconds = hooks_off_seconds()
        run.tracing_off.append({"round": round_, "hooks_ns": round(seconds * 1e9, 1)})
        print(f"  round {round_} {seconds * 1e9:>8.0f} ns per hash request", flush=True)


def tracing_off_share(run: Run) -> list[float]:
    """Per round: the hooks' time in % of the CPU one hash request took (hash's and its
    persistence's workers together, under wrk at 32 connections)."""
    shares = []
    for row in run.tracing_off:
        (measured,) = _rows(run.throughput, target="hash", connections=HEADLINE, round=row["round"])
        cpu = sum(measured["worker_cpu_s"]) + sum(measured["upstream_cpu_s"])
        if measured["requests"] and cpu:
            shares.append(100 * row["hooks_ns"] * 1e-9 / (cpu / measured["requests"]))
    return shares


def _split(values: list[float] | list[int]) -> str:
    total = sum(values)
    if total <= 0 or len(values) < 2:
        return "-"
    return "/".join(f"{100 * v / total:.0f}" for v in values)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _rows(rows: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [row for row in rows if all(row.get(k) == v for k, v in match.items())]


def per_round_ratio(
    rows: list[dict[str, Any]], key: str, top: dict[str, Any], bottom: dict[str, Any]
) -> list[float]:
    ratios = []
    for round_ in sorted({row["round"] for row in rows}):
        upper = _rows(rows, round=round_, **top)
        lower = _rows(rows, round=round_, **bottom)
        if upper and lower and lower[0][key]:
            ratios.append(upper[0][key] / lower[0][key])
    return ratios


def summarise(run: Run, block_size: int) -> dict[str, Any]:
    tp = run.throughput
    head = {"connections": HEADLINE}
    maxima = {
        name: median([r["rps"] for r in _rows(tp, target=name, **head)])
        for name in (*SWEEP_TARGETS, *HEADLINE_ONLY)
    }
    ratios = {
        "R1": per_round_ratio(tp, "rps", {"target": "hash", **head}, {"target": "hello", **head}),
        "R2": per_round_ratio(
            tp, "rps", {"target": "persistence", **head}, {"target": "hello", **head}
        ),
        "R3": per_round_ratio(
            tp, "rps", {"target": "hash-etcd-1w", **head}, {"target": "hash-memory", **head}
        ),
        "R3_shipped": per_round_ratio(
            tp, "rps", {"target": "hash", **head}, {"target": "hash-memory", **head}
        ),
        "R4": per_round_ratio(
            run.allocator, "per_second", {"block_size": block_size}, {"block_size": 1}
        ),
        # At the same offered rate (hash's half maximum): the fair comparison, and the goal.
        "P99": per_round_ratio(
            run.fixed_load, "p99_ms", {"target": "hash"}, {"target": "hello@hash-rate"}
        ),
        "P99_own_rate": per_round_ratio(
            run.fixed_load, "p99_ms", {"target": "hash"}, {"target": "hello"}
        ),
        "T_OFF": tracing_off_share(run),
        "T_ON": per_round_ratio(
            tp, "rps", {"target": "hash-traced", **head}, {"target": "hash", **head}
        ),
    }
    errors = sum(r["error_count"] for r in tp) + sum(r["error_count"] for r in run.fixed_load)
    duplicates = {counter: repeated(numbers) for counter, numbers in run.numbers.items()}
    duplicates["allocator"] = [r["duplicates"] for r in run.allocator if r["duplicates"]]
    balance = {}
    for config in dict.fromkeys(row["config"] for row in run.balance):
        rows = _rows(run.balance, config=config)
        balance[config] = {
            "splits": ["/".join(map(str, r["worker_connections"])) for r in rows],
            "lopsided": sum(
                1 for r in rows if system.share_of_busiest(r["worker_connections"]) > WORST_SPLIT
            ),
            "worst_cpu_share": max(system.share_of_busiest(r["worker_cpu_s"]) for r in rows),
            "median_rps": median([r["rps"] for r in rows]),
        }
    return {
        "balance": balance,
        "maxima_rps": maxima,
        "ratios": {
            key: {
                "median": median(v),
                "min": min(v, default=float("nan")),
                "max": max(v, default=float("nan")),
                "rounds": v,
            }
            for key, v in ratios.items()
        },
        "errors": errors,
        "numbers_checked": {counter: len(numbers) for counter, numbers in run.numbers.items()},
        "duplicates": {k: len(v) for k, v in duplicates.items()},
    }


GOALS = [
    # key, description, comparison, goal
    ("R1", "hash req/s / hello req/s", ">=", 0.25),
    ("R2", "persistence req/s / hello req/s", ">=", 0.7),
    ("R3", "hash on etcd / hash on memory store (1 persistence worker each)", ">=", 0.9),
    ("R4", "allocator numbers/s: block / one CAS per number", ">=", 50.0),
    ("P99", "hash p99 / hello p99, both at hash's half maximum rate", "<=", 3.0),
    ("T_OFF", "tracing off: its hooks' time, % of a hash request's CPU time", "<=", 1.0),
]


def check_health(run: Run) -> None:
    """The warnings the issue asks for: unsaturated CPU, lopsided workers."""
    for row in run.throughput:
        where = f"{row['target']} c={row['connections']} round {row['round']}"
        if row["connections"] == HEADLINE and row["machine_busy"] < SATURATED:
            run.warn(f"{where}: CPU only {row['machine_busy']:.0%} busy (not saturated)")
        for kind in ("worker_cpu_s", "upstream_cpu_s"):
            share = system.share_of_busiest(row[kind])
            # One connection can only ever use one worker: judge splits from 8 connections up.
            if row["connections"] >= 8 and share > WORST_SPLIT:
                whose = "persistence workers" if kind == "upstream_cpu_s" else "workers"
                run.warn(f"{where}: {whose} CPU split {_split(row[kind])} worse than 65/35")


def print_summary(run: Run, summary: dict[str, Any], block_size: int) -> None:
    print("\n== results (medians over rounds; ratios taken within each round)")
    print(f"  maximum req/s at {HEADLINE} connections:")
    for name, value in summary["maxima_rps"].items():
        rows = _rows(run.throughput, target=name, connections=HEADLINE)
        p99 = median([r["p99_ms"] for r in rows])
        split = median([system.share_of_busiest(r["worker_cpu_s"]) for r in rows])
        print(f"    {name:<13} {value:>8,.0f}   p99 {p99:>6.1f} ms   busiest worker {split:.0%}")
    for config, figures in summary["balance"].items():
        print(
            f"  worker balance, {config}: connection splits {', '.join(figures['splits'])}; "
            f"{figures['lopsided']} of {len(figures['splits'])} starts worse than 65/35; "
            f"busiest worker's CPU up to {figures['worst_cpu_share']:.0%}; "
            f"median {figures['median_rps']:,.0f} req/s"
        )
    print(f"\n  {'ratio':<4} {'what':<66} {'median':>7}  {'min-max':<13}  goal")
    for key, what, comparison, goal in GOALS:
        figures = summary["ratios"][key]
        met = every_round_meets(figures["rounds"], comparison, goal)
        print(
            f"  {key:<4} {what:<66} {figures['median']:>7.2f}  {spread(figures):<13}  "
            f"{comparison} {goal:g}  {'met' if met else 'MISSED'}"
        )
    extra = summary["ratios"]
    print(
        f"       (as shipped, etcd persistence runs 2 workers: hash etcd / memory = "
        f"{extra['R3_shipped']['median']:.2f} ({spread(extra['R3_shipped'])}); hash p99 / "
        f"hello p99, each at half its own maximum = {extra['P99_own_rate']['median']:.2f} "
        f"({spread(extra['P99_own_rate'])}); block size {block_size})"
    )
    print(
        f"       tracing on (every span exported over OTLP/HTTP): hash req/s traced / "
        f"untraced = {extra['T_ON']['median']:.2f} ({spread(extra['T_ON'])})"
    )
    checked = ", ".join(f"{n} from {c}" for c, n in summary["numbers_checked"].items())
    print(f"  errors at steady state: {summary['errors']} (goal 0)")
    print(
        f"  duplicate numbers: {sum(summary['duplicates'].values())} (goal 0; "
        f"checked {checked} and every allocator number)"
    )
    if run.warnings:
        print(f"  {len(run.warnings)} warning(s) above: the figures are less trustworthy")


def git_revision() -> str:
    """The commit measured, with "-dirty" when the work tree differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        rev = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}-dirty" if dirty else rev


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short round (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--images-tag",
        default=os.environ.get("BENCH_IMAGES_TAG", ""),
        help="time the images of this tag (start -> /readyz, pull); ci/bench.sh builds them",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="copy the run to the committed benchmarks/latest.* (make bench-update)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    from hashstack.config import Settings

    block_size = Settings.from_env().block_size
    run = Run(plan)
    base_dir = Path(tempfile.mkdtemp(prefix="hashstack-bench-"))
    started = time.monotonic()
    print(
        f"hashstack benchmark: {os.cpu_count()} CPUs, {plan.repeats} round(s), logs in {base_dir}",
        flush=True,
    )
    with OtlpSink() as sink:
        stack = BenchStack(base_dir, sink)
        try:
            phase_balance(stack, run)
            stack.start()
            phase_throughput(stack, run)
            maxima = summarise(run, block_size)["maxima_rps"]
            phase_fixed_load(stack, run, maxima)
            phase_allocator(stack, run, block_size)
            phase_tracing_off(run)
        finally:
            stack.stop()
        run.spans_exported = len(sink.spans)
    if not run.spans_exported:
        run.warn("tracing on, yet no span reached the OTLP receiver: T_ON measured nothing")
    images = None
    if args.images_tag:
        # After the services above are stopped: the containers get the machine to themselves.
        from benchmarks.containers import measure_images

        print("images (podman)", flush=True)
        images = measure_images(args.images_tag, plan.image_starts, plan.image_pulls)
    else:
        run.warn("no --images-tag (ci/bench.sh passes one): image start and pull not measured")
    check_health(run)
    summary = summarise(run, block_size)
    print_summary(run, summary, block_size)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "revision": git_revision(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "plan": plan.__dict__,
        "block_size": block_size,
        "seconds": round(time.monotonic() - started),
        "goals": {key: {"comparison": c, "goal": g, "what": w} for key, w, c, g in GOALS},
        "summary": summary,
        "warnings": run.warnings,
        "throughput": run.throughput,
        "fixed_load": run.fixed_load,
        "balance": run.balance,
        "allocator": run.allocator,
        "tracing_off": run.tracing_off,
        "spans_exported": run.spans_exported,
        "images": images,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = args.out / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    from benchmarks.plot import plot

    png_path = args.out / f"bench-{stamp}.png"
    plot(result, png_path)
    (args.out / f"bench-{stamp}.md").write_text(markdown(result))
    if args.update and not args.quick:
        for suffix in ("json", "png", "md"):
            shutil.copyfile(
                args.out / f"bench-{stamp}.{suffix}", ROOT / f"benchmarks/latest.{suffix}"
            )
        write_figures(markdown(result))  # docs/benchmarks.md shows the latest full run
    shutil.rmtree(base_dir, ignore_errors=True)  # logs of a million requests: not worth keeping
    print(f"\nwrote {json_path} and {png_path} in {time.monotonic() - started:.0f} s")
    # Ratios drift with the machine and only warn; a repeated number or an error is a bug.
    return 1 if summary["errors"] or any(summary["duplicates"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())

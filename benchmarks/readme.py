"""The figures of a run as Markdown: benchmarks/latest.md, and the block between the markers in
docs/benchmarks.md (the page people read), both written by `make bench`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START = "<!-- bench-figures:start -->"
END = "<!-- bench-figures:end -->"


def goal_met(value: float, comparison: str, goal: float) -> bool:
    return value >= goal if comparison == ">=" else value <= goal


def every_round_meets(rounds: list[float], comparison: str, goal: float) -> bool:
    """Met only when each round meets the goal (a median can hide a missed round)."""
    return bool(rounds) and all(goal_met(value, comparison, goal) for value in rounds)


def spread(figures: dict[str, Any]) -> str:
    """A ratio's "min-max" over the rounds."""
    return f"{figures['min']:.2f}-{figures['max']:.2f}"


def markdown(result: dict[str, Any]) -> str:
    summary = result["summary"]
    ratios = summary["ratios"]
    lines = [
        f"Run {result['when']} of revision {result.get('revision', 'unknown')} on "
        f"{result['machine']['cpus']} CPUs, {result['plan']['repeats']} interleaved rounds, "
        f"{result['seconds']} s in all. A goal is met only when every round meets it.",
        "",
        "| ratio | what | median | min-max over rounds | goal | |",
        "|---|---|---:|---:|---|---|",
    ]
    for key, goal in result["goals"].items():
        figures = ratios[key]
        met = every_round_meets(figures["rounds"], goal["comparison"], goal["goal"])
        lines.append(
            f"| {key} | {goal['what']} | {figures['median']:.2f} | {spread(figures)} | "
            f"{goal['comparison']} {goal['goal']:g} | {'met' if met else '**missed**'} |"
        )
    if "T_ON" in ratios:
        lines += [
            "",
            f"Tracing on (every span exported over OTLP/HTTP): hash req/s traced / untraced "
            f"{ratios['T_ON']['median']:.2f} ({spread(ratios['T_ON'])}).",
        ]
    lines += [
        "",
        "| service (32 connections) | req/s (median) |",
        "|---|---:|",
    ]
    for name, value in summary["maxima_rps"].items():
        lines.append(f"| {name} | {value:,.0f} |")
    fixed = {}
    for row in result["fixed_load"]:
        fixed.setdefault(row["target"], []).append(row)
    lines += [
        "",
        "| fixed load (open loop) | offered req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for name, rows in fixed.items():
        rows = sorted(rows, key=lambda r: r["p99_ms"])
        middle = rows[len(rows) // 2]
        lines.append(
            f"| {name} | {middle['offered_rps']:,.0f} | {middle['p50_ms']:.1f} | "
            f"{middle['p99_ms']:.1f} |"
        )
    lines += [
        "",
        "| worker balance, fresh starts, 32 connections | connection splits | median req/s |",
    ]
    lines.append("|---|---|---:|")
    for config, figures in summary.get("balance", {}).items():
        lines.append(
            f"| {config} | {', '.join(figures['splits'])} | {figures['median_rps']:,.0f} |"
        )
    lines += images_section(result.get("images"))
    duplicates = sum(summary["duplicates"].values())
    checked = sum(summary["numbers_checked"].values())
    lines += [
        "",
        f"Errors at steady state: {summary['errors']}. Duplicate numbers: {duplicates} "
        f"(of {checked:,} answers read, plus every number the allocator benchmark took).",
    ]
    if result["warnings"]:
        lines.append(f"Warnings during the run: {len(result['warnings'])} (see latest.json).")
    return "\n".join(lines) + "\n"


READY_GOAL_S = 1.0  # issue 24: ready within a second of the container starting


def images_section(images: dict[str, Any] | None) -> list[str]:
    """The service images: size, start -> /readyz over fresh starts, pull into an empty store."""
    if not images:
        return []
    lines = [
        "",
        "| image | MB | start -> /readyz, median s | min-max | podman run -> /readyz, median s "
        f"| every start < {READY_GOAL_S:g} s |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for service, starts in images["start_to_ready_s"].items():
        ordered = sorted(starts)
        runs = sorted(images["run_to_ready_s"][service])
        met = all(value < READY_GOAL_S for value in ordered)
        lines.append(
            f"| {service} | {images['size_mb'][service]:.1f} | "
            f"{ordered[len(ordered) // 2]:.2f} | {ordered[0]:.2f}-{ordered[-1]:.2f} | "
            f"{runs[len(runs) // 2]:.2f} | {'met' if met else '**missed**'} |"
        )
    pulls = sorted(images["pull_s"])
    lines += [
        "",
        f"Pull of the three images from a registry on loopback into an empty podman store: "
        f"median {pulls[len(pulls) // 2]:.1f} s (min-max {pulls[0]:.1f}-{pulls[-1]:.1f}, "
        f"{len(pulls)} pulls).",
    ]
    return lines


def figures_on_page(text: str) -> str | None:
    """The figures block of a page, or None when it has no markers."""
    if START not in text or END not in text:
        return None
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def write_figures(figures: str, page: Path = PAGE) -> None:
    """Replace the page's figures block; a page without the markers is an error, not a no-op."""
    text = page.read_text()
    if figures_on_page(text) is None:
        raise SystemExit(f"{page}: no {START} ... {END} block to write the figures into")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    page.write_text(f"{head}{START}\n{figures.strip(chr(10))}\n{END}{tail}")

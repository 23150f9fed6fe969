"""The figures of a run as the Markdown table the README shows (benchmarks/latest.md)."""

from __future__ import annotations

from typing import Any


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
        met = bool(figures["rounds"]) and all(
            v >= goal["goal"] if goal["comparison"] == ">=" else v <= goal["goal"]
            for v in figures["rounds"]
        )
        lines.append(
            f"| {key} | {goal['what']} | {figures['median']:.2f} | "
            f"{min(figures['rounds']):.2f}-{max(figures['rounds']):.2f} | "
            f"{goal['comparison']} {goal['goal']:g} | {'met' if met else '**missed**'} |"
        )
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

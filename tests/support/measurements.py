"""Numbers the tests measure (sizes, build times, shares), shown after the run.

Each is appended to .cache/images/measurements.jsonl as it is taken, so the numbers of every
pytest-xdist worker reach the one terminal summary; the summary also writes them, merged, to
.cache/images/measurements.json.
"""

from __future__ import annotations

import json

import pytest

from tests.support import podman as pm

OUT = pm.ROOT / ".cache" / "images"
TAKEN = OUT / "measurements.jsonl"


def start_session(config: pytest.Config) -> None:
    """Called once per run, in the process that prints the summary (not in xdist workers)."""
    if not hasattr(config, "workerinput"):
        OUT.mkdir(parents=True, exist_ok=True)
        TAKEN.write_text("")


def record(key: str, value: object) -> None:
    print(f"[images] {key}: {value}")
    OUT.mkdir(parents=True, exist_ok=True)
    with TAKEN.open("a") as taken:  # one short line per write: appends do not interleave
        taken.write(json.dumps([key, value], default=str) + "\n")


def summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The measurements in pytest's terminal summary and in .cache/images/measurements.json."""
    if hasattr(terminalreporter.config, "workerinput") or not TAKEN.exists():
        return
    taken = dict(json.loads(line) for line in TAKEN.read_text().splitlines() if line)
    if not taken:
        return
    terminalreporter.section("measurements")
    for key, value in taken.items():
        terminalreporter.write_line(f"{key}: {value}")
    merged = OUT / "measurements.json"
    merged.write_text(json.dumps(taken, indent=2, sort_keys=True) + "\n")

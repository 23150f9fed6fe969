"""Numbers the images rung measures (sizes, build times), shown after the run."""

from __future__ import annotations

import json

import pytest

from tests.support import podman as pm

# Numbers worth seeing after the run (sizes, times); printed in pytest's terminal summary and
# written to .cache/images/measurements.json.
MEASUREMENTS: dict[str, object] = {}


def record(key: str, value: object) -> None:
    MEASUREMENTS[key] = value
    print(f"[images] {key}: {value}")


def summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The measurements in pytest's terminal summary and in .cache/images/measurements.json."""
    if not MEASUREMENTS:
        return
    terminalreporter.section("images: measurements")
    for key, value in MEASUREMENTS.items():
        terminalreporter.write_line(f"{key}: {value}")
    out = pm.ROOT / ".cache" / "images" / "measurements.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(MEASUREMENTS, indent=2, sort_keys=True) + "\n")

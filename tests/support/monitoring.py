"""promtool and the Prometheus/Alertmanager binaries the monitoring tests need (Debian's
prometheus and prometheus-alertmanager, from ci/apt-packages.txt)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from monitoring import ALERTMANAGER, PROMETHEUS


def require_prometheus() -> None:
    """Fail (not skip): `make test` installs them, so their absence is a broken setup."""
    for binary in (PROMETHEUS, "promtool", ALERTMANAGER):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is not installed: `make test` installs it (ci/apt-packages.txt)")


def promtool(*args: str) -> str:
    """promtool's output; an AssertionError with it when promtool fails."""
    require_prometheus()
    result = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{out}"
    return out

"""Shared by every rung: the markers (tests/support/markers.py). Nothing here starts a process;
each rung's conftest wires its own fixtures from tests/support."""

from __future__ import annotations

import os

import pytest

from tests.support import markers

# etcd3 needs protobuf's pure-Python backend; set before any test imports it (see ci/env.sh).
os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markers.apply(items)

"""Shared by every rung: nothing here starts a process; each rung's conftest does its own."""

from __future__ import annotations

import os

# etcd3 needs protobuf's pure-Python backend; set before any test imports it (see ci/env.sh).
os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"

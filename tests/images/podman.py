"""Kept for existing imports: the podman runner lives in tests/support/podman.py."""

from tests.support.podman import *  # noqa: F403
from tests.support.podman import podman, script, unique  # noqa: F401

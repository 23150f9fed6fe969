"""What the test rungs share: processes, waiting, helm, podman, checks on numbers and pods.

Conftests wire these into fixtures; test modules import them from here, never from a conftest.
"""

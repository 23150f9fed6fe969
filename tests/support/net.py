"""Loopback sockets as the kernel sees them (/proc/net/tcp), for tests that must prove a
request is in flight rather than hope it is."""

from __future__ import annotations

from pathlib import Path

ESTABLISHED = "01"


def unread_bytes_to(port: int) -> int:
    """Bytes received by established connections to local `port` that no process has read yet
    (a stopped server's pending request shows here)."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, queues = fields[1], fields[3], fields[4]
        if int(local.split(":")[1], 16) == port and state == ESTABLISHED:
            total += int(queues.split(":")[1], 16)
    return total

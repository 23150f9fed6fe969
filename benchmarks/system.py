"""What the kernel says about a run: CPU busy time, per-process CPU, connections per worker."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    busy: int
    total: int


def machine_cpu() -> CpuSample:
    """Jiffies of all CPUs from /proc/stat: busy is everything but idle and iowait."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])  # guest time is already counted in user
    return CpuSample(busy=total - idle, total=total)


def busy_fraction(before: CpuSample, after: CpuSample) -> float:
    total = after.total - before.total
    return (after.busy - before.busy) / total if total > 0 else 0.0


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system, all threads) the process has used so far; 0 if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_of(pids: list[int]) -> dict[int, float]:
    return {pid: process_cpu(pid) for pid in pids}


def cpu_used(before: dict[int, float], after: dict[int, float]) -> list[float]:
    return [max(0.0, after.get(pid, 0.0) - start) for pid, start in before.items()]


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except OSError:
        return inodes
    for entry in entries:
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _established_on(port: int) -> set[str]:
    """Inodes of ESTABLISHED IPv4 sockets whose local port is `port` (the server side)."""
    inodes: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
            inodes.add(fields[9])
    return inodes


def connections_per_worker(port: int, workers: list[int]) -> list[int]:
    established = _established_on(port)
    return [len(_socket_inodes(pid) & established) for pid in workers]


def share_of_busiest(values: list[float] | list[int]) -> float:
    """The busiest worker's share: 0.5 is an even split of two, 1.0 all on one."""
    total = sum(values)
    return max(values) / total if total > 0 and len(values) > 1 else 0.0

"""What a process has used: its peak memory and CPU time (its reaped children included)."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_kb() -> int:
    """Peak RSS of this process's own address space (VmHWM). Not getrusage's ru_maxrss: on
    Linux that keeps the parent's resident size at the fork that started this process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def children_peak_rss_kb() -> int:
    """The largest peak RSS among this process's reaped children (e.g. worker processes)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime

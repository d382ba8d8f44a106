"""Helpers shared by the benchmark scripts: thread settings, timing spreads and machine
facts."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from spikeforge.core import threads
from spikeforge.core.usage import peak_rss_kb  # noqa: F401  (the benchmarks import it here)


def one_blas_thread() -> None:
    """One BLAS thread per process, as the workflow's jobs run (one job per core, so threads
    would only compete). Call it before numpy is imported."""
    threads.one_blas_thread(override=True)


def spread(times: list[float]) -> str:
    return "/".join(f"{t:.2f}" for t in times) + " s"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class OtherLoad:
    """Cores kept busy by other processes while a section ran: machine-wide busy time
    (/proc/stat) minus this process's and its reaped children's CPU time, over wall time."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
            busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            busy = float("nan")
        t = os.times()
        return time.perf_counter(), busy, t.user + t.system + t.children_user + t.children_system

    def cores(self) -> float:
        wall0, busy0, own0 = self.start
        wall1, busy1, own1 = self._sample()
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def log(msg: str) -> None:
    print(msg, flush=True)


def reset_peak_rss() -> None:
    """Start peak_rss_kb() over from the current size (Linux: /proc/self/clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")

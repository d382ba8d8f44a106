"""A job dies with the Snakemake that started it, and a job's worker processes die with the job.

Killing Snakemake outright (SIGKILL, a lost login session) does not stop the jobs it started:
they run on, orphaned, and may still be writing when the next run starts. A job therefore
watches the outermost Snakemake process among its ancestors and stops (SIGTERM to itself,
which unwinds its staging files) when it is gone; every process forked from the job (e.g.
SpikeInterface's workers) exits when the job is gone."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

POLL_S = 1.0
GRACE_S = 30.0  # after asking the job to stop, how long before it is ended outright


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return text[text.rindex(")") + 2 :].split()


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot): with the pid, its identity."""
    fields = _stat_fields(pid)
    return fields[19] if fields else None


def is_snakemake(argv: list[str]) -> bool:
    """Whether a command line runs Snakemake: `snakemake ...`, `python -m snakemake ...` or
    `python .../snakemake ...` (not merely mentions it, as a shell's or editor's may)."""
    head = argv[:4]
    names = [os.path.basename(arg) for arg in head]
    if names and names[0] == "snakemake":
        return True
    if any(a == "-m" and b == "snakemake" for a, b in zip(head, head[1:], strict=False)):
        return True
    return len(names) > 1 and names[0].startswith("python") and names[1] == "snakemake"


def outermost_snakemake(pid: int | None = None) -> int | None:
    """The farthest ancestor that runs Snakemake, or None."""
    found = None
    current = parent_of(pid or os.getpid())
    while current and current > 1:
        try:
            argv = Path(f"/proc/{current}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            break
        if is_snakemake(argv.split("\0")):
            found = current
        current = parent_of(current)
    return found


def _alive(pid: int, started: str | None) -> bool:
    return start_time(pid) == started


def _watch(pid: int, started: str | None, on_death) -> None:
    while _alive(pid, started):
        time.sleep(POLL_S)
    on_death()


def _stop_self() -> None:
    """Ask the main thread to stop (SIGTERM becomes SystemExit, so `finally` blocks remove
    staging files); end the process if it has not stopped after GRACE_S."""
    print("spikeforge: snakemake is gone: stopping this job", file=sys.stderr)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os._exit(1)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _child_watches_parent() -> None:
    parent = os.getppid()
    started = start_time(parent)
    threading.Thread(
        target=_watch, args=(parent, started, lambda: os._exit(1)), daemon=True
    ).start()


_installed = False


def tie_to_snakemake() -> int | None:
    """In a job's process: stop when the outermost Snakemake ancestor is gone, and make every
    process forked from here exit when this one is gone. Returns the watched pid (None when
    not run by Snakemake, e.g. in tests: then nothing is watched)."""
    global _installed
    if _installed or not sys.platform.startswith("linux"):
        return None
    _installed = True
    os.register_at_fork(after_in_child=_child_watches_parent)
    snakemake = outermost_snakemake()
    if snakemake is None:
        return None
    with contextlib.suppress(ValueError):  # not the main thread: keep the default
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = start_time(snakemake)
    threading.Thread(target=_watch, args=(snakemake, started, _stop_self), daemon=True).start()
    return snakemake

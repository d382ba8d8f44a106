"""Glue between a rule's script and the library: logging to the rule's log, warnings on the
console too, one clear line for bad input, the traceback of anything unexpected in the log.

    run(snakemake, lambda sm: library_function(...))
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from spikeforge.core import lifeline, manifest, usage
from spikeforge.core.errors import InputError
from spikeforge.core.progress import log as _progress_log

CONSOLE_PREFIX = "spikeforge"


class _ConsoleFormatter(logging.Formatter):
    def __init__(self, job: str) -> None:
        super().__init__()
        self.job = job

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno < logging.WARNING:  # a progress line
            return f"{CONSOLE_PREFIX}: {self.job}: {record.getMessage()}"
        return f"{CONSOLE_PREFIX}: warning: {self.job}: {record.getMessage()}"


def _console_filter(record: logging.LogRecord) -> bool:
    """Warnings and errors, and the progress lines of long jobs (spikeforge.core.progress)."""
    return record.levelno >= logging.WARNING or record.name == _progress_log.name


def _job_name(snakemake: Any) -> str:
    wildcards = dict(getattr(snakemake, "wildcards", {}) or {})
    values = ", ".join(str(v) for v in wildcards.values())
    return f"{snakemake.rule} {values}".strip() if values else str(snakemake.rule)


def run(snakemake: Any, main: Callable[[Any], Any]) -> None:
    """Run `main(snakemake)` with logging sent to the rule's log file.

    Warnings also go to stderr (the console of a local run, the job's log on a cluster).
    Bad input (InputError) ends the job with one line naming the file or key and the problem,
    written to the log and to stderr, and exit status 1. Any other exception writes its
    traceback to the log and one line pointing there to stderr. Outputs are written
    atomically, so nothing partial is left behind.

    Before `main`, an input whose manifest no longer matches it is refused; after it, every
    output gets its manifest (spikeforge.core.manifest).
    """
    lifeline.tie_to_snakemake()
    log_path = snakemake.log[0] if len(snakemake.log) else None
    job = _job_name(snakemake)
    console = logging.StreamHandler(sys.stderr)
    console.addFilter(_console_filter)
    console.setFormatter(_ConsoleFormatter(job))
    handlers: list[logging.Handler] = [console]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
        handlers[-1].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)
    # A log that cannot be written (disk full) must not add tracebacks to the console.
    logging.raiseExceptions = False
    logging.captureWarnings(True)
    log_hint = f" (traceback in {log_path})" if log_path else ""
    outputs = [str(p) for p in getattr(snakemake, "output", [])]
    started = (time.perf_counter(), usage.cpu_seconds())
    try:
        manifest.remove_manifests(outputs)
        inputs = _named_paths(getattr(snakemake, "input", []))
        manifest.check_inputs(inputs.values())
        main(snakemake)
        manifest.write_manifests(
            outputs,
            rule=str(snakemake.rule),
            wildcards=dict(getattr(snakemake, "wildcards", {}) or {}),
            version=_version(),
            params=_named_values(getattr(snakemake, "params", [])),
            inputs=inputs,
        )
        output_bytes = manifest.unique_bytes(outputs)
        logging.info("job stats: %s", json.dumps(job_stats(started, output_bytes)))
    except InputError as error:
        _log_only(logging.ERROR, "bad input: %s", error)
        print(f"{CONSOLE_PREFIX}: error: {error}", file=sys.stderr)
        sys.exit(1)
    except OSError as error:
        if error.errno is None:  # a library's own "OSError" (h5py: not an HDF5 file, ...)
            _unexpected(job, error, log_hint)
        # Disk full, permissions, a vanished file system: the file and the cause, one line.
        _log_only(logging.ERROR, "%s:\n%s", error, traceback.format_exc())
        file = f"{error.filename}: " if error.filename else ""
        cause = error.strerror or str(error)
        print(f"{CONSOLE_PREFIX}: error: {job}: {file}{cause}{log_hint}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:
        _unexpected(job, error, log_hint)


def job_stats(started: tuple[float, float], output_bytes: int) -> dict[str, float]:
    """What the job's work used (imports before it left out), for sizing cluster requests and
    the scale benchmarks: wall and CPU seconds (its worker processes included), peak memory
    (the job's or its largest worker's) and the bytes of its outputs."""
    return {
        "wall_s": round(time.perf_counter() - started[0], 3),
        "cpu_s": round(usage.cpu_seconds() - started[1], 3),
        "peak_rss_mb": round(max(usage.peak_rss_kb(), usage.children_peak_rss_kb()) / 1024, 1),
        "output_bytes": output_bytes,
    }


def _named_values(namedlist: Any) -> dict[str, Any]:
    """A Snakemake Namedlist as {name: value or list of values}, unnamed entries by position."""
    owner = {}
    for name, (start, end) in getattr(namedlist, "_names", {}).items():
        for k in range(start, start + 1 if end is None else end):
            owner[k] = (name, end is not None)
    values: dict[str, Any] = {}
    for k, value in enumerate(namedlist):
        name, is_list = owner.get(k, (str(k), False))
        if is_list:
            values.setdefault(name, []).append(value)
        else:
            values[name] = value
    return values


def _named_paths(namedlist: Any) -> dict[str, str]:
    """Input files by name (`clips[3]` for the 4th of a list), in order."""
    paths = {}
    for name, value in _named_values(namedlist).items():
        if isinstance(value, list):
            paths.update({f"{name}[{k}]": str(v) for k, v in enumerate(value)})
        else:
            paths[name] = str(value)
    return paths


def _version() -> str:
    from spikeforge import __version__

    return __version__


def _unexpected(job: str, error: Exception, log_hint: str) -> None:
    """The traceback to the log, one line to the console, exit status 1."""
    _log_only(logging.ERROR, "unexpected error:\n%s", traceback.format_exc())
    print(
        f"{CONSOLE_PREFIX}: error: {job}: unexpected {type(error).__name__}: {error}{log_hint}",
        file=sys.stderr,
    )
    sys.exit(1)


def _log_only(level: int, message: str, *args: Any) -> None:
    """A record for the log file, not the console (which gets its own one line)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(logging.LogRecord("spikeforge", level, "", 0, message, args, None))
    if not any(isinstance(h, logging.FileHandler) for h in root.handlers):
        sys.stderr.write((message % args) + "\n")

"""A job stops when the Snakemake that started it is killed (its `finally` blocks run, so
staging files go), and a process forked from the job exits when the job is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from spikeforge.core import lifeline

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")

# Stands in for a job script: ties itself to its Snakemake ancestor, forks a worker, and
# records what happened in files.
JOB = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from spikeforge.core import lifeline
    out = Path(sys.argv[1])
    (out / "watched").write_text(str(lifeline.tie_to_snakemake()))
    worker = os.fork()
    if worker == 0:
        (out / "worker").write_text(str(os.getpid()))
        time.sleep(120)
        os._exit(0)
    try:
        time.sleep(120)
    finally:
        (out / "cleaned_up").write_text("yes")
""")

# Stands in for Snakemake: a process whose command line says so, starting the job.
SNAKEMAKE = textwrap.dedent("""
    import subprocess, sys, time
    python, job, folder = sys.argv[1:]
    subprocess.Popen([python, "-c", job, folder])
    time.sleep(120)
""")


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"


def test_job_stops_and_cleans_up_when_snakemake_is_killed_and_its_worker_follows(tmp_path):
    snakemake = subprocess.Popen(
        ["snakemake", "-c", SNAKEMAKE, sys.executable, JOB, str(tmp_path)],  # python, so named
        executable=sys.executable,
        env=dict(os.environ, PYTHONPATH=str(Path(lifeline.__file__).parents[2])),
    )
    assert _wait(lambda: (tmp_path / "worker").exists(), 30)
    assert (tmp_path / "watched").read_text() == str(snakemake.pid)
    worker = int((tmp_path / "worker").read_text())
    assert _alive(worker)

    os.kill(snakemake.pid, signal.SIGKILL)
    snakemake.wait()
    assert _wait(lambda: (tmp_path / "cleaned_up").exists(), 5 * lifeline.POLL_S)
    assert _wait(lambda: not _alive(worker), 5 * lifeline.POLL_S)


def test_snakemake_is_recognised_by_how_it_is_run_not_by_a_mention():
    assert lifeline.is_snakemake(["/usr/bin/snakemake", "--cores", "2"])
    assert lifeline.is_snakemake(["/v/bin/python3.11", "-m", "snakemake", "--mode", "remote"])
    assert lifeline.is_snakemake(["python", "/v/bin/snakemake", "-n"])
    assert not lifeline.is_snakemake(["bash", "-c", "cd runs && snakemake --cores 2"])
    assert not lifeline.is_snakemake(["vim", "snakemake-notes.txt"])
    assert not lifeline.is_snakemake(["python", "-m", "pytest", "tests/test_snakemake.py"])


def test_parent_and_identity_come_from_proc_even_with_parentheses_in_the_name(tmp_path):
    """The command name in /proc/<pid>/stat may hold ') ' (here a copy of python so named)."""
    odd = tmp_path / "odd) (name"
    odd.symlink_to(sys.executable)
    child = subprocess.Popen([str(odd), "-c", "import time; time.sleep(30)"])
    try:
        assert _wait(lambda: "odd" in Path(f"/proc/{child.pid}/stat").read_text(), 5)
        assert lifeline.parent_of(child.pid) == os.getpid()
        assert lifeline.start_time(child.pid) is not None
    finally:
        child.kill()
        child.wait()
    assert lifeline.start_time(child.pid) is None

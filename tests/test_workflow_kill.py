"""Kill drills: SIGKILL of a job while it writes, and of Snakemake itself while jobs run.
Afterwards no process of the run is left, and the README's command (after `--unlock` where
Snakemake itself was killed) finishes the run with every output byte-identical to an
uninterrupted run's and no staging file left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_workflow_paired import PAIRED_TINY
from workflow_run import SNAKEFILE, TINY, run_tree, snakemake, succeeded

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

CONFIG = {**TINY, "paired": dict(PAIRED_TINY["paired"], cells=["cell_a"])}


def _processes_of(workdir: Path) -> list[int]:
    """Processes whose command line names the run folder (Snakemake and its job scripts)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(workdir).encode() in cmdline:
            found.append(int(entry.name))
    return found


def _job_pids(workdir: Path, rule: str) -> list[int]:
    return [pid for pid in _processes_of(workdir)
            if f".{rule}.py".encode() in Path(f"/proc/{pid}/cmdline").read_bytes()]  # fmt: skip


def _start(workdir: Path) -> subprocess.Popen:
    config = workdir.parent / f"{workdir.name}.config.yaml"
    config.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    workdir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
               "--configfile", str(config), "--cores", "2"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


def _wait_for(condition, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _staging(workdir: Path) -> list[Path]:
    return [p for p in workdir.rglob(".*") if ".snakemake" not in p.parts
            and p.name != ".snakemake_timestamp"]  # fmt: skip


def _writing_convert_cell(workdir: Path):
    """The convert_cell job's pid once its staging folder exists (it is writing)."""
    folder = workdir / "results" / "paired" / "cell_a"
    if folder.is_dir() and any(p.name.startswith(".") for p in folder.iterdir()):
        pids = _job_pids(workdir, "convert_cell")
        return pids[0] if pids else None
    return None


def _outputs(workdir: Path) -> dict[str, str]:
    """Every file the run made, but run.json: it records the run's own config file path."""
    tree = run_tree(workdir)
    del tree["results/run.json"]
    return tree


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    workdir = tmp_path_factory.mktemp("uninterrupted") / "run"
    run = snakemake(workdir, CONFIG)
    assert run.returncode == 0, succeeded(run)
    return _outputs(workdir)


def test_a_job_killed_while_writing_leaves_nothing_the_next_run_trips_on(tmp_path, reference):
    workdir = tmp_path / "run"
    run = _start(workdir)
    job = _wait_for(lambda: _writing_convert_cell(workdir))
    os.kill(job, signal.SIGKILL)
    assert run.wait(timeout=600) != 0
    _wait_for(lambda: not _processes_of(workdir), timeout=30)

    again = snakemake(workdir, CONFIG)
    assert again.returncode == 0, succeeded(again)
    assert _outputs(workdir) == reference
    assert _staging(workdir) == []
    assert _processes_of(workdir) == []


def test_snakemake_killed_mid_run_leaves_no_process_and_resumes_after_unlock(tmp_path, reference):
    workdir = tmp_path / "run"
    run = _start(workdir)
    _wait_for(lambda: _writing_convert_cell(workdir))
    os.kill(run.pid, signal.SIGKILL)  # Snakemake only: its jobs are orphaned
    run.wait(timeout=30)
    # The jobs notice within a second or two and stop (tests/test_lifeline.py), removing
    # their staging files.
    _wait_for(lambda: not _processes_of(workdir), timeout=10)
    assert _staging(workdir) == []

    locked = snakemake(workdir, CONFIG)
    assert locked.returncode != 0 and "--unlock" in locked.output
    assert snakemake(workdir, CONFIG, "--unlock").returncode == 0
    again = snakemake(workdir, CONFIG)
    assert again.returncode == 0, succeeded(again)
    assert _outputs(workdir) == reference
    assert _staging(workdir) == []
    assert _processes_of(workdir) == []

"""Damage drills on a real run: a truncated HDF5 shard, Arrow file, MAT sample and clip and a
file deleted inside a folder output. A job refuses the damaged input by name;
spikeforge-verify names all five, and the next run rebuilds them byte-identically."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_workflow_paired import PAIRED_TINY
from workflow_run import TINY, one_line_with, run_tree, snakemake, succeeded

pytestmark = pytest.mark.workflow

CONFIG = {**TINY, "paired": dict(PAIRED_TINY["paired"], cells=["cell_a"])}


def _truncate(path: Path) -> str:
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    return str(path)


def _verify(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spikeforge.verify", str(workdir), *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_damage_is_refused_named_by_verify_and_rebuilt_byte_identically(tmp_path):
    workdir = tmp_path / "run"
    run = snakemake(workdir, CONFIG)
    assert run.returncode == 0, succeeded(run)
    before = run_tree(workdir)
    clean = _verify(workdir)
    assert clean.returncode == 0, clean.stderr

    results, resources = workdir / "results", workdir / "resources"
    shard = results / "test" / "hdf5" / "shard_0000.h5"
    arrow = sorted((results / "paired" / "cell_a" / "train").glob("*.arrow"))[0]
    sample = sorted((results / "test" / "mat" / "shard_0000").glob("sample_*.mat"))[0]
    clip = sorted((resources / "demo" / "nmm_spikes").rglob("*.mat"))[0]
    deleted = sorted((results / "test" / "mat" / "shard_0001").glob("sample_*.mat"))[-1]
    damaged = [_truncate(p) for p in (shard, arrow, sample, clip)]
    deleted.unlink()

    report = _verify(workdir, "--report-only")
    assert report.returncode == 1
    kinds = ("spikeforge-verify: damaged:", "spikeforge-verify: missing:")
    problems = [line for line in report.stderr.splitlines() if line.startswith(kinds)]
    named = sorted(line.split(": ")[2] for line in problems)
    assert named == sorted(damaged + [str(deleted)]), report.stderr

    # A job that reads the damaged shard refuses it by name, before writing anything.
    forced = snakemake(workdir, CONFIG, "--forcerun", "export_mat_shard")
    assert forced.returncode != 0, forced.stderr[-6000:]
    line = one_line_with(forced.stderr, "spikeforge: error:", "shard_0000.h5", "its manifest says")
    assert "damaged since it was made" in line

    assert _verify(workdir).returncode == 1  # removes the damaged outputs
    rebuilt = snakemake(workdir, CONFIG)
    assert rebuilt.returncode == 0, succeeded(rebuilt)
    after = run_tree(workdir)
    assert after == before
    assert _verify(workdir).returncode == 0
    leftovers = [p for p in workdir.rglob(".*") if ".snakemake" not in p.parts
                 and p.name != ".snakemake_timestamp"]  # fmt: skip
    assert leftovers == []
    shutil.rmtree(workdir)

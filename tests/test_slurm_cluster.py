"""The Slurm profile on a real one-node cluster (.ci/slurm/start brings it up, .ci/slurm/run-tests
runs this file): a run through `--profile profiles/slurm` writes byte for byte what a local run
writes, and a job Slurm kills for memory succeeds on its retry with twice the memory.

Both runs of a test read the same config file, so results/run.json (which records the config
file's resolved path) is the same too: every file under results/ is compared.

Left out by default (marker `slurm`); without a cluster the tests skip, or fail when
SPIKEFORGE_REQUIRE_SLURM=1 (as run-tests sets it)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workflow_run import REPO, SNAKEFILE, Run, sha256_tree, succeeded

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

PROFILE = REPO / "profiles" / "slurm"
TIMEOUT_S = 600  # per snakemake run; the run's whole process group is killed after it

# Sessions chain, one short session, its units in two spike-train formats: two Slurm jobs
# (mock_session, movie_annotation), then one group submission of the two exports, then the
# QC figure of the exported units (group qc).
TINY = {
    "seed": 7,
    "sessions": {
        "enabled": True,
        "patients": [{"patient": 1, "sessions": [1]}],
        "duration_s": 60.0,
        "regions": ["LA", "RA"],
        "movie": {"duration_s": 40.0, "onset_s": 5.0, "pauses": 1, "max_pause_s": 4.0,
                  "skips": 1, "max_skip_s": 4.0},
    },
    "spiketrains": {
        "enabled": True,
        "sources": {"paired": False, "sessions": True},
        "formats": ["hdf5_ragged", "nwb"],
    },
}  # fmt: skip

# One mock paired cell: convert_cell holds 1.0-1.3 GiB in its step for about 4 s (its 3 s
# segments of 384 channels), next to ~0.25 GiB of the batch step's `snakemake` process.
PAIRED = {
    "seed": 7,
    "paired": {
        "enabled": True,
        "source": "mock",
        "cells": ["mock_c1"],
        "mock": {"duration_s": 8.0},
        "window": {"skip_s": 1.0, "duration_s": 6.0},
        "segment_s": 3.0,
    },
    "qc": {"enabled": False},  # this test is about convert_cell's retry alone
}
# Slurm's --mem is in MiB. Measured on the cluster (sstat, JobAcctGatherFrequency=1): the srun
# step of convert_cell (inner snakemake + script) peaks at ~1280 MiB and stays above ~1030 MiB
# for ~4 s; the batch step (the jobstep snakemake) holds ~250 MiB. 900 MiB is exceeded for
# several samples; 1800 MiB holds the step's peak and the sum of both steps (~1540 MiB).
CONVERT_MB = 900


# --------------------------------------------------------------------------- the cluster


def _unavailable(reason: str) -> None:
    if os.environ.get("SPIKEFORGE_REQUIRE_SLURM") == "1":
        pytest.fail(f"Slurm cluster required (SPIKEFORGE_REQUIRE_SLURM=1): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster() -> str:
    """The node's name, once sinfo reports it usable."""
    if shutil.which("sinfo") is None:
        _unavailable("no Slurm client (sinfo not found): run .ci/slurm/run-tests")
    try:
        done = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        _unavailable("the Slurm cluster does not answer (sinfo timed out after 30 s)")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        _unavailable(f"the Slurm cluster does not answer: {last}")
    usable = [line.split()[0] for line in done.stdout.splitlines()
              if line.split()[1].rstrip("*~#") in ("idle", "mixed", "allocated")]  # fmt: skip
    if not usable:
        _unavailable(f"no usable Slurm node: {done.stdout.strip()!r}")
    return usable[0]


def slurm_job(job_id: str) -> dict[str, str]:
    """`scontrol show job` as a dict (finished jobs stay known for MinJobAge)."""
    done = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return dict(re.findall(r"(\w+)=(\S*)", done.stdout))


def cancel_jobs_under(folder: Path) -> None:
    """scancel the jobs whose working directory is under `folder` (a run that was killed)."""
    listed = subprocess.run(
        ["squeue", "-h", "-o", "%i %Z"], capture_output=True, text=True, timeout=30
    )
    ours = [line.split()[0] for line in listed.stdout.splitlines()
            if len(line.split()) == 2 and Path(line.split()[1]).is_relative_to(folder)]  # fmt: skip
    if ours:
        subprocess.run(["scancel", *ours], timeout=30)


# --------------------------------------------------------------------------- running


def write_config(folder: Path, config: dict) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_snakemake(workdir: Path, config_file: Path, *args: str) -> tuple[Run, float]:
    """snakemake on the Snakefile in `workdir`, in a session of its own: after TIMEOUT_S its
    whole process group is killed (SIGINT, then SIGKILL) and its Slurm jobs cancelled.
    Returns the run and its wall time in seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
        "--configfile", str(config_file), *args,
    ]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=workdir.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, id = its pid
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # SIGINT: snakemake cancels its Slurm jobs and exits (on SIGTERM it would wait for them)
        os.killpg(process.pid, signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        cancel_jobs_under(workdir)
        pytest.fail(
            f"snakemake {' '.join(args)} did not finish in {TIMEOUT_S} s: killed its process "
            f"group {process.pid} and cancelled its Slurm jobs\n{(stdout + stderr)[-5000:]}"
        )
    finally:
        if process.poll() is None:  # interrupted while waiting: leave nothing behind
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return Run(process.returncode, stdout, stderr), time.monotonic() - started


def submissions(output: str) -> dict[str, list[str]]:
    """Slurm job ids by the log folder snakemake named at submission (rule_<rule>, group_...)."""
    found: dict[str, list[str]] = {}
    for job_id, kind in re.findall(
        r"has been submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/([^/\s]+)/", output
    ):
        found.setdefault(kind, []).append(job_id)
    return found


def report(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n[slurm] {text}", flush=True)


# --------------------------------------------------------------------------- the tests


def test_slurm_run_writes_what_a_local_run_writes(cluster, tmp_path, capsys):
    config_file = write_config(tmp_path, TINY)
    local, local_s = run_snakemake(tmp_path / "local", config_file, "--cores", "2")
    assert local.returncode == 0, succeeded(local)

    slurm, slurm_s = run_snakemake(tmp_path / "slurm", config_file, "--profile", str(PROFILE))
    report(capsys, f"sessions + spike trains through profiles/slurm: {slurm_s:.1f} s wall "
                   f"(the same config locally with --cores 2: {local_s:.1f} s)")  # fmt: skip
    assert slurm.returncode == 0, succeeded(slurm)

    # Every job but `all` went through sbatch, and Slurm ran each submission to completion.
    jobs = submissions(slurm.output)
    assert sorted(jobs) == [
        "group_qc_qc_spiketrains_item",
        "group_spiketrains_export_hdf5_ragged_export_nwb",
        "rule_mock_session",
        "rule_movie_annotation",
    ], slurm.output[-5000:]
    for kind, ids in jobs.items():
        last = slurm_job(ids[-1])
        assert last["JobState"] == "COMPLETED", (kind, last)
        assert last["BatchHost"] == cluster
        if len(ids) > 1:  # a retry (the profile allows one): say so, the outputs still count
            states = [slurm_job(job_id)["JobState"] for job_id in ids]
            report(capsys, f"{kind} was retried: Slurm jobs {ids} ended {states}")

    local_files = sha256_tree(tmp_path / "local" / "results")
    assert "run.json" in local_files and len(local_files) > 10
    assert sha256_tree(tmp_path / "slurm" / "results") == local_files


def test_job_killed_for_memory_succeeds_on_retry_with_more(cluster, tmp_path, capsys):
    config_file = write_config(tmp_path, PAIRED)
    local, _ = run_snakemake(tmp_path / "local", config_file, "--cores", "2")
    assert local.returncode == 0, succeeded(local)

    # Only convert_cell goes to the cluster: the Slurm run starts from a copy of the local run's
    # mock recordings (their 3 jobs in 2 DAG levels would add ~40 s of Slurm polling).
    workdir = tmp_path / "slurm"
    shutil.copytree(tmp_path / "local" / "resources", workdir / "resources")
    slurm, slurm_s = run_snakemake(
        workdir, config_file, "--profile", str(PROFILE),
        "--set-resources", f"convert_cell:mem_mb={CONVERT_MB}*attempt",
        "--slurm-keep-successful-logs",
    )  # fmt: skip
    report(capsys, f"convert_cell killed at {CONVERT_MB} MiB, retried at {2 * CONVERT_MB} MiB: "
                   f"{slurm_s:.1f} s wall through profiles/slurm")  # fmt: skip
    assert slurm.returncode == 0, succeeded(slurm)

    # Snakemake: two submissions of convert_cell, the first failed, the job restarted with
    # twice the memory.
    jobs = submissions(slurm.output)
    assert list(jobs) == ["rule_convert_cell"], slurm.output[-5000:]
    first, second = jobs["rule_convert_cell"]
    blocks = re.findall(r"^rule convert_cell:\n((?:    .*\n)+)", slurm.output, re.M)
    requested = [re.search(r"mem_mb=(\d+)", block).group(1) for block in blocks]
    assert requested == [str(CONVERT_MB), str(2 * CONVERT_MB)], slurm.output[-5000:]
    assert f"SLURM-job '{first}' failed" in slurm.output
    assert "Trying to restart job" in slurm.output

    # Slurm: attempt 1 was killed by the memory enforcement at its 900 MiB limit ...
    log = workdir / ".snakemake" / "slurm_logs" / "rule_convert_cell" / "mock_c1"
    first_log = (log / f"{first}.log").read_text()
    killed = re.findall(r"exceeded memory limit \((\d+) > (\d+)\), being killed", first_log)
    assert killed, first_log[-3000:]
    used, limit = map(int, killed[0])
    assert limit == CONVERT_MB * 2**20 and used > limit
    attempt_1 = slurm_job(first)
    assert attempt_1["JobState"] in ("FAILED", "OUT_OF_MEMORY"), attempt_1
    assert f"mem={CONVERT_MB}M" in attempt_1["TRES"]
    # ... and attempt 2, with twice the memory, completed without a memory error.
    attempt_2 = slurm_job(second)
    assert attempt_2["JobState"] == "COMPLETED", attempt_2
    assert f"mem={2 * CONVERT_MB}M" in attempt_2["TRES"]
    assert "memory limit" not in (log / f"{second}.log").read_text()
    report(capsys, f"attempt 1 (Slurm job {first}): {attempt_1['JobState']}, "
                   f"{used / 2**20:.0f} MiB > {limit / 2**20:.0f} MiB; attempt 2 "
                   f"(job {second}): {attempt_2['JobState']}")  # fmt: skip

    local_files = sha256_tree(tmp_path / "local" / "results")
    assert any(name.startswith("paired/mock_c1/train/") for name in local_files)
    assert sha256_tree(workdir / "results") == local_files

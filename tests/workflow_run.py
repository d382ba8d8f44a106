"""Running the workflow from tests: the Snakefile on a config in a temporary folder, and the
checks of what a run printed and left behind."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
REAL_ANATOMY = REPO.parent / "shared" / "data" / "deepsif" / "anatomy"

# Two splits; start/count give train one shard (samples 0..19) and test two (samples 5..34).
TINY = {
    "seed": 11,
    "eeg": {
        "enabled": True,
        "anatomy": {"source": "demo", "demo": {"n_regions": 40, "n_channels": 32}},
        "spike_library": {"source": "mock", "mock_clips_per_region": 1},
        "plan": {"n_sources": 2},
        "splits": {
            "train": {"samples_per_region": 1, "count": 20},
            "test": {"samples_per_region": 1, "target_snrs_db": [10, 15], "start": 5, "count": 30},
        },
        "synthesis": {"samples_per_shard": 20},
        "export": {"mat": {"enabled": True, "splits": ["test"]}, "deepsif": {"enabled": True}},
    },
}

# Numeric-library frames in the output would mean an exception escaped unexplained.
LIBRARY_FRAMES = ("site-packages/numpy", "site-packages/scipy", "site-packages/h5py")


# --------------------------------------------------------------------------- helpers


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def snakemake(workdir: Path, config: dict, *args: str, config_name: str | None = None) -> Run:
    """Run the workflow in `workdir` with only `config` (plus schema defaults), one core; the
    config file is <workdir>.config.yaml beside it unless `config_name` names another."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir.parent / (config_name or f"{workdir.name}.config.yaml")
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
        "--configfile", str(config_path), "--cores", "1", *args,
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=workdir.parent, env=env, capture_output=True, text=True, timeout=600
    )
    return Run(done.returncode, done.stdout, done.stderr)


def succeeded(run: Run) -> str:
    return f"snakemake failed (exit {run.returncode}):\n{run.output[-5000:]}"


def sha256_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` (recursively), by path relative to `root`."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def run_tree(workdir: Path) -> dict[str, str]:
    """sha256 of every file a run made (results/ and resources/), by path in the run folder."""
    return {
        f"{top}/{name}": digest
        for top in ("results", "resources")
        for name, digest in sha256_tree(workdir / top).items()
    }


def output_names(folder: Path) -> list[str]:
    """The names in `folder`, sorted, without the manifests written beside each output."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".manifest.json"))


def job_counts(output: str) -> dict[str, int]:
    """The first 'Job stats' table of a snakemake run: rule -> number of jobs."""
    table = re.search(r"Job stats:\njob\s+count\n[- ]+\n(.*?)\ntotal\s+\d+", output, re.S)
    assert table, f"no job table in snakemake output:\n{output[-3000:]}"
    return {name: int(n) for name, n in (line.split() for line in table.group(1).splitlines())}


def planned_outputs(output: str) -> dict[str, list[str]]:
    """rule -> the `output:` line of each job block snakemake printed."""
    jobs: dict[str, list[str]] = {}
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n?)+)", output, re.M):
        found = re.search(r"^    output: (.*)$", body, re.M)
        jobs.setdefault(rule, []).append(found.group(1) if found else "")
    return jobs


def one_line_with(output: str, *fragments: str) -> str:
    """The output line holding every fragment (the error names file/key and problem at once)."""
    lines = [line for line in output.splitlines() if all(f in line for f in fragments)]
    assert lines, f"no line contains all of {fragments} in:\n{output[-5000:]}"
    return lines[0]


def assert_no_library_traceback(run: Run, allow_snakemake_traceback: bool = False) -> None:
    output = run.output
    for frame in LIBRARY_FRAMES:
        assert frame not in output, output[-5000:]
    if allow_snakemake_traceback:
        # Snakemake's own InputFunctionException report lists workflow frames only.
        frames = [line for line in output.splitlines() if line.lstrip().startswith('File "')]
        assert all(str(REPO) in line for line in frames), output[-5000:]
    else:
        assert "Traceback" not in output, output[-5000:]


def assert_startup_failure(run: Run, workdir: Path, *fragments: str, traceback_ok=False) -> str:
    """Stopped before any job: non-zero exit, one line with `fragments`, nothing written."""
    assert run.returncode != 0, run.output[-3000:]
    line = one_line_with(run.output, *fragments)
    assert_no_library_traceback(run, allow_snakemake_traceback=traceback_ok)
    assert "Error in rule" not in run.output  # no job ran
    assert not (workdir / "results").exists()
    assert not (workdir / "logs").exists()
    return line


def assert_job_failure(run: Run, workdir: Path, output: str, log: str, *fragments: str) -> str:
    """A job stopped on bad input: one spikeforge line, logged, no output and no temp files."""
    assert run.returncode != 0, run.output[-3000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("spikeforge: error:")]
    assert len(errors) == 1, run.output[-5000:]
    assert all(f in errors[0] for f in fragments), (fragments, errors[0])
    assert_no_library_traceback(run)
    log_text = (workdir / log).read_text()
    assert "Traceback" not in log_text
    one_line_with(log_text, "ERROR bad input:", *fragments)
    target = workdir / output
    assert not target.exists()
    if target.parent.exists():
        assert [p.name for p in target.parent.iterdir() if p.name.startswith(".")] == []
    return errors[0]


def eeg_config(**blocks) -> dict:
    """A config that runs the EEG chain with these blocks (schema defaults for the rest)."""
    return {"eeg": {"enabled": True, **blocks}}


def real_anatomy_files() -> dict[str, str]:
    if not (REAL_ANATOMY / "leadfield_75_20k.mat").is_file():
        pytest.skip(f"real DeepSIF anatomy not found at {REAL_ANATOMY} (../shared/data absent)")
    return {
        "leadfield": str(REAL_ANATOMY / "leadfield_75_20k.mat"),
        "region_mapping": str(REAL_ANATOMY / "fs_cortex_20k_region_mapping.mat"),
        "centres": str(REAL_ANATOMY / "fs_cortex_20k_inflated.mat"),
    }

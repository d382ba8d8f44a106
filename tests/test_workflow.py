"""Workflow-level tests: the Snakefile run on tiny configs in temporary folders.

Each snakemake run takes a few seconds: a 40-region demo head model with 32 channels, one
mock clip per region and shards of 20 samples. They check that outputs are byte-identical
when rebuilt, that deleting one shard rebuilds only that shard, and that bad input stops the
run with one clear line naming the file or config key and leaves nothing partial behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
REAL_ANATOMY = REPO.parent / "shared" / "data" / "deepsif" / "anatomy"

pytestmark = pytest.mark.slow

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
REBUILT_SHARD = "test/hdf5/shard_0001.h5"
REBUILT_MAT = "test/mat/shard_0001"

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


# --------------------------------------------------------------------------- tiny demo build


@dataclass
class Build:
    workdir: Path
    hashes: dict[str, str]  # every file under results/ right after the first build


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory) -> Build:
    workdir = tmp_path_factory.mktemp("tiny") / "run"
    run = snakemake(workdir, TINY)
    assert run.returncode == 0, succeeded(run)
    return Build(workdir, sha256_tree(workdir / "results"))


def test_tiny_build_outputs(tiny_build):
    results = tiny_build.workdir / "results"
    expected_ranges = {"train": [(0, 20)], "test": [(5, 25), (25, 35)]}
    for split, ranges in expected_ranges.items():
        shards = sorted(p.name for p in (results / split / "hdf5").glob("shard_*"))
        assert shards == [f"shard_{k:04d}.h5" for k in range(len(ranges))]
        index = json.loads((results / split / "hdf5" / "index.json").read_text())
        assert [(e["file"], e["first_index"], e["n_samples"]) for e in index["shards"]] == [
            (f"shard_{k:04d}.h5", a, b - a) for k, (a, b) in enumerate(ranges)
        ]
        for k, (first, stop) in enumerate(ranges):
            with h5py.File(results / split / "hdf5" / f"shard_{k:04d}.h5", "r") as shard:
                np.testing.assert_array_equal(shard["index"][()], np.arange(first, stop))
                assert shard["eeg"].shape == (stop - first, 500, 32)
                assert shard["labels"].shape == (stop - first, 2, 70)
                assert shard.attrs["n_regions"] == 40 and shard.attrs["first_index"] == first
                assert np.all(np.isfinite(shard["eeg"][()]))
                ptr = shard["source_ptr"][()]
                assert ptr[0] == 0 and ptr[-1] == shard["source_regions"].shape[0]
    # MAT only for the test split, one file per sample, named by the sample's split index.
    assert not (results / "train" / "mat").exists()
    for k, (first, stop) in enumerate(expected_ranges["test"]):
        names = sorted(p.name for p in (results / "test" / "mat" / f"shard_{k:04d}").glob("*.mat"))
        assert names == [f"sample_{i:05d}.mat" for i in range(first, stop)]
    sample = scipy.io.loadmat(results / "test" / "mat" / "shard_0001" / "sample_00030.mat")
    with h5py.File(results / "test" / "hdf5" / "shard_0001.h5", "r") as shard:
        np.testing.assert_array_equal(sample["eeg_data"], shard["eeg"][5])
    meta = scipy.io.loadmat(results / "test" / "mat" / "extraction_metadata.mat")
    assert meta["total_samples"].item() == 30 and meta["start_idx"].item() == 5
    for split, n in (("train", 20), ("test", 30)):
        source = scipy.io.loadmat(results / "deepsif" / f"{split}_sample_source1.mat")
        assert source["selected_region"].shape == (n, 2, 70)
    # Shards differ from each other (seeded per split and sample, not a copied constant).
    shard_hashes = [v for k, v in tiny_build.hashes.items() if k.endswith(".h5") and "/hdf5/" in k]
    assert len(shard_hashes) == len(set(shard_hashes)) == 3
    # Atomic writes leave no temporary files; only Snakemake's directory markers start with '.'.
    hidden = [p for p in results.rglob(".*") if p.name != ".snakemake_timestamp"]
    assert hidden == []


def test_deleted_shard_rebuilds_alone_and_byte_identical(tiny_build):
    """Deleting one shard (HDF5 + MAT folder) plans only its jobs; the rebuild is bit-exact.

    HDF5 files compare byte for byte: h5py creates datasets without timestamps (track_times
    defaults to False) and the MAT writer replaces scipy's dated header with a fixed one.
    """
    workdir, results = tiny_build.workdir, tiny_build.workdir / "results"
    assert sha256_tree(results) == tiny_build.hashes
    before_mtimes = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}

    (results / REBUILT_SHARD).unlink()
    shutil.rmtree(results / REBUILT_MAT)

    dry = snakemake(workdir, TINY, "-n")
    assert dry.returncode == 0, succeeded(dry)
    assert job_counts(dry.output) == {
        "synthesize_shard": 1,
        "split_index": 1,
        "export_mat_shard": 1,
        "export_mat_metadata": 1,
        "all": 1,
    }
    jobs = planned_outputs(dry.output)
    assert jobs["synthesize_shard"] == [f"results/{REBUILT_SHARD}"]
    assert jobs["export_mat_shard"] == [f"results/{REBUILT_MAT}"]
    assert jobs["export_mat_metadata"] == ["results/test/mat/extraction_metadata.mat"]
    assert not (results / REBUILT_SHARD).exists()  # a dry run writes nothing

    run = snakemake(workdir, TINY)
    assert run.returncode == 0, succeeded(run)
    after = sha256_tree(results)
    every = sorted(after.keys() | tiny_build.hashes.keys())
    changed = [k for k in every if after.get(k) != tiny_build.hashes.get(k)]
    assert changed == [], f"rebuilt files differ from the originals: {changed}"
    # Everything else was left alone (not rewritten with equal content).
    rebuilt = (
        results / REBUILT_SHARD,
        results / REBUILT_MAT,
        results / "test" / "mat",
        results / "test" / "hdf5" / "index.json",
        results / "run.json",
    )
    for path, mtime in before_mtimes.items():
        if not any(path == r or r in path.parents for r in rebuilt):
            assert path.stat().st_mtime_ns == mtime, path


def test_same_shard_in_fresh_folder_is_byte_identical(tiny_build, tmp_path):
    """The second shard alone, built in a new folder, equals the first folder's (whole) build."""
    workdir = tmp_path / "run"
    run = snakemake(workdir, TINY, f"results/{REBUILT_SHARD}")
    assert run.returncode == 0, succeeded(run)
    fresh = sha256_tree(workdir / "results")
    assert sorted(fresh) == [
        "anatomy/anatomy.h5",
        "plan/test.h5",
        "run.json",
        "spike_library/library.h5",
        REBUILT_SHARD,
    ]
    differing = sorted(
        k for k, digest in fresh.items() if tiny_build.hashes.get(k) != digest and k != "run.json"
    )
    assert differing == [], f"differ from the first folder's build: {differing}"


def reference_sample(shard: h5py.File, row: int) -> dict[str, np.ndarray]:
    """A sample read straight from the shard's datasets (the layout written down in the
    README), the sparse source made dense by hand."""
    a, b = shard["source_ptr"][row], shard["source_ptr"][row + 1]
    source = np.zeros((500, int(shard.attrs["n_regions"])), np.float32)
    regions, courses = shard["source_regions"][a:b], shard["source_timecourses"][a:b]
    for region, course in zip(regions, courses, strict=True):
        source[:, region] = course
    return {
        "eeg_data": shard["eeg"][row],
        "source_data": source,
        "labels": shard["labels"][row],
        "snr": np.array([[shard["snr"][row]]]),
        "index": np.array([[shard["index"][row]]]),
    }


def test_eeg_dataset_agrees_with_mat_files_and_shards(tiny_build):
    """The README's loader over the test split (samples 5..34 in two shards): position p is
    sample 5 + p; each sample equals its MAT file (scipy.io.loadmat, the MATLAB client's
    view) and the shard's datasets read by hand."""
    from spikeforge.eeg.export.hdf5 import EEGDataset

    results = tiny_build.workdir / "results"
    with EEGDataset.from_folder(results / "test" / "hdf5") as dataset:
        assert len(dataset) == 30
        samples = list(dataset)
        with pytest.raises(IndexError):
            dataset[30]
        with pytest.raises(IndexError):
            dataset[-1]
    assert [int(s["index"][0, 0]) for s in samples] == list(range(5, 35))
    shards = {k: h5py.File(results / "test" / "hdf5" / f"shard_{k:04d}.h5", "r") for k in (0, 1)}
    try:
        for position, sample in enumerate(samples):
            index = 5 + position
            k, row = (0, position) if position < 20 else (1, position - 20)
            mat = scipy.io.loadmat(
                results / "test" / "mat" / f"shard_{k:04d}" / f"sample_{index:05d}.mat"
            )
            by_hand = reference_sample(shards[k], row)
            for key in ("eeg_data", "source_data", "labels", "snr", "index"):
                np.testing.assert_array_equal(sample[key], by_hand[key], err_msg=key)
                np.testing.assert_array_equal(sample[key], mat[key], err_msg=key)
            assert sample["eeg_data"].dtype == mat["eeg_data"].dtype == np.float32
    finally:
        for shard in shards.values():
            shard.close()


def test_eeg_dataset_reads_only_the_shards_its_run_made(tiny_build, tmp_path):
    """A shard another run left in the folder is not read (index.json lists this run's);
    without an index, shards that do not continue each other are refused."""
    from spikeforge.eeg.export.hdf5 import EEGDataset

    folder = tmp_path / "hdf5"
    shutil.copytree(tiny_build.workdir / "results" / "test" / "hdf5", folder)
    shutil.copy(tiny_build.workdir / "results" / "train" / "hdf5" / "shard_0000.h5",
                folder / "shard_0002.h5")  # fmt: skip
    with EEGDataset.from_folder(folder) as dataset:
        assert len(dataset) == 30 and int(dataset[29]["index"][0, 0]) == 34
    (folder / "index.json").unlink()
    with pytest.raises(ValueError, match="shard_0002.h5 starts at sample 0"):
        EEGDataset.from_folder(folder)


def test_size_estimate_against_what_the_run_wrote(tiny_build):
    """The start-up estimate is within a factor of 1.5 of the bytes the run wrote."""
    from spikeforge.workflow.startup import start_run

    config_file = tiny_build.workdir.parent / f"{tiny_build.workdir.name}.config.yaml"
    run, problems = start_run(dict(TINY, run_dir=str(tiny_build.workdir)), [config_file])
    assert problems == []
    estimate = sum(sum(kinds.values()) for kinds in run.output_bytes().values())
    written = sum(
        p.stat().st_size
        for folder in ("results", "resources")
        for p in (tiny_build.workdir / folder).rglob("*")
        if p.is_file()
    )
    assert written / 1.5 < estimate < written * 1.5, (estimate, written)


def test_unexpected_error_leaves_its_traceback_in_the_rule_log(tmp_path):
    """A damaged intermediate file (not user input) is an unexpected error: its traceback
    goes to the rule's log, the console gets one line naming the job and the log."""
    workdir = tmp_path / "run"
    run = snakemake(workdir, TINY, "results/spike_library/library.h5")
    assert run.returncode == 0, succeeded(run)
    library = workdir / "results" / "spike_library" / "library.h5"
    library.write_bytes(np.random.default_rng(2).bytes(4096))
    run = snakemake(workdir, TINY, "results/plan/train.h5")
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("spikeforge: error:")]
    assert len(errors) == 1, run.output[-5000:]
    log = "logs/plan/train.log"
    assert "sample_plan train: unexpected OSError" in errors[0] and log in errors[0]
    log_text = (workdir / log).read_text()
    assert "Traceback (most recent call last)" in log_text
    assert "site-packages/h5py" in log_text and "spikeforge/eeg/plan.py" in log_text
    # The traceback reaches the console only where the profile's show-failed-logs prints
    # the log, not on the job's own stderr.
    outside_logs = re.sub(r"Logfile .*?:\n=+\n.*?\n=+\n", "", run.stderr, flags=re.S)
    assert "Logfile logs/plan/train.log:" in run.stderr and "Traceback" not in outside_logs
    plan_folder = workdir / "results" / "plan"
    assert not plan_folder.exists() or list(plan_folder.iterdir()) == []


def test_demo_runs_without_a_config_from_any_folder(tmp_path):
    """No --configfile: the embedded demo, found beside the Snakefile whatever the working
    directory; the job count equals the count the start-up line announces."""
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
               "-n", "--cores", "2"]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts["mock_raw_nmm"] == 8 and counts["convert_cell"] == 2
    assert f"spikeforge: {sum(counts.values()) - counts['all']} jobs, about" in done.stderr
    assert not (workdir / "results").exists()


# --------------------------------------------------------------------------- bad input


@pytest.fixture(scope="session")
def small_inputs(tmp_path_factory) -> Path:
    """A consistent 20-region, 32-channel anatomy and one mock clip per region."""
    from spikeforge.eeg.demo_anatomy import write_demo_anatomy
    from spikeforge.eeg.library import write_mock_clips

    folder = tmp_path_factory.mktemp("inputs")
    write_demo_anatomy(
        folder / "leadfield.mat", folder / "region_mapping.mat", folder / "centres.mat",
        n_regions=20, n_channels=32,
    )  # fmt: skip
    write_mock_clips(folder / "nmm_spikes", 20, 1, seed=3)
    return folder


def eeg_config(**blocks) -> dict:
    """A config that runs the EEG chain with these blocks (schema defaults for the rest)."""
    return {"eeg": {"enabled": True, **blocks}}


def files_config(folder: Path, **plan) -> dict:
    return eeg_config(
        anatomy={
            "source": "files",
            "files": {
                "leadfield": str(folder / "leadfield.mat"),
                "region_mapping": str(folder / "region_mapping.mat"),
                "centres": str(folder / "centres.mat"),
            },
        },
        spike_library={"source": "folder", "folder": str(folder / "nmm_spikes")},
        plan=plan,
        splits={"train": {"samples_per_region": 1}},
        synthesis={"samples_per_shard": 20},
        export={"mat": {"enabled": False}, "deepsif": {"enabled": False}},
    )


@pytest.fixture
def inputs(small_inputs, tmp_path) -> Path:
    """A private copy of the small inputs, free to corrupt."""
    folder = tmp_path / "inputs"
    shutil.copytree(small_inputs, folder)
    return folder


def assert_anatomy_job_failure(run: Run, workdir: Path, *fragments: str) -> str:
    line = assert_job_failure(
        run, workdir, "results/anatomy/anatomy.h5", "logs/anatomy/anatomy.log", *fragments
    )
    # Only the run record (written when jobs start) is there.
    files = [p for p in (workdir / "results").rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["run.json"]
    return line


@pytest.mark.parametrize("centres", [None, [0, 1, 2]])
def test_leadfield_without_known_variable_at_startup(inputs, tmp_path, centres):
    """Start-up reads the leadfield's header (for the region count) and stops there, naming
    the key that would fix it, whether or not the plan needs every region."""
    path = inputs / "leadfield.mat"
    scipy.io.savemat(path, {"gain": scipy.io.loadmat(path)["fwd"]})
    run = snakemake(tmp_path / "run", files_config(inputs, centre_regions=centres))
    line = assert_startup_failure(
        run, tmp_path / "run", str(path), "none of the variables fwd, forward, leadfield, L;"
    )
    assert "config key eeg.anatomy.files.leadfield:" in line
    assert "eeg.anatomy.files.leadfield_key" in line


def test_leadfield_and_region_graph_size_mismatch(inputs, tmp_path):
    scipy.io.savemat(
        inputs / "leadfield.mat", {"fwd": np.random.default_rng(0).normal(size=(10, 30))}
    )
    nbs = np.empty((1, 25), dtype=object)
    for r in range(25):  # a ring of 25 regions, 1-based ids
        nbs[0, r] = np.array([[(r - 1) % 25 + 1, (r + 1) % 25 + 1]], dtype=np.float64)
    scipy.io.savemat(inputs / "region_mapping.mat", {"nbs": nbs})
    run = snakemake(tmp_path / "run", files_config(inputs))
    assert_anatomy_job_failure(
        run, tmp_path / "run", str(inputs / "region_mapping.mat"), "[nbs]",
        "region graph has 25 regions, the leadfield has 30",
    )  # fmt: skip


def test_nan_in_leadfield(inputs, tmp_path):
    path = inputs / "leadfield.mat"
    fwd = scipy.io.loadmat(path)["fwd"]
    fwd[3, 7] = np.nan
    scipy.io.savemat(path, {"fwd": fwd})
    run = snakemake(tmp_path / "run", files_config(inputs))
    assert_anatomy_job_failure(
        run, tmp_path / "run", str(path), "1 non-finite values", "channel 3, region 7"
    )


def test_random_bytes_leadfield(inputs, tmp_path):
    path = inputs / "leadfield.mat"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    run = snakemake(tmp_path / "run", files_config(inputs))
    assert_startup_failure(run, tmp_path / "run", str(path), "not a readable MATLAB file")


def test_truncated_region_mapping(inputs, tmp_path):
    path = inputs / "region_mapping.mat"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    run = snakemake(tmp_path / "run", files_config(inputs))
    assert_anatomy_job_failure(run, tmp_path / "run", str(path), "not a readable MATLAB file")


def test_centre_region_without_clips(inputs, tmp_path):
    """plan.centre_regions names region 5, whose clips (a5/) were deleted."""
    shutil.rmtree(inputs / "nmm_spikes" / "a5")
    workdir = tmp_path / "run"
    run = snakemake(workdir, files_config(inputs, centre_regions=list(range(20))))
    line = assert_job_failure(
        run, workdir, "results/plan/train.h5", "logs/plan/train.log",
        "region 5 has no spike clips", "a5/nmm_<j>.mat", "centre_regions",
    )  # fmt: skip
    assert "nmm_spikes" in line  # the user's clip folder, not the built library
    # The stages before the plan succeeded; nothing after it started.
    assert (workdir / "results" / "spike_library" / "library.h5").is_file()
    assert not (workdir / "results" / "train").exists()


@pytest.mark.parametrize(
    ("section", "key"),
    [("eeg.synthesis", "samples_per_shrad"), (None, "bogus")],
)
def test_unknown_config_key(tmp_path, section, key):
    """Schema validation stops start-up with one line naming the dotted key."""
    config = eeg_config(splits={"train": {"samples_per_region": 1}})
    if section is None:
        config[key] = 1
    else:
        config["eeg"]["synthesis"] = {key: 5}
    run = snakemake(tmp_path / "run", config)
    dotted = f"{section}.{key}" if section else key
    assert_startup_failure(run, tmp_path / "run", f"config key {dotted}: unknown key")
    assert len([line for line in run.output.splitlines() if "spikeforge: error" in line]) == 1
    assert len(run.output.splitlines()) <= 3, run.output


def test_default_centres_avoid_region_without_clips(inputs, tmp_path):
    """Without plan.centre_regions, a region without clips is reported and never a centre."""
    shutil.rmtree(inputs / "nmm_spikes" / "a5")
    workdir = tmp_path / "run"
    run = snakemake(workdir, files_config(inputs))
    assert run.returncode == 0, run.output[-3000:]
    warning = one_line_with(run.stderr, "spikeforge: warning:", "no clips", "a5")
    assert "1 region(s)" in warning
    with h5py.File(workdir / "results" / "plan" / "train.h5", "r") as plan:
        patches = plan["patch"][()]
        assert 5 not in plan["centre"][()]
    assert patches.shape[0] == 20  # 20 regions x 1 sample, spread over the 19 with clips


# --------------------------------------------------------------------------- start-up checks


def test_missing_leadfield_file(small_inputs, tmp_path):
    config = files_config(small_inputs)
    missing = tmp_path / "nonexistent.mat"
    config["eeg"]["anatomy"]["files"]["leadfield"] = str(missing)
    run = snakemake(tmp_path / "run", config)
    assert_startup_failure(
        run, tmp_path / "run", "config key eeg.anatomy.files.leadfield:",
        f"file not found: {missing}",
    )  # fmt: skip


def test_missing_region_mapping_file(small_inputs, tmp_path):
    """Checked at start-up with the other configured files."""
    config = files_config(small_inputs)
    missing = tmp_path / "nonexistent.mat"
    config["eeg"]["anatomy"]["files"]["region_mapping"] = str(missing)
    run = snakemake(tmp_path / "run", config)
    assert_startup_failure(
        run, tmp_path / "run", "config key eeg.anatomy.files.region_mapping:",
        f"file not found: {missing}",
    )  # fmt: skip


def test_missing_clip_folder(small_inputs, tmp_path):
    config = files_config(small_inputs)
    config["eeg"]["spike_library"]["folder"] = str(tmp_path / "no_clips")
    run = snakemake(tmp_path / "run", config)
    assert_startup_failure(
        run, tmp_path / "run", "config key eeg.spike_library.folder:", "folder not found"
    )


# --------------------------------------------------------------------------- real data


def real_anatomy_files() -> dict[str, str]:
    if not (REAL_ANATOMY / "leadfield_75_20k.mat").is_file():
        pytest.skip(f"real DeepSIF anatomy not found at {REAL_ANATOMY} (../shared/data absent)")
    return {
        "leadfield": str(REAL_ANATOMY / "leadfield_75_20k.mat"),
        "region_mapping": str(REAL_ANATOMY / "fs_cortex_20k_region_mapping.mat"),
        "centres": str(REAL_ANATOMY / "fs_cortex_20k_inflated.mat"),
    }


def test_real_anatomy_shards_and_anatomy_job(tmp_path):
    """994 regions read from the real leadfield's header give ceil(994 / 400) = 3 shards."""
    config = eeg_config(
        anatomy={"source": "files", "files": real_anatomy_files()},
        spike_library={"source": "mock"},
        splits={"train": {"samples_per_region": 1}},
        synthesis={"samples_per_shard": 400},
        export={"deepsif": {"enabled": False}},
    )
    workdir = tmp_path / "run"
    dry = snakemake(workdir, config, "-n")
    assert dry.returncode == 0, succeeded(dry)
    assert job_counts(dry.output)["synthesize_shard"] == 3
    assert sorted(planned_outputs(dry.output)["synthesize_shard"]) == [
        f"results/train/hdf5/shard_{k:04d}.h5" for k in range(3)
    ]
    run = snakemake(workdir, config, "results/anatomy/anatomy.h5")
    assert run.returncode == 0, succeeded(run)
    with h5py.File(workdir / "results" / "anatomy" / "anatomy.h5", "r") as anatomy:
        assert anatomy["leadfield"].shape == (75, 994)
        finite = np.isfinite(anatomy["distances"][()])
    # DeepSIF's region graph is two hemispheres with no edge between them.
    hemispheres = {tuple(np.flatnonzero(row)) for row in finite}
    assert sorted(len(h) for h in hemispheres) == [494, 500]


def test_real_leadfield_with_wrong_region_mapping(small_inputs, tmp_path):
    """A realistic mix-up: DeepSIF's leadfield with another head's (20-region) neighbour lists."""
    files = real_anatomy_files()
    files["region_mapping"] = str(small_inputs / "region_mapping.mat")
    config = eeg_config(
        anatomy={"source": "files", "files": files},
        spike_library={"source": "folder", "folder": str(small_inputs / "nmm_spikes")},
        splits={"train": {"samples_per_region": 1}},
        synthesis={"samples_per_shard": 1000},
    )
    run = snakemake(tmp_path / "run", config)
    assert_anatomy_job_failure(
        run, tmp_path / "run", files["region_mapping"],
        "region graph has 20 regions, the leadfield has 994",
    )  # fmt: skip


def test_second_config_in_the_same_folder_keeps_to_its_own_run_dir(tmp_path):
    """After a demo-like run, a real-anatomy config run in the same folder is refused until it
    has a run folder of its own; then it runs there without touching the first run's files,
    and what it builds comes from its own inputs only."""
    files = real_anatomy_files()
    folder = tmp_path / "project"
    first = snakemake(folder, TINY)
    assert first.returncode == 0, succeeded(first)
    results = folder / "results"
    before = sha256_tree(results)
    mtimes = {p: p.stat().st_mtime_ns for p in results.rglob("*")}
    real = eeg_config(
        anatomy={"source": "files", "files": files},
        spike_library={"source": "raw"},
        raw={"source": "mock", "regions": [0, 5], "iterations": [0],
             "mock": {"duration_s": 8.0, "chunk_s": 4.0}},
        splits={"train": {"samples_per_region": 2}},
        synthesis={"samples_per_shard": 3},
        export={"deepsif": {"enabled": False}},
    )  # fmt: skip
    refused = snakemake(folder, real, config_name="real.yaml")
    line = assert_startup_failure_keeping(refused, "config key run_dir:", "project.config.yaml")
    assert "give this config a run_dir of its own" in line
    real["run_dir"] = "real"
    second = snakemake(folder, real, config_name="real.yaml")
    assert second.returncode == 0, succeeded(second)
    assert sha256_tree(results) == before
    assert {p: p.stat().st_mtime_ns for p in results.rglob("*")} == mtimes
    own = folder / "real" / "results"
    with h5py.File(own / "spike_library" / "library.h5", "r") as library:
        assert library.attrs["clip_folder"] == "real/results/nmm_spikes"
        assert set(library["region"][()].tolist()) <= {0, 5}
        assert library["clips"].shape[1] == 994
    index = json.loads((own / "train" / "hdf5" / "index.json").read_text())
    assert [e["file"] for e in index["shards"]] == ["shard_0000.h5", "shard_0001.h5"]
    assert json.loads((own / "run.json").read_text())["config_files"] == [
        str(tmp_path / "real.yaml")
    ]
    assert (folder / "real" / "logs" / "anatomy" / "anatomy.log").is_file()


def assert_startup_failure_keeping(run: Run, *fragments: str) -> str:
    """Stopped before any job, in a folder that already holds another run's outputs."""
    assert run.returncode != 0, run.output[-3000:]
    assert "Error in rule" not in run.output
    assert_no_library_traceback(run)
    return one_line_with(run.output, *fragments)

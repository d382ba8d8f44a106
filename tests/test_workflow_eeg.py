"""The EEG chain run by Snakemake on a tiny config (a 40-region demo head model with 32
channels, one mock clip per region, shards of 20 samples): outputs, byte-identical rebuilds of
what was deleted, the loader against the files, the size estimate, the error contract."""

from __future__ import annotations

import json
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
from workflow_run import (
    SNAKEFILE,
    TINY,
    job_counts,
    planned_outputs,
    sha256_tree,
    snakemake,
    succeeded,
)

pytestmark = pytest.mark.workflow

REBUILT_SHARD = "test/hdf5/shard_0001.h5"
REBUILT_MAT = "test/mat/shard_0001"


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
        assert shards == sorted(
            name
            for k in range(len(ranges))
            for name in (f"shard_{k:04d}.h5", f"shard_{k:04d}.h5.manifest.json")
        )
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
    assert meta["failed_samples"].item() == 0
    assert meta["dataset_path"].item() == "results/plan/test"
    assert meta["forward_model_path"].item() == "resources/demo/anatomy/leadfield.mat"
    np.testing.assert_array_equal(meta["forward_shape"], [[32, 40]])
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
        "qc_eeg_split": 1,  # its figures read the split's shards
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
        *(results / "qc" / "eeg" / f"test_{figure}.png" for figure in ("samples", "snr", "plan")),
    )
    rebuilt += tuple(Path(f"{r}.manifest.json") for r in rebuilt)
    for path, mtime in before_mtimes.items():
        if not any(path == r or r in path.parents for r in rebuilt):
            assert path.stat().st_mtime_ns == mtime, path


def test_same_shard_in_fresh_folder_is_byte_identical(tiny_build, tmp_path):
    """The second shard alone, built in a new folder, equals the first folder's (whole) build."""
    workdir = tmp_path / "run"
    run = snakemake(workdir, TINY, f"results/{REBUILT_SHARD}")
    assert run.returncode == 0, succeeded(run)
    fresh = sha256_tree(workdir / "results")
    outputs = [
        "anatomy/anatomy.h5", "plan/test/part_0000.h5", "spike_library/library.h5", REBUILT_SHARD
    ]  # fmt: skip
    assert sorted(fresh) == sorted(
        ["run.json", *outputs, *(f"{name}.manifest.json" for name in outputs)]
    )
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
    """index.json lists this run's shards: a shard another run left in the folder is refused,
    by name; without an index, shards that do not continue each other are refused."""
    from spikeforge.core.errors import InputError
    from spikeforge.eeg.export.hdf5 import EEGDataset

    folder = tmp_path / "hdf5"
    shutil.copytree(tiny_build.workdir / "results" / "test" / "hdf5", folder)
    with EEGDataset.from_folder(folder) as dataset:
        assert len(dataset) == 30 and int(dataset[29]["index"][0, 0]) == 34
    shutil.copy(tiny_build.workdir / "results" / "train" / "hdf5" / "shard_0000.h5",
                folder / "shard_0002.h5")  # fmt: skip
    with pytest.raises(InputError, match=r"not listed .*'shard_0002\.h5'"):
        EEGDataset.from_folder(folder)
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
    """An intermediate file the code cannot handle (a bug's way to fail, not bad input: here
    a library whose clips are one-dimensional, made by no spikeforge, so without manifest) is
    an unexpected error: its traceback goes to the rule's log, the console gets one line
    naming the job and the log."""
    workdir = tmp_path / "run"
    run = snakemake(workdir, TINY, "results/spike_library/library.h5")
    assert run.returncode == 0, succeeded(run)
    library = workdir / "results" / "spike_library" / "library.h5"
    library.unlink()
    (workdir / "results" / "spike_library" / "library.h5.manifest.json").unlink()
    with h5py.File(library, "w") as handle:
        for name in ("clips", "projection", "region", "centre_waveform"):
            handle[name] = np.zeros(4)
    run = snakemake(workdir, TINY, "results/plan/train/part_0000.h5")
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("spikeforge: error:")]
    assert len(errors) == 1, run.output[-5000:]
    log = "logs/plan/train_0000.log"
    assert "sample_plan train, 0000: unexpected ValueError" in errors[0] and log in errors[0]
    log_text = (workdir / log).read_text()
    assert "Traceback (most recent call last)" in log_text
    assert "spikeforge/eeg/library.py" in log_text and "spikeforge/eeg/plan.py" in log_text
    # The traceback reaches the console only where the profile's show-failed-logs prints
    # the log, not on the job's own stderr.
    outside_logs = re.sub(r"Logfile .*?:\n=+\n.*?\n=+\n", "", run.stderr, flags=re.S)
    assert "Logfile logs/plan/train_0000.log:" in run.stderr and "Traceback" not in outside_logs
    plan_folder = workdir / "results" / "plan" / "train"
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

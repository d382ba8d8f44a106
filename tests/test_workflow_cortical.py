"""Cortical exports in the workflow: mock datastores to per-part files, a deleted part rebuilt
alone, a dry run at the real dataset's scale in seconds, bad parts stopped at start-up."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import load_npz
from workflow_run import (
    assert_startup_failure,
    job_counts,
    output_names,
    sha256_tree,
    snakemake,
    succeeded,
)

from spikeforge.cortical.mock import MockSpec, truth
from spikeforge.cortical.mock import folder_name as mock_folder_name

pytestmark = pytest.mark.workflow

MOCK = {
    "cortical": {
        "enabled": True,
        "sheets": ["X_OFF", "V1_Inh_L2/3"],
        "windows": {"enabled": True},
        "mock": {"neurons": {"X_OFF": 9, "V1_Inh_L2/3": 14}, "images": 3,
                 "train_parts": 2, "test_parts": 1, "test_trials": 2},
    }
}  # fmt: skip


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("cortical") / "run"
    run = snakemake(workdir, MOCK)
    assert run.returncode == 0, succeeded(run)
    assert job_counts(run.output) == {
        "mock_cortical": 2, "all": 1,
        "export_cortical_train_X_OFF": 2, "export_cortical_train_V1_Inh_L23": 2,
        "export_cortical_test_X_OFF": 1, "export_cortical_test_V1_Inh_L23": 1,
        "qc_cortical_sheet": 4,  # a figure per (variant, sheet)
    }  # fmt: skip
    for variant in ("train", "test"):
        for sheet in ("X_OFF", "V1_Inh_L23"):
            assert (workdir / "results" / "qc" / "cortical" / variant / f"{sheet}.png").is_file()
    return workdir


def test_parts_are_exported_in_the_groups_layout(run_folder):
    out = run_folder / "results" / "cortical"
    spec = MockSpec(neurons={"X_OFF": 9, "V1_Inh_L2/3": 14}, images=3, trials=2, seed=20261121)
    assert output_names(out / "test" / "spikes" / "V1_Inh_L23") == [
        "spikes_trial_0_V1_Inh_L23_300000.npz", "spikes_trial_1_V1_Inh_L23_300000.npz",
    ]  # fmt: skip
    assert output_names(out / "train" / "spikes" / "X_OFF") == [
        "spikes_X_OFF_50000.npz", "spikes_X_OFF_50100.npz",
    ]  # fmt: skip
    known = truth(spec, 300_000, "V1_Inh_L2/3", 1)
    matrix = load_npz(
        out / "test" / "spikes" / "V1_Inh_L23" / "spikes_trial_1_V1_Inh_L23_300000.npz"
    )
    assert matrix.shape == (14, 3 * 712)
    assert matrix.sum() == sum(c.sum() for k in ("blank", "image") for c, _ in known[k])
    ids = np.load(out / "test" / "neuron_ids" / "neuron_ids_V1_Inh_L23_300000.npy")
    assert np.array_equal(ids, known["neuron_ids"])
    images = np.load(out / "train" / "image_ids" / "image_ids_X_OFF_50100.npy")
    assert images.tolist() == ["50100", "50101", "50102"]
    assert load_npz(out / "train" / "windows" / "X_OFF" / "spikes_X_OFF_50000.npz").shape == (
        9,
        3 * 35,
    )


def test_a_deleted_part_file_is_the_only_job_and_rebuilds_identically(run_folder):
    before = sha256_tree(run_folder / "results" / "cortical")
    target = (
        run_folder
        / "results"
        / "cortical"
        / "train"
        / "spikes"
        / "X_OFF"
        / "spikes_X_OFF_50100.npz"
    )
    target.unlink()
    dry = snakemake(run_folder, MOCK, "-n")
    assert dry.returncode == 0, succeeded(dry)
    assert job_counts(dry.output) == {"export_cortical_train_X_OFF": 1, "all": 1}
    assert "results/cortical/train/spikes/X_OFF/spikes_X_OFF_50100.npz" in dry.output
    run = snakemake(run_folder, MOCK)
    assert run.returncode == 0, succeeded(run)
    assert sha256_tree(run_folder / "results" / "cortical") == before


def _datastore_folders(root: Path, first: int, count: int) -> None:
    root.mkdir(parents=True)
    for k in range(count):
        part = first + 100 * k
        folder = root / mock_folder_name(part, 100)
        folder.mkdir()
        (folder / "datastore.recordings.pickle").touch()


def test_dry_run_at_the_real_datasets_scale_takes_seconds(tmp_path):
    _datastore_folders(tmp_path / "train", 50_000, 500)
    _datastore_folders(tmp_path / "test", 300_000, 19)
    config = {"max_output_gb": 1000, "check_free_disk": False, "cortical": {
        "enabled": True, "source": "datastore",
        "train": {"root": str(tmp_path / "train")}, "test": {"root": str(tmp_path / "test")},
    }}  # fmt: skip
    start = time.perf_counter()
    dry = snakemake(tmp_path / "run", config, "-n", "--quiet", "rules")
    seconds = time.perf_counter() - start
    assert dry.returncode == 0, succeeded(dry)
    counts = job_counts(dry.output)
    assert sum(n for rule, n in counts.items() if rule.startswith("export_cortical_train")) == 3000
    assert sum(n for rule, n in counts.items() if rule.startswith("export_cortical_test")) == 114
    # Under 10 s alone (benchmarks/dryrun_cortical_scale.py, run by CI on idle cores); here
    # other tests share the cores, so only a pathological slowdown fails.
    assert seconds < 30, f"dry run of {500 * 6 + 19 * 6} jobs took {seconds:.1f} s"


def test_a_part_without_a_datastore_stops_at_start_up(tmp_path):
    _datastore_folders(tmp_path / "train", 50_000, 3)
    bad = next((tmp_path / "train").glob("*baseline:50100_*"))
    (bad / "datastore.recordings.pickle").unlink()
    train = {"root": str(tmp_path / "train")}
    config = {"cortical": {"enabled": True, "source": "datastore", "train": train,
                           "test": {"enabled": False}}}  # fmt: skip
    workdir = tmp_path / "run"
    run = snakemake(workdir, config, "-n")
    assert_startup_failure(
        run, workdir, "cortical.train", "part 50100", "is not a Mozaik datastore"
    )


def test_an_unknown_sheet_stops_at_start_up(tmp_path):
    config = {"cortical": {"enabled": True, "sheets": ["V1_Exc_L5"]}}
    workdir = tmp_path / "run"
    run = snakemake(workdir, config, "-n")
    assert_startup_failure(run, workdir, "cortical.sheets", "V1_Exc_L5")


def test_datastore_folders_export_and_a_new_part_adds_only_its_jobs(tmp_path):
    from spikeforge.cortical.mock import write_part

    spec = MockSpec(neurons={"X_ON": 6}, images=2, seed=3)
    for part in (70_000, 70_100):
        write_part(spec, tmp_path / "train", part)
    config = {"cortical": {"enabled": True, "source": "datastore", "sheets": ["X_ON"],
                           "train": {"root": str(tmp_path / "train")},
                           "test": {"enabled": False}}}  # fmt: skip
    workdir = tmp_path / "run"
    run = snakemake(workdir, config)
    assert run.returncode == 0, succeeded(run)
    spikes = workdir / "results" / "cortical" / "train" / "spikes" / "X_ON"
    assert output_names(spikes) == [
        "spikes_X_ON_70000.npz", "spikes_X_ON_70100.npz",
    ]  # fmt: skip
    known = truth(spec, 70_100, "X_ON", 0)
    assert load_npz(spikes / "spikes_X_ON_70100.npz").sum() == sum(
        c.sum() for k in ("blank", "image") for c, _ in known[k]
    )
    write_part(spec, tmp_path / "train", 70_200)
    dry = snakemake(workdir, config, "-n")
    assert dry.returncode == 0, succeeded(dry)
    assert job_counts(dry.output) == {"export_cortical_train_X_ON": 1, "all": 1}
    assert "spikes_X_ON_70200.npz" in dry.output

"""Bad input and start-up checks of the EEG chain, real head models, and a second config run
in the folder of a first: one clear line naming the file or config key, nothing partial left."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from workflow_run import (
    TINY,
    Run,
    assert_job_failure,
    assert_no_library_traceback,
    assert_startup_failure,
    eeg_config,
    job_counts,
    one_line_with,
    planned_outputs,
    real_anatomy_files,
    sha256_tree,
    snakemake,
    succeeded,
)

pytestmark = pytest.mark.workflow


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
        run, workdir, "results/plan/train/part_0000.h5", "logs/plan/train_0000.log",
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
    with h5py.File(workdir / "results" / "plan" / "train" / "part_0000.h5", "r") as plan:
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


@pytest.mark.slow
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


def test_deepsif_metadata_replaces_the_plan(small_inputs, tmp_path):
    """plan.source deepsif: the split's size comes from the metadata file's header, its rows
    become the plan (regions, clips, one of two ratios, SNR), and the shards label them."""
    n = 6
    selected = np.full((n, 1, 70), 15213.0)
    mag = np.full((n, 1, 70), 15213.0)
    for i in range(n):
        selected[i, 0, :2] = [i, i + 1]  # library rows are one clip per region: row r = a{r}
        mag[i, 0, :2] = [1.0, 0.5]
    metadata = tmp_path / "train_sample_source1.mat"
    scipy.io.savemat(metadata, {
        "selected_region": selected, "mag_change": mag,
        "scale_ratio": np.stack([np.full((n, 1), 2.0), np.full((n, 1), 3.0)], axis=2),
        "nmm_idx": np.arange(n, dtype=float)[:, None], "current_snr": np.full((n, 1), 10.0),
    })  # fmt: skip
    config = files_config(small_inputs, source="deepsif", deepsif_metadata={"train": str(metadata)})
    config["eeg"]["synthesis"]["samples_per_shard"] = 4
    workdir = tmp_path / "run"
    run = snakemake(workdir, config)
    assert run.returncode == 0, succeeded(run)
    assert "import_deepsif_plan" in run.output
    results = workdir / "results"
    # the imported plan's rows go to the plan part of the shards that use them
    with h5py.File(results / "plan" / "train" / "part_0000.h5", "r") as plan:
        assert plan.attrs["source"] == str(metadata)
        np.testing.assert_array_equal(plan["clip"][:, 0], np.arange(n))
        assert set(np.unique(plan["scale"][()])) <= {2.0, 3.0}
        np.testing.assert_array_equal(plan["sensor_snr"][()], 10.0)
    labels = []
    for k in (0, 1):
        with h5py.File(results / "train" / "hdf5" / f"shard_{k:04d}.h5", "r") as shard:
            labels.append(shard["labels"][:, 0, :3])
    np.testing.assert_array_equal(np.concatenate(labels), [[i, i + 1, -1] for i in range(n)])

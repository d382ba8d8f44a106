"""The raw chain on a tiny config: mock raw recordings -> per-region clips -> library -> samples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from workflow_run import (
    REAL_ANATOMY,
    assert_job_failure,
    assert_startup_failure,
    job_counts,
    planned_outputs,
    sha256_tree,
    snakemake,
    succeeded,
)

pytestmark = pytest.mark.workflow

RAW_EEG = {
    "enabled": True,
    "anatomy": {"source": "demo", "demo": {"n_regions": 24, "n_channels": 16}},
    "spike_library": {"source": "raw"},
    "raw": {"source": "mock", "regions": [2, 9, 17], "iterations": [0, 1],
            "mock": {"duration_s": 8.0, "chunk_s": 3.0}},
    "plan": {"n_sources": 1},
    "splits": {"train": {"samples_per_region": 10}},
    "synthesis": {"samples_per_shard": 12},
    "export": {"mat": {"enabled": False}, "deepsif": {"enabled": True}},
}  # fmt: skip
RAW_TINY = {"seed": 5, "eeg": RAW_EEG}


def raw_config(**blocks) -> dict:
    """RAW_TINY with some EEG blocks replaced."""
    return {"seed": 5, "eeg": dict(RAW_EEG, **blocks)}


def real_anatomy_files() -> dict[str, str]:
    """DeepSIF's head model as eeg.anatomy.files."""
    return {
        "leadfield": str(REAL_ANATOMY / "leadfield_75_20k.mat"),
        "region_mapping": str(REAL_ANATOMY / "fs_cortex_20k_region_mapping.mat"),
        "centres": str(REAL_ANATOMY / "fs_cortex_20k_inflated.mat"),
    }


@pytest.fixture(scope="module")
def raw_build(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("raw") / "run"
    run = snakemake(workdir, RAW_TINY)
    assert run.returncode == 0, succeeded(run)
    return workdir


def test_clip_layout_numbering_and_provenance(raw_build):
    results = raw_build / "results"
    with h5py.File(results / "spike_library" / "library.h5", "r") as library:
        region = library["region"][()]
        iteration = library["iteration"][()]
        number = library["clip_number"][()]
        alpha = library["alpha"][()]
        assert set(region.tolist()) == {2, 9, 17}
    for r in (2, 9, 17):
        info = json.loads((results / "nmm_spikes" / "clip_info" / f"a{r}.json").read_text())
        files = sorted((results / "nmm_spikes" / f"a{r}").glob("nmm_*.mat"))
        js = [c["j"] for c in info["clips"]]
        # j counts from 1 and continues across iterations (iteration 0's clips first).
        assert js == list(range(1, len(files) + 1)) and len(files) >= 2
        its = [c["iteration"] for c in info["clips"]]
        assert its == sorted(its) and set(its) == {0, 1}
        assert len({c["alpha"] for c in info["clips"] if c["iteration"] == 0}) == 1
        for clip in info["clips"]:
            data = scipy.io.loadmat(results / "nmm_spikes" / f"a{r}" / f"nmm_{clip['j']}.mat")
            assert data["data"].shape == (500, 24) and data["data"].dtype == np.float32
            # The peak lies inside the clip, and the clip starts at floor((t + 1) / 500) * 500.
            assert clip["clip_start"] == (clip["peak_time"] + 1) // 500 * 500
            assert np.argmax(data["data"][:, r]) == clip["peak_time"] - clip["clip_start"]
        rows = region == r
        np.testing.assert_array_equal(number[rows], js)
        np.testing.assert_array_equal(iteration[rows], its)
        assert np.all(alpha[rows] > 0)


def test_deleted_region_reruns_its_extraction_and_what_follows(raw_build):
    """Deleting region 9's clips reruns region 9's extraction only (not its recordings, not
    the other regions), then the library, the plan and every shard: Snakemake compares
    modification times, and the rebuilt library and plan are new files even where their
    content is the same, so the shards that do not use region 9 rerun too. Everything rebuilt
    is byte-identical."""
    results = raw_build / "results"
    before = sha256_tree(results)
    with h5py.File(results / "plan" / "train" / "part_0000.h5", "r") as plan:
        with h5py.File(results / "spike_library" / "library.h5", "r") as library:
            uses = np.isin(library["region"][()][plan["clip"][()]], [9]).any(axis=1)
    shards_using = set(np.flatnonzero(uses) // 12)
    assert len(shards_using) < 3, "the config must leave a shard without region 9"
    shutil.rmtree(results / "nmm_spikes" / "a9")
    (results / "nmm_spikes" / "clip_info" / "a9.json").unlink()
    dry = snakemake(raw_build, RAW_TINY, "-n")
    assert dry.returncode == 0, succeeded(dry)
    assert job_counts(dry.output) == {
        "extract_clips": 1, "spike_library": 1, "sample_plan": 1, "synthesize_shard": 3,
        "split_index": 1, "export_deepsif": 1, "qc_eeg_split": 1, "qc_eeg_library": 1, "all": 1,
    }  # fmt: skip
    jobs = planned_outputs(dry.output)
    assert jobs["extract_clips"][0].startswith("results/nmm_spikes/a9")
    assert sorted(jobs["synthesize_shard"]) == [
        f"results/train/hdf5/shard_{k:04d}.h5" for k in range(3)
    ]
    run = snakemake(raw_build, RAW_TINY)
    assert run.returncode == 0, succeeded(run)
    assert sha256_tree(results) == before


def test_missing_raw_chunk_and_region_mismatch(raw_build, tmp_path):
    raw = raw_build / "resources" / "demo" / "raw_nmm"
    folder = tmp_path / "raw_nmm"
    shutil.copytree(raw, folder)
    for made_by_the_mock in folder.rglob("*.manifest.json"):  # a user's folder has none
        made_by_the_mock.unlink()
    (folder / "a9" / "mean_iter_1_a_iter_9_1.mat").unlink()
    config = raw_config(raw=dict(RAW_EEG["raw"], source="folder", folder=str(folder)))
    workdir = tmp_path / "run"
    run = snakemake(workdir, config)
    assert_job_failure(
        run, workdir, "results/nmm_spikes/a9", "logs/clips/extract_clips_9.log",
        "mean_iter_1_a_iter_9_1.mat", "raw chunk missing",
    )  # fmt: skip
    # A recording with 25 regions against a 24-region leadfield.
    shutil.rmtree(folder / "a9")
    for chunk in (folder / "a2").glob("*.mat"):
        data = scipy.io.loadmat(chunk)
        data["data"] = np.hstack([data["data"], data["data"][:, :1]])
        scipy.io.savemat(chunk, {k: v for k, v in data.items() if not k.startswith("_")})
    config["eeg"]["raw"] = dict(config["eeg"]["raw"], regions=[2])
    workdir = tmp_path / "run2"
    run = snakemake(workdir, config)
    assert_job_failure(
        run, workdir, "results/nmm_spikes/a2", "logs/clips/extract_clips_2.log",
        "mean_iter_0_a_iter_2_0.mat", "raw data has 25 regions, the leadfield 24",
    )  # fmt: skip


def test_tvb_simulation_feeds_clip_extraction(tmp_path):
    """TVB (2 regions x 0.5 s on the 76-region connectivity) writes the raw layout, and the
    per-region extraction reads it. Half a second holds no selectable 1 s clip, so each
    region reports that no peak passes the selection instead of failing."""
    pytest.importorskip("tvb", reason="tvb-library not installed (pip install -e .[tvb])")
    connectivity = REAL_ANATOMY / "connectivity_76.zip"
    if not connectivity.is_file():
        pytest.skip(f"{connectivity} not found (../shared/data absent)")
    config = raw_config(
        anatomy={"source": "demo", "demo": {"n_regions": 76, "n_channels": 16}},
        raw={
            "source": "tvb", "regions": [0, 1], "iterations": [0],
            "tvb": {"connectivity": str(connectivity), "duration_s": 0.5, "chunk_s": 0.25},
        },
        preprocessing={"burn_in": 0},
    )  # fmt: skip
    workdir = tmp_path / "run"
    targets = [f"results/nmm_spikes/clip_info/a{r}.json" for r in (0, 1)]
    run = snakemake(workdir, config, *targets)
    assert run.returncode == 0, succeeded(run)
    for r in (0, 1):
        chunks = sorted((workdir / "results" / "raw_nmm" / f"a{r}").glob("*.mat"))
        assert [c.name for c in chunks] == [f"mean_iter_0_a_iter_{r}_{k}.mat" for k in (0, 1)]
        data = scipy.io.loadmat(chunks[1])
        assert data["data"].shape == (500, 76) and data["data"].dtype == np.float32
        assert data["A"].ravel()[r] == 3.5
        info = json.loads((workdir / targets[r]).read_text())
        assert info["clips"] == [] and "no peak passes the selection" in info["messages"][0]
        assert "no peak passes the selection" in run.stderr


def test_tvb_duration_not_a_multiple_of_the_chunk_stops_at_start_up(tmp_path):
    """5 s in chunks of 2 s would die inside the simulation job: start-up names the keys."""
    connectivity = tmp_path / "connectivity.zip"
    connectivity.write_bytes(b"")  # start-up checks that it exists; no job reads it
    config = raw_config(
        raw={"source": "tvb", "regions": [0], "iterations": [0],
             "tvb": {"connectivity": str(connectivity), "duration_s": 5, "chunk_s": 2}},
    )  # fmt: skip
    run = snakemake(tmp_path / "run", config)
    assert_startup_failure(
        run, tmp_path / "run", "config key eeg.raw.tvb.chunk_s:",
        "chunk_s = 2 s does not divide duration_s = 5 s", "eeg.raw.tvb.duration_s",
    )  # fmt: skip


@pytest.mark.slow
def test_tvb_on_deepsifs_connectivity_yields_clips(tmp_path):
    """2.5 s of Jansen-Rit on DeepSIF's 998-region connectivity (about a minute): the spiking
    region (A = 3.5) fires while the others stay below threshold, and its clips come out
    with DeepSIF's remap onto the real 994-region leadfield."""
    pytest.importorskip("tvb", reason="tvb-library not installed (pip install -e .[tvb])")
    connectivity = REAL_ANATOMY / "connectivity_998.zip"
    if not connectivity.is_file():
        pytest.skip(f"{connectivity} not found (../shared/data absent)")
    files = real_anatomy_files()
    config = {
        "seed": 1,
        "eeg": {
            "enabled": True,
            "anatomy": {"source": "files", "files": files},
            "spike_library": {"source": "raw"},
            "raw": {"source": "tvb", "regions": [100], "iterations": [0],
                    "tvb": {"connectivity": str(connectivity), "duration_s": 2.5,
                            "chunk_s": 0.5}},
            "preprocessing": {"fsaverage_remap": True},
        },
    }  # fmt: skip
    workdir = tmp_path / "run"
    target = "results/nmm_spikes/clip_info/a100.json"
    run = snakemake(workdir, config, target)
    assert run.returncode == 0, succeeded(run)
    info = json.loads((workdir / target).read_text())
    assert len(info["clips"]) >= 1, info["messages"]
    for clip in info["clips"]:
        data = scipy.io.loadmat(
            workdir / "results" / "nmm_spikes" / "a100" / f"nmm_{clip['j']}.mat"
        )
        assert data["data"].shape == (500, 994)
        region = data["data"][:, 100]
        peak = clip["peak_time"] - clip["clip_start"]
        assert region[peak] >= region[peak - 1] and region[peak] >= region[peak + 1]
        others = np.delete(data["data"], 100, axis=1)
        assert region[peak] > 8.0 > others.max()  # a spike in region 100 only (rescaled)


def test_simulate_source_builds_the_library_and_rebuilds_a_job_identically(tmp_path):
    """raw.source 'simulate' on DeepSIF's connectivity and real head model: one
    simulate_clips job per region (regions_per_job 1), the library reads their clip folders
    with provenance; a deleted job folder is rebuilt byte-identically and alone."""
    pytest.importorskip("numba", reason="numba not installed")
    connectivity = REAL_ANATOMY / "connectivity_998.zip"
    if not connectivity.is_file():
        pytest.skip(f"{connectivity} not found (../shared/data absent)")
    files = real_anatomy_files()
    config = {
        "seed": 3,
        "eeg": {
            "enabled": True,
            "anatomy": {"source": "files", "files": files},
            "spike_library": {"source": "raw"},
            "raw": {"source": "simulate", "regions": [100, 7], "iterations": [0, 1],
                    "simulate": {"connectivity": str(connectivity), "duration_s": 12.0,
                                 "chunk_s": 4.0, "regions_per_job": 1}},
            "preprocessing": {"fsaverage_remap": True},
        },
    }  # fmt: skip
    workdir = tmp_path / "run"
    library = "results/spike_library/library.h5"
    run = snakemake(workdir, config, library)
    assert run.returncode == 0, succeeded(run)
    assert job_counts(run.stdout + run.stderr).get("simulate_clips") == 2
    assert "extract_clips" not in job_counts(run.stdout + run.stderr)
    batches = workdir / "results" / "nmm_spikes"
    assert sorted(p.name for p in batches.iterdir() if p.is_dir()) == [
        "batch_0000", "batch_0001",
    ]  # fmt: skip
    with h5py.File(workdir / library) as lib:
        regions = lib["region"][:]
        assert set(regions) == {7, 100}
        assert set(lib["iteration"][:]) <= {0, 1} and np.all(lib["alpha"][:] > 0)
        sources = [s.decode() for s in lib["source_file"][:]]
        assert all(s.startswith(("batch_0000/a100/", "batch_0001/a7/")) for s in sources)
    before = sha256_tree(batches / "batch_0001")
    shutil.rmtree(batches / "batch_0001")
    # the workflow's targets name the job folders, so a deleted one is noticed
    again = snakemake(workdir, config, library, "results/nmm_spikes/batch_0001")
    assert again.returncode == 0, succeeded(again)
    assert job_counts(again.stdout + again.stderr).get("simulate_clips") == 1
    assert sha256_tree(batches / "batch_0001") == before

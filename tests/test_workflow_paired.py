"""The paired-recording chain in the workflow: mock SPE-1 cells, a user's SPE-1 folder and a raw
binary recording -> per-cell Arrow datasets."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from workflow_run import (
    assert_job_failure,
    assert_startup_failure,
    job_counts,
    one_line_with,
    planned_outputs,
    sha256_tree,
    snakemake,
    succeeded,
)

from spikeforge.paired.spe1 import NPX_GAIN_UV, PHASE3A_REFERENCE_CHANNELS

pytestmark = pytest.mark.workflow

PAIRED_TINY = {
    "paired": {
        "enabled": True, "source": "mock", "cells": ["cell_a", "cell_b"],
        "mock": {"duration_s": 8.0}, "window": {"skip_s": 1.0, "duration_s": 6.0},
        "bad_channels": {"method": "coherence+psd", "num_random_chunks": 5},
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def paired_build(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("paired") / "run"
    run = snakemake(workdir, PAIRED_TINY)
    assert run.returncode == 0, succeeded(run)
    return workdir


def test_cells_are_exported(paired_build):
    import datasets

    for cell in ("cell_a", "cell_b"):
        folder = paired_build / "results" / "paired" / cell
        train = datasets.load_from_disk(str(folder / "train"))
        test = datasets.load_from_disk(str(folder / "test"))
        assert (len(train), len(test)) == (1, 1)  # 6 s = two 3 s segments
        assert train.column_names == ["sample_id", "cit", "ctt", "cp"]
        meta = json.loads((folder / "conversion_metadata.json").read_text())
        assert meta["source_metadata"]["cell_id"] == cell
        # The mock's summary names the ground-truth unit's channel; the template agrees.
        assert meta["unit_peak_channel"]["0"] == meta["gt_electrode_chan_idx"]
        assert set(np.load(folder / "templates.npz").files) == {
            "templates", "sampling_frequency", "probe_positions", "nbefore", "nafter",
        }  # fmt: skip
        # The unconnected reference sites are bad whatever the detector found.
        assert meta["unconnected_channel_ids"] == list(PHASE3A_REFERENCE_CHANNELS)
        assert set(PHASE3A_REFERENCE_CHANNELS) <= set(meta["bad_channel_ids"])
        assert meta["bad_channel_ids"] == sorted(
            set(meta["detector_bad_channel_ids"]) | set(PHASE3A_REFERENCE_CHANNELS)
        )
        # the split folders were staged by mkdtemp (0700): they end as mkdir would make them
        umask = os.umask(0)
        os.umask(umask)
        for split in ("train", "test"):
            assert (folder / split).stat().st_mode & 0o777 == 0o777 & ~umask


def test_paired_only_config_schedules_no_eeg_job(tmp_path):
    dry = snakemake(tmp_path / "run", PAIRED_TINY, "-n")
    assert dry.returncode == 0, succeeded(dry)
    assert job_counts(dry.output) == {
        "mock_spe1_probe": 1, "mock_spe1_cell": 2, "mock_spe1_summary": 1, "convert_cell": 2,
        "qc_paired_cell": 2, "all": 1,
    }  # fmt: skip
    assert "spikeforge: 8 jobs, about" in dry.stderr


def test_added_mock_cell_plans_only_its_jobs(paired_build):
    config = {"paired": dict(PAIRED_TINY["paired"], cells=["cell_a", "cell_b", "cell_c"])}
    dry = snakemake(paired_build, config, "-n")
    assert dry.returncode == 0, succeeded(dry)
    assert job_counts(dry.output) == {
        "mock_spe1_cell": 1, "mock_spe1_summary": 1, "convert_cell": 1, "qc_paired_cell": 1,
        "all": 1,
    }  # fmt: skip
    jobs = planned_outputs(dry.output)
    assert jobs["convert_cell"][0].startswith("results/paired/cell_c/")
    assert "Recordings/cell_c" in jobs["mock_spe1_cell"][0]


def test_deleted_cell_rebuilds_that_cell_only(paired_build):
    results = paired_build / "results"
    before = sha256_tree(results / "paired")
    shutil.rmtree(results / "paired" / "cell_b")
    dry = snakemake(paired_build, PAIRED_TINY, "-n")
    assert dry.returncode == 0, succeeded(dry)
    counts = job_counts(dry.output)
    assert counts == {"convert_cell": 1, "qc_paired_cell": 1, "all": 1}
    assert planned_outputs(dry.output)["convert_cell"][0].startswith("results/paired/cell_b/")
    run = snakemake(paired_build, PAIRED_TINY)
    assert run.returncode == 0, succeeded(run)
    assert sha256_tree(results / "paired") == before


def test_bad_binary_size_is_a_clear_error(paired_build, tmp_path):
    spe1 = tmp_path / "spe1"
    shutil.copytree(paired_build / "resources" / "demo" / "spe1", spe1)
    for made_by_the_mock in spe1.rglob("*.manifest.json"):  # a user's folder has none
        made_by_the_mock.unlink()
    binary = next((spe1 / "Recordings" / "cell_a").glob("*npx_raw.bin"))
    with open(binary, "ab") as handle:
        handle.write(b"\0" * 3)
    config = dict(
        PAIRED_TINY,
        paired=dict(
            PAIRED_TINY["paired"], source="spe1", cells=["cell_a"],
            spe1={"recordings": str(spe1 / "Recordings"), "chan_map": str(spe1 / "chanMap.mat"),
                  "summary": str(spe1 / "Data Summary.xlsx")},
        ),
    )  # fmt: skip
    workdir = tmp_path / "run"
    run = snakemake(workdir, config)
    assert_job_failure(
        run, workdir, "results/paired/cell_a/conversion_metadata.json",
        "logs/paired/convert_cell_a.log", binary.name, "384",
    )  # fmt: skip
    folder = workdir / "results" / "paired" / "cell_a"
    assert not folder.exists() or list(folder.iterdir()) == []


# ------------------------------------------------------------------- a user's SPE-1 folder


@pytest.fixture(scope="module")
def spe1_root(tmp_path_factory) -> Path:
    """Two cells of 16 s in the SPE-1 layout (chanMap.mat, Data Summary.xlsx, Recordings/)."""
    from spikeforge.paired.mock import write_mock_spe1_cell

    root = tmp_path_factory.mktemp("spe1_user")
    for cell in ("c1", "c2"):
        write_mock_spe1_cell(root, cell, duration_s=16.0, seed=4)
    return root


def spe1_config(root: Path, cells: list[str], **paired) -> dict:
    spe1 = {
        "recordings": str(root / "Recordings"),
        "chan_map": str(root / "chanMap.mat"),
        "summary": str(root / "Data Summary.xlsx"),
    }
    return {"paired": {"enabled": True, "source": "spe1", "cells": cells, "spe1": spe1, **paired}}


def test_minimal_user_spe1_config(spe1_root, tmp_path):
    """A user's config alone: the documented skip of 10 s and 300 s window (cut at the end of
    the 16 s recording, with a warning on the console); adding a cell then plans that cell's
    job only."""
    workdir = tmp_path / "run"
    run = snakemake(workdir, spe1_config(spe1_root, ["c1"]))
    assert run.returncode == 0, succeeded(run)
    warning = one_line_with(run.stderr, "spikeforge: warning: convert_cell c1:", "past the end")
    assert "10 s + 300 s" in warning
    meta = json.loads((workdir / "results/paired/c1/conversion_metadata.json").read_text())
    assert meta["source_metadata"]["skip_seconds"] == 10.0
    assert meta["source_metadata"]["duration_s"] == pytest.approx(6.0)
    assert meta["preprocess"]["start_frame"] == 300_000
    assert meta["segment_duration_s"] == 3.0 and meta["train_fraction"] == 0.8
    dry = snakemake(workdir, spe1_config(spe1_root, ["c1", "c2"]), "-n")
    assert dry.returncode == 0, succeeded(dry)
    assert job_counts(dry.output) == {"convert_cell": 1, "qc_paired_cell": 1, "all": 1}
    assert planned_outputs(dry.output)["convert_cell"][0].startswith("results/paired/c2/")


def test_channel_map_that_is_not_one_stops_at_start_up(spe1_root, tmp_path):
    config = spe1_config(spe1_root, ["c1"])
    config["paired"]["spe1"]["chan_map"] = str(spe1_root / "Data Summary.xlsx")
    run = snakemake(tmp_path / "run", config)
    line = assert_startup_failure(
        run, tmp_path / "run", "config key paired.spe1.chan_map:", "Data Summary.xlsx",
        "not a readable MATLAB file",
    )  # fmt: skip
    assert line.startswith("spikeforge: error:")


def binary_recording(spe1_root: Path, tmp_path: Path) -> dict:
    """The mock cell's Neuropixels file as a raw binary recording with a probe file."""
    import probeinterface

    from spikeforge.paired.mock import mock_channel_map
    from spikeforge.paired.spe1 import probe_from_channel_map

    probe = tmp_path / "probe.json"
    probeinterface.write_probeinterface(probe, probe_from_channel_map(mock_channel_map()))
    return {
        "reader": "binary",
        "path": str(next((spe1_root / "Recordings" / "c1").glob("*npx_raw.bin"))),
        "probe": str(probe),
        "binary": {"sampling_frequency": 30_000.0, "num_channels": 384, "dtype": "int16",
                   "gain_to_uV": NPX_GAIN_UV},
    }  # fmt: skip


def recordings_config(recording: dict) -> dict:
    return {
        "paired": {
            "enabled": True, "source": "recordings", "cells": ["r1"],
            "recordings": {"r1": recording}, "window": {"skip_s": 1.0, "duration_s": 4.0},
            "segment_s": 1.0, "bad_channels": {"method": None},
        }
    }  # fmt: skip


def test_recording_without_spike_times_goes_through_peak_detection(spe1_root, tmp_path):
    """No ground truth: the traces are saved preprocessed, peaks detected on them, then
    converted; the Arrow rows carry every detected spike, on the template's peak channel."""
    import datasets

    workdir = tmp_path / "run"
    run = snakemake(workdir, recordings_config(binary_recording(spe1_root, tmp_path)))
    assert run.returncode == 0, succeeded(run)
    out = workdir / "results" / "paired" / "r1"
    meta = json.loads((out / "conversion_metadata.json").read_text())
    source = meta["source_metadata"]["spike_source"]
    assert source.startswith("spikeinterface peak detection (channel ")
    assert meta["n_spikes_total"] > 10
    peak = meta["unit_peak_channel"]["0"]
    found = 0
    for split in ("train", "test"):
        rows = datasets.load_from_disk(str(out / split))
        for ctt in rows["ctt"]:
            found += len(ctt[peak])
            assert all(len(c) == 0 for i, c in enumerate(ctt) if i != peak)
    assert found == meta["n_spikes_total"]
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_binary_recording_with_probe_file(spe1_root, tmp_path):
    """reader: binary with the reader's settings from the config: the traces of the Arrow rows
    are SpikeInterface's own lazy chain on the same file (no `connected` property: the
    median runs over every channel)."""
    import datasets
    import probeinterface
    import spikeinterface.extractors as se
    import spikeinterface.preprocessing as spre

    recording = binary_recording(spe1_root, tmp_path)
    binary, probe = recording["path"], recording["probe"]
    spikes = np.arange(40_000, 150_000, 7_000)
    np.save(tmp_path / "gt.npy", spikes)
    config = recordings_config(dict(recording, spike_times=str(tmp_path / "gt.npy")))
    workdir = tmp_path / "run"
    run = snakemake(workdir, config)
    assert run.returncode == 0, succeeded(run)
    out = workdir / "results" / "paired" / "r1"
    meta = json.loads((out / "conversion_metadata.json").read_text())
    assert meta["source_metadata"]["mode"] == "binary"
    assert meta["source_metadata"]["spike_source"] == "gt.npy (ground truth)"
    assert meta["n_spikes_total"] == int(((spikes >= 30_000) & (spikes < 150_000)).sum())
    assert meta["unconnected_channel_ids"] == [] and meta["bad_channel_ids"] == []
    lazy = se.read_binary(
        binary, sampling_frequency=30_000.0, num_channels=384, dtype="int16",
        gain_to_uV=NPX_GAIN_UV, offset_to_uV=0.0,
    )  # fmt: skip
    lazy.set_probegroup(probeinterface.read_probeinterface(probe))  # in place
    lazy = spre.bandpass_filter(lazy, freq_min=300.0, freq_max=3000.0).frame_slice(30_000, 150_000)
    lazy = spre.common_reference(lazy, reference="global", operator="median")
    train = datasets.load_from_disk(str(out / "train"))
    assert len(train) == 3
    row = np.asarray(train[1]["cp"], dtype=np.float32)
    np.testing.assert_array_equal(row, lazy.get_traces(start_frame=30_000, end_frame=60_000).T)

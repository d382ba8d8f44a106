"""The spike-train exports in the workflow: the paired chain's cells and a user's files, one job
per (item, format), rebuilt only where missing, bad input stopped with one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from workflow_run import (
    assert_job_failure,
    assert_startup_failure,
    job_counts,
    output_names,
    planned_outputs,
    sha256_tree,
    snakemake,
    succeeded,
)

from spikeforge.spiketrains.formats import FORMATS, output_name, read_spiketrains
from spikeforge.spiketrains.model import SpikeTrains
from spikeforge.spiketrains.sources import from_paired_cell

pytestmark = pytest.mark.workflow

CELLS = ["cell_a"]
CELLS_AND_EXPORTS = {
    "paired": {
        "enabled": True, "source": "mock", "cells": CELLS,
        "mock": {"duration_s": 8.0}, "window": {"skip_s": 1.0, "duration_s": 6.0},
        "bad_channels": {"method": "coherence+psd", "num_random_chunks": 5},
    },
    "spiketrains": {"enabled": True, "nwb": {"species": "Rattus norvegicus"}},
}  # fmt: skip


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("spiketrains") / "run"
    run = snakemake(workdir, CELLS_AND_EXPORTS)
    assert run.returncode == 0, succeeded(run)
    return workdir


def test_every_format_holds_the_cells_ground_truth_unit(exports):
    cell = exports / "results" / "paired" / "cell_a"
    expected = from_paired_cell(cell)
    assert expected.n_spikes > 50
    folder = exports / "results" / "spiketrains" / "paired" / "cell_a"
    assert output_names(folder) == sorted(output_name(f) for f in FORMATS)
    samples = expected.times_in("samples")
    for fmt in FORMATS:
        loaded = read_spiketrains(folder / output_name(fmt))
        assert loaded.unit_ids.tolist() == [0], fmt
        # The raster keeps each spike's 1 ms bin (30 samples): its start comes back.
        want = samples // 30 * 30 if fmt == "hdf5_raster" else samples
        assert np.array_equal(loaded.times_in("samples"), want), fmt
        assert loaded.start_time == pytest.approx(1.0), fmt
    nwb = read_spiketrains(folder / "units.nwb")
    assert nwb.unit_properties["peak_channel"].tolist() == (
        expected.unit_properties["peak_channel"].tolist()
    )
    assert (exports / "logs" / "spiketrains" / "paired" / "cell_a" / "nwb.log").is_file()


def test_deleted_export_rebuilds_alone_and_identically(exports):
    folder = exports / "results" / "spiketrains"
    before = sha256_tree(folder)
    shutil.rmtree(folder / "paired" / "cell_a" / "phy")
    (folder / "paired" / "cell_a" / "units.nwb").unlink()
    dry = snakemake(exports, CELLS_AND_EXPORTS, "-n")
    assert dry.returncode == 0, succeeded(dry)
    assert job_counts(dry.output) == {"export_phy": 1, "export_nwb": 1, "all": 1}
    assert planned_outputs(dry.output)["export_phy"] == ["results/spiketrains/paired/cell_a/phy"]
    run = snakemake(exports, CELLS_AND_EXPORTS)
    assert run.returncode == 0, succeeded(run)
    assert sha256_tree(folder) == before


def _spikelab_style_file(path: Path) -> SpikeTrains:
    """A ragged HDF5 file as spikelab writes it in samples (which does not store the rate)."""
    import h5py

    trains = SpikeTrains.from_trains(
        [[10, 400, 9_000], [], [25]], sampling_frequency=20_000.0, duration=1.0
    )
    with h5py.File(path, "w") as handle:
        handle.attrs["start_time"] = 0.0
        handle["spike_times"] = trains.times
        handle["spike_times_index"] = trains.index
    return trains


def test_user_file_alone_exports_without_other_chains(tmp_path):
    source = tmp_path / "sorted.h5"
    expected = _spikelab_style_file(source)
    config = {
        "spiketrains": {
            "enabled": True,
            "sources": {
                "paired": False,
                "files": {
                    "mine": {
                        "path": str(source),
                        "sampling_frequency": 20_000.0,
                        "time_unit": "samples",
                    }
                },
            },
            "formats": ["hdf5_paired", "phy"],
            "time_unit": "samples",
        }
    }
    run = snakemake(tmp_path / "run", config)
    assert run.returncode == 0, succeeded(run)
    assert job_counts(run.output) == {
        "export_hdf5_paired": 1, "export_phy": 1, "qc_spiketrains_item": 1, "all": 1,
    }  # fmt: skip
    assert (tmp_path / "run" / "results" / "qc" / "spiketrains" / "files" / "mine.png").is_file()
    out = tmp_path / "run" / "results" / "spiketrains" / "files" / "mine"
    for name in ("paired.h5", "phy"):
        loaded = read_spiketrains(out / name)
        assert loaded.unit_ids.tolist() == [0, 1, 2]
        assert np.array_equal(loaded.times_in("samples"), expected.times)
        assert loaded.sampling_frequency == 20_000.0


def test_missing_user_file_stops_at_start_up(tmp_path):
    config = {
        "spiketrains": {
            "enabled": True,
            "sources": {"files": {"mine": {"path": str(tmp_path / "nope.nwb")}}},
        }
    }
    workdir = tmp_path / "run"
    run = snakemake(workdir, config, "-n")
    assert_startup_failure(
        run, workdir, "spiketrains.sources.files.mine.path", "nope.nwb does not exist"
    )


def test_out_of_order_file_fails_in_its_job_with_one_line(tmp_path):
    import h5py

    source = tmp_path / "sorted.h5"
    _spikelab_style_file(source)
    with h5py.File(source, "r+") as handle:
        handle["spike_times"][...] = -handle["spike_times"][()]
    config = {
        "spiketrains": {
            "enabled": True,
            "sources": {"files": {"mine": {"path": str(source)}}},
            "formats": ["mat"],
            "time_unit": "samples",
        }
    }
    workdir = tmp_path / "run"
    run = snakemake(workdir, config)
    assert_job_failure(
        run,
        workdir,
        "results/spiketrains/files/mine/units.mat",
        "logs/spiketrains/files/mine/mat.log",
        "sorted.h5",
        "out of order",
    )

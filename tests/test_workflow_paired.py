"""The paired-recording chain in the workflow: mock SPE-1 cells -> per-cell Arrow datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_workflow import (
    assert_job_failure,
    job_counts,
    planned_outputs,
    sha256_tree,
    snakemake,
    succeeded,
)

pytestmark = pytest.mark.slow

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


def test_deleted_cell_rebuilds_that_cell_only(paired_build):
    results = paired_build / "results"
    before = sha256_tree(results / "paired")
    shutil.rmtree(results / "paired" / "cell_b")
    dry = snakemake(paired_build, PAIRED_TINY, "-n")
    assert dry.returncode == 0, succeeded(dry)
    counts = job_counts(dry.output)
    assert counts == {"convert_cell": 1, "all": 1}
    assert planned_outputs(dry.output)["convert_cell"][0].startswith("results/paired/cell_b/")
    run = snakemake(paired_build, PAIRED_TINY)
    assert run.returncode == 0, succeeded(run)
    assert sha256_tree(results / "paired") == before


def test_bad_binary_size_is_a_clear_error(paired_build, tmp_path):
    spe1 = tmp_path / "spe1"
    shutil.copytree(paired_build / "resources" / "demo" / "spe1", spe1)
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

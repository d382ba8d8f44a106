"""The QC figures and the Snakemake report of a small run of every chain with figures: every
figure is made from the run's own outputs and registered with its caption; the report opens
in a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from workflow_run import snakemake, succeeded

from spikeforge.qc.eeg import snr_figure

pytestmark = pytest.mark.workflow

CONFIG = {
    "seed": 9,
    "eeg": {
        "enabled": True,
        "anatomy": {"source": "demo", "demo": {"n_regions": 24, "n_channels": 16}},
        "spike_library": {"source": "raw"},
        "raw": {"source": "mock", "regions": [2, 9, 17], "iterations": [0],
                "mock": {"duration_s": 8.0, "chunk_s": 4.0}},
        "plan": {"n_sources": 1, "sensor_snrs_db": [5, 15]},
        "splits": {"train": {"samples_per_region": 6}},
        "synthesis": {"samples_per_shard": 12},
        "export": {"mat": {"enabled": False}},
    },
    "paired": {
        "enabled": True, "source": "mock", "cells": ["cell_a"],
        "mock": {"duration_s": 8.0}, "window": {"skip_s": 1.0, "duration_s": 6.0},
    },
    "spiketrains": {"enabled": True, "formats": ["hdf5_ragged"]},
    "cortical": {
        "enabled": True, "sheets": ["V1_Exc_L4"],
        "mock": {"neurons": {"V1_Exc_L4": 20}, "images": 3, "train_parts": 1, "test_parts": 0},
    },
}  # fmt: skip
FIGURES = ["eeg/train_samples.png", "eeg/train_snr.png", "eeg/train_plan.png",
           "eeg/spike_library.png", "paired/cell_a.png",
           "spiketrains/paired/cell_a.png", "cortical/train/V1_Exc_L4.png"]  # fmt: skip
CAPTIONS = Path(__file__).resolve().parents[1] / "workflow" / "report"


@pytest.fixture(scope="module")
def report_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("report") / "run"
    run = snakemake(workdir, CONFIG)
    assert run.returncode == 0, succeeded(run)
    report = snakemake(workdir, CONFIG, "--report", str(workdir / "report.html"))
    assert report.returncode == 0, succeeded(report)
    return workdir


def test_figures_are_made_and_registered_with_their_captions(report_run):
    for name in FIGURES:
        figure = report_run / "results" / "qc" / name
        assert figure.stat().st_size > 5_000, name
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (report_run / "report.html").read_text()
    for caption in sorted(CAPTIONS.glob("*.rst")):
        if caption.name == "workflow.rst":
            continue
        # the caption's advice, as the report embeds it (lines joined by an escaped newline)
        advice = caption.read_text().split("What to look for:")[1].split()[:6]
        assert re.search(r"(\s|\\n)+".join(map(re.escape, advice)), html), caption.name
    for name in FIGURES:
        assert name.replace("/", "_") in html or Path(name).name in html


def test_the_snr_figure_reads_the_shards(report_run, tmp_path):
    """The SNR figure's numbers are the shards' own: one sample's SNR changed in a copy of
    the split changes them."""
    split = report_run / "results" / "train" / "hdf5"
    copy = tmp_path / "hdf5"
    shutil.copytree(split, copy)
    before = snr_figure(copy / "index.json", [5, 15], tmp_path / "before.png")
    assert before["levels"] == [5.0, 15.0] and sum(before["counts"]) == 18
    with h5py.File(sorted(copy.glob("shard_*.h5"))[0], "r+") as shard:
        shard["snr"][0] = 30.0
    after = snr_figure(copy / "index.json", [5, 15], tmp_path / "after.png")
    assert after["levels"] == [5.0, 15.0, 30.0] and after["counts"][-1] == 1
    assert sum(after["counts"]) == 18


def test_a_rebuilt_figure_is_byte_identical(report_run):
    figure = report_run / "results" / "qc" / "eeg" / "train_snr.png"
    before = figure.read_bytes()
    figure.unlink()
    run = snakemake(report_run, CONFIG)
    assert run.returncode == 0, succeeded(run)
    assert figure.read_bytes() == before


def test_headless_chromium_renders_the_report(report_run, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium not installed (Debian: apt-get install chromium; CI installs it)")
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1400,1000", "--virtual-time-budget=10000",
         f"--screenshot={shot}", (report_run / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1000, 1400)
    # a rendered page, not a blank one: many distinct colours and some dark text
    assert np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0).shape[0] > 50
    assert (pixels[..., :3].mean(axis=-1) < 0.3).mean() > 0.001
    shutil.copy(shot, report_run / "report_screenshot.png")

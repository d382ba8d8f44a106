"""How much a config writes, estimated at start-up from the config and file headers, so that a
config whose defaults would write hundreds of GB is stopped before its first job.

Exact where the layout fixes the size (raw recordings, shards, MAT files, Arrow rows); an
assumption where it depends on the data: extracted clips are counted at one per
SECONDS_PER_CLIP seconds of raw recording (the mock recordings' rate; real simulations give
fewer) and a source patch at PATCH_REGIONS regions.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spikeforge.eeg.clips import CLIP_SAMPLES
from spikeforge.eeg.raw import FSAVERAGE_RAW_REGIONS, RAW_FS
from spikeforge.paired.spe1 import NPX_CHANNELS, NPX_SAMPLING_HZ, check_npx_binary, find_cell_files
from spikeforge.workflow.layout import (
    CorticalLayout,
    EEGLayout,
    PairedLayout,
    SessionsLayout,
    SpikeTrainsLayout,
)

SECONDS_PER_CLIP = 2.0
PATCH_REGIONS = 20
PATCH_WIDTH = 70
FLOAT32, FLOAT64, INT32 = 4, 8, 4


def eeg_bytes(eeg: EEGLayout) -> dict[str, int]:
    """Estimated bytes per kind of output of the EEG chain."""
    n_regions, n_channels = eeg.n_regions, eeg.n_channels
    sizes: dict[str, int] = {}
    n_clips = _clip_count(eeg, sizes, n_regions)
    if eeg.clip_source != "folder":
        sizes["clips"] = n_clips * CLIP_SAMPLES * n_regions * FLOAT32
    clip_bytes = CLIP_SAMPLES * (n_regions * FLOAT32 + n_channels * FLOAT64 + FLOAT64)
    sizes["spike library"] = n_clips * clip_bytes
    n_sources = eeg.plan_cfg["n_sources"]
    per_sample_plan = n_sources * PATCH_WIDTH * (INT32 + FLOAT64) + n_sources * 64
    per_sample_shard = CLIP_SAMPLES * n_channels * FLOAT32 + n_sources * PATCH_WIDTH * INT32
    per_sample_shard += n_sources * PATCH_REGIONS * (CLIP_SAMPLES * FLOAT32 + INT32)
    per_sample_mat = CLIP_SAMPLES * (n_channels + n_regions) * FLOAT32
    imported = eeg.plan_cfg["source"] == "deepsif"
    for split in eeg.splits:
        start, stop = eeg.split_range(split)
        planned = (stop - start) + (eeg.split_size(split) if imported else 0)
        sizes["plans"] = sizes.get("plans", 0) + planned * per_sample_plan
        sizes["hdf5 shards"] = sizes.get("hdf5 shards", 0) + (stop - start) * per_sample_shard
        if split in eeg.mat_splits():
            sizes["mat samples"] = sizes.get("mat samples", 0) + (stop - start) * per_sample_mat
        if eeg.cfg["export"]["deepsif"]["enabled"]:
            # the clip file once (the splits' names are hard links), the metadata per split
            sizes["deepsif"] = sizes.get("deepsif", n_clips * CLIP_SAMPLES * n_regions * FLOAT32)
            sizes["deepsif"] += (stop - start) * n_sources * PATCH_WIDTH * 2 * FLOAT64
    return sizes


def _clip_count(eeg: EEGLayout, sizes: dict[str, int], n_regions: int) -> int:
    """Clips of the spike library; adds the raw recordings the run writes to `sizes`."""
    source = eeg.clip_source
    if source == "mock":
        return n_regions * int(eeg.cfg["spike_library"]["mock_clips_per_region"])
    if source == "folder":
        return n_regions * 10  # an existing folder: only the library's copy is written
    raw = eeg.raw_cfg
    recordings = len(eeg.raw_regions()) * len(raw["iterations"])
    width = FSAVERAGE_RAW_REGIONS if eeg.cfg["preprocessing"]["fsaverage_remap"] else n_regions
    if raw["source"] == "mock":
        seconds = raw["mock"]["duration_s"]
    elif raw["source"] == "tvb":
        seconds = raw["tvb"]["duration_s"]
    elif raw["source"] == "simulate":
        seconds = raw["simulate"]["duration_s"]
    else:
        seconds = raw["tvb"]["duration_s"]  # a folder of recordings: assume DeepSIF's length
    if raw["source"] in ("mock", "tvb") or (
        raw["source"] == "simulate" and raw["simulate"]["write_raw"]
    ):
        sizes["raw recordings"] = int(recordings * seconds * RAW_FS * width * FLOAT32)
    elif raw["source"] == "simulate":
        # the 500 Hz rows a job keeps until its regions' clips are extracted
        runs = int(raw["simulate"]["regions_per_job"]) * len(raw["iterations"])
        sizes["simulation scratch"] = int(runs * seconds * RAW_FS / 4 * width * FLOAT32)
    return int(recordings * seconds / SECONDS_PER_CLIP)


def paired_bytes(paired: PairedLayout) -> dict[str, int]:
    """Estimated bytes of the paired chain: float32 Arrow rows of the analysis window, and the
    mock recordings when the chain generates them."""
    cfg = paired.cfg
    window = cfg["window"]
    sizes: dict[str, int] = {}
    total = 0
    for cell in paired.cells:
        seconds = _recording_seconds(paired, cell)
        if seconds is None:
            seconds = window["duration_s"] or 0.0
        available = max(0.0, seconds - window["skip_s"])
        used = available if window["duration_s"] is None else min(available, window["duration_s"])
        total += int(used * NPX_SAMPLING_HZ) * _channels(paired, cell) * FLOAT32
    sizes["arrow datasets"] = total
    if paired.source == "mock":
        seconds = cfg["mock"]["duration_s"]
        per_cell = seconds * (NPX_SAMPLING_HZ * NPX_CHANNELS * 2 + 50_024 * FLOAT64)
        sizes["mock recordings"] = int(len(paired.cells) * per_cell)
    return sizes


def _recording_seconds(paired: PairedLayout, cell: str) -> float | None:
    if paired.source == "mock":
        return float(paired.cfg["mock"]["duration_s"])
    if paired.source == "spe1":
        try:
            files = find_cell_files(Path(paired.spe1_paths()["recordings"]) / cell)
            return check_npx_binary(files.npx_raw) / NPX_SAMPLING_HZ
        except Exception:  # the start-up checks report unreadable cells
            return None
    return None


def _channels(paired: PairedLayout, cell: str) -> int:
    if paired.source == "recordings":
        binary = paired.cfg["recordings"][cell].get("binary") or {}
        return int(binary.get("num_channels") or NPX_CHANNELS)
    return NPX_CHANNELS


def spiketrain_bytes(layout: SpikeTrainsLayout) -> dict[str, int]:
    """Estimated bytes of the exports: a paired cell's unit carries its template (384 channels,
    ~90 samples, float32) into most formats and a raster of its window; a named file is
    counted once per format at its own size."""
    total = 0
    formats = layout.formats
    for source, item in layout.items():
        if source == "paired" and layout.paired is not None:
            seconds = _recording_seconds(layout.paired, item) or 0.0
            per_format = NPX_CHANNELS * 90 * FLOAT32 * 2
            raster = int(seconds * 1000.0 / layout.cfg["raster_bin_ms"])
            total += per_format * len(formats) + (raster if "hdf5_raster" in formats else 0)
        elif source == "sessions" and layout.sessions is not None:
            units, spikes = session_units_and_spikes(layout.sessions.cfg)
            seconds = float(layout.sessions.cfg["duration_s"])
            raster = int(units * seconds * 1000.0 / layout.cfg["raster_bin_ms"])
            per_format = spikes * 8 + units * 64 * FLOAT32 * 2
            total += per_format * len(formats) + (raster if "hdf5_raster" in formats else 0)
        else:
            target = Path(layout.cfg["sources"]["files"][item]["path"])
            files = [target] if target.is_file() else list(target.glob("*"))
            total += sum(f.stat().st_size for f in files if f.is_file()) * len(formats)
    return {"spike trains": total}


def session_units_and_spikes(cfg: Mapping[str, Any]) -> tuple[float, float]:
    """Expected units and spikes of one mock session (the mean of the lognormal rates)."""
    low, high = cfg["units_per_channel"]
    units = len(cfg["regions"]) * cfg["channels_per_region"] * (low + high) / 2
    mean_rate = cfg["rate_median_hz"] * math.exp(cfg["rate_sigma"] ** 2 / 2)
    return units, units * mean_rate * float(cfg["duration_s"])


def session_bytes(layout: SessionsLayout) -> dict[str, int]:
    """Estimated bytes of the sessions: per spike its time and 64 float32 samples, the LFP
    channels (float64 times, float32 samples), one watchlog line per frame."""
    cfg = layout.cfg
    _, spikes = session_units_and_spikes(cfg)
    lfp = len(cfg["lfp"]["channels"]) * float(cfg["duration_s"]) * 1000 * 12
    logs = cfg["movie"]["duration_s"] * 25 * 40
    per_session = spikes * (8 + 64 * FLOAT32) + lfp + logs
    return {"sessions": int(per_session * len(layout.sessions()))}


def cortical_bytes(layout: CorticalLayout) -> dict[str, int]:
    """Estimated bytes of the cortical exports: 5 bytes a non-zero bin (int32 column, uint8
    count) at 5 spikes a second a neuron over 0.712 s a presentation and 100 images a part
    (the mock's own sizes with the mock); the datastores the mock writes are counted too."""
    cfg = layout.cfg
    total = mock = 0
    images = cfg["mock"]["images"] if layout.source == "mock" else (cfg["images"] or 100)
    seconds = (
        (cfg["mock"]["blank_ms"] + cfg["mock"]["image_ms"]) / 1000
        if layout.source == "mock"
        else 0.712
    )
    for variant, parts in layout.parts.items():
        trials = layout.trials(variant) or 1
        for sheet in layout.sheet_folders():
            spikes = layout.neurons(sheet) * images * seconds * 5.0 * trials
            total += int(len(parts) * spikes * 5 * (2 if cfg["windows"]["enabled"] else 1))
            if layout.source == "mock":
                mock += int(
                    len(parts) * (spikes * 8 + layout.neurons(sheet) * images * trials * 2 * 250)
                )
    return {"spike tensors": total, "mock datastores": mock}


def folder_bytes(folder: str | Path) -> int:
    """Bytes of the files under `folder` (0 when it does not exist): links are not followed,
    and a file with several names (DeepSIF's hard-linked clip file) counts once."""
    seen: dict[tuple[int, int], int] = {}
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # removed meanwhile
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())


def free_bytes(folder: str | Path) -> int:
    """Free bytes of the disk `folder` is (or will be) on."""
    probe = Path(folder).absolute()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def gigabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.0f} MB"

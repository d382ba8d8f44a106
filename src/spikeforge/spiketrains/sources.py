"""Spike trains from what spikeforge and the field's tools already hold: the paired chain's
per-cell outputs and any SpikeInterface sorting (read_phy, read_kilosort, read_nwb_sorting,
NumpySorting, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from spikeforge.core.errors import InputError
from spikeforge.spiketrains.model import SpikeTrains


def from_sorting(sorting: Any, segment_index: int = 0) -> SpikeTrains:
    """One segment of a SpikeInterface sorting; its unit properties come along."""
    ids = np.asarray(sorting.unit_ids)
    trains = [
        np.asarray(sorting.get_unit_spike_train(u, segment_index=segment_index), np.int64)
        for u in ids
    ]
    properties = {}
    for key in sorting.get_property_keys():
        values = np.asarray(sorting.get_property(key))
        if values.shape[:1] == ids.shape and values.dtype.kind in "iufbU":
            properties[key] = values
    segment = sorting.segments[segment_index] if hasattr(sorting, "segments") else None
    start = getattr(segment, "_t_start", None) or 0.0
    duration = None
    if sorting.has_recording():
        duration = sorting.get_num_samples(segment_index) / sorting.sampling_frequency
    return SpikeTrains.from_trains(
        trains,
        unit_ids=ids if ids.dtype.kind in "iuU" else ids.astype(str),
        sampling_frequency=sorting.sampling_frequency,
        start_time=start,
        duration=duration,
        unit_properties=properties,
    )


def to_sorting(trains: SpikeTrains) -> Any:
    """A SpikeInterface NumpySorting of the trains (samples from the recording's start)."""
    from spikeinterface.core import NumpySorting

    if trains.sampling_frequency is None:
        raise ValueError("a SpikeInterface sorting needs a sampling rate")
    samples = trains.times_in("samples")
    starts = trains.starts()
    units = {
        unit_id: samples[int(starts[i]) : int(trains.index[i])]
        for i, unit_id in enumerate(trains.unit_ids.tolist())
    }
    return NumpySorting.from_unit_dict([units], sampling_frequency=trains.sampling_frequency)


def _segment_spikes(split: Path, fs: float) -> tuple[list[np.ndarray], list[int]]:
    """Spike frames (from the window start) and segment starts of one split's Arrow files,
    reading only the sample_id and spike-time columns (the traces stay on disk, mapped)."""
    spikes, starts = [], []
    for arrow in sorted(split.glob("data-*.arrow")):
        with pa.memory_map(str(arrow)) as source:
            reader = pa.ipc.open_stream(source)
            for batch in reader:
                ids = batch.column("sample_id").to_pylist()
                ctt = batch.column("ctt")
                for row, sample_id in enumerate(ids):
                    s0 = int(sample_id)
                    ms = np.asarray(ctt[row].values.flatten(), dtype=np.float64)
                    spikes.append(s0 + np.rint(ms * fs / 1000.0).astype(np.int64))
                    starts.append(s0)
                del batch, ctt
    return spikes, starts


def from_paired_cell(folder: str | Path) -> SpikeTrains:
    """The ground-truth unit of one converted cell (results/paired/<cell>/): its spikes in the
    train and test segments, its template, peak channel and location, the probe layout."""
    folder = Path(folder)
    meta_path = folder / "conversion_metadata.json"
    if not meta_path.is_file():
        raise InputError(folder, "not a converted cell (conversion_metadata.json is missing)")
    meta = json.loads(meta_path.read_text())
    fs = float(meta["sampling_frequency"])
    spikes, starts = [], []
    for split in ("train", "test"):
        if (folder / split).is_dir():
            more_spikes, more_starts = _segment_spikes(folder / split, fs)
            spikes += more_spikes
            starts += more_starts
    if not starts:
        raise InputError(folder, "has no train/ or test/ segments")
    frames = np.unique(np.concatenate(spikes))
    segment = int(round(float(meta["segment_duration_s"]) * fs))
    templates = np.load(folder / "templates.npz")
    unit = sorted(meta["unit_peak_channel"], key=int)[0]
    start_frame = (
        int(meta["preprocess"]["start_frame"])
        if "preprocess" in meta
        else int(round(float(meta["source_metadata"]["skip_seconds"]) * fs))
    )
    return SpikeTrains.from_trains(
        [frames],
        unit_ids=[int(unit)],
        sampling_frequency=fs,
        start_time=start_frame / fs,
        duration=(max(starts) + segment) / fs,
        unit_properties={
            "peak_channel": np.array([int(meta["unit_peak_channel"][unit])]),
            "location": np.array([meta["unit_locations_um"][unit]], dtype=np.float64),
            "waveform_mean": templates["templates"][:1].astype(np.float32),
            "quality": np.array(["good"]),
        },
        recording_properties={
            "channel_positions": templates["probe_positions"].astype(np.float64),
            "channel_ids": np.arange(int(meta["num_channels"])),
            "bad_channel_ids": np.asarray(meta["bad_channel_ids"], dtype=np.int64),
            "waveform_unit": "raw recording units",
        },
    )

"""What a converted cell says about itself: conversion_metadata.json (every key the original
SPE-1 conversion writes, plus spikeforge's own) and templates.npz."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.files import atomic_path
from spikeforge.core.provenance import jsonable
from spikeforge.paired.spe1 import SPE1_DATASET, SPE1_MODE
from spikeforge.paired.streaming import PREPROCESSING_LABEL


def conversion_metadata(
    *,
    cell_id: str,
    skip_seconds: float,
    duration_s: float,
    patch_sample_rate_hz: float | None,
    spike_source: str,
    template_metadata: Mapping[str, Any],
    sampling_frequency: float,
    num_channels: int,
    peak_channel: int,
    gt_electrode_chan_idx: int | None,
    channel_locations: np.ndarray,
    bad_channel_ids: Sequence[int],
    n_spikes_total: int,
    segment_duration_s: float,
    train_fraction: float,
    mode: str = SPE1_MODE,
    dataset: str = SPE1_DATASET,
    preprocessing: str = PREPROCESSING_LABEL,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """conversion_metadata.json content: every key the original conversion writes, same
    meaning; `extra` adds keys (it may not replace one).

    unit_locations_um is {"0": [x, y, 0.0]} of gt_electrode_chan_idx when that index is a
    channel, else None.
    """
    unit_xy = None
    if gt_electrode_chan_idx is not None and 0 <= gt_electrode_chan_idx < len(channel_locations):
        x, y = (float(v) for v in np.asarray(channel_locations)[gt_electrode_chan_idx][:2])
        unit_xy = [x, y, 0.0]
    metadata: dict[str, Any] = {
        "source_metadata": {
            "mode": mode,
            "dataset": dataset,
            "cell_id": cell_id,
            "skip_seconds": float(skip_seconds),
            "duration_s": float(duration_s),
            "patch_sample_rate_hz": (
                None if patch_sample_rate_hz is None else float(patch_sample_rate_hz)
            ),
            "preprocessing": preprocessing,
            "spike_source": spike_source,
        },
        "template_metadata": dict(template_metadata),
        "sampling_frequency": float(sampling_frequency),
        "num_units": 1,
        "num_channels": int(num_channels),
        "unit_peak_channel": {"0": int(peak_channel)},
        "unit_locations_um": {"0": unit_xy} if unit_xy is not None else None,
        "gt_electrode_chan_idx": gt_electrode_chan_idx,
        "bad_channel_ids": [int(c) for c in bad_channel_ids],
        "n_spikes_total": int(n_spikes_total),
        "n_spikes_used_for_templates": int(template_metadata["n_spikes_used"]),
        "segment_duration_s": float(segment_duration_s),
        "train_fraction": float(train_fraction),
    }
    for key, value in (extra or {}).items():
        if key in metadata:
            raise ValueError(f"extra metadata key {key!r} would replace a standard key")
        metadata[key] = value
    return jsonable(metadata)


def write_templates_npz(
    path: str | Path,
    templates: np.ndarray,
    fs: float,
    probe_positions: np.ndarray,
    nbefore: int,
    nafter: int,
) -> None:
    """templates.npz (templates [1, T, C], sampling_frequency, probe_positions [C, 2], nbefore,
    nafter), written atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(
            tmp,
            templates=np.asarray(templates, dtype=np.float32),
            sampling_frequency=float(fs),
            probe_positions=np.asarray(probe_positions, dtype=np.float32),
            nbefore=int(nbefore),
            nafter=int(nafter),
        )

"""The convert_cell job: one configured cell from its inputs to its outputs
(train/, test/, dataset_dict.json, conversion_metadata.json, templates.npz)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import spikeinterface.core as sc

from spikeforge.core.provenance import write_json
from spikeforge.paired import spe1, truth
from spikeforge.paired.arrow import plan_segments
from spikeforge.paired.convert import Conversion, convert
from spikeforge.paired.metadata import conversion_metadata, write_templates_npz
from spikeforge.paired.recordings import analysis_window, load_spike_samples, open_recording
from spikeforge.paired.streaming import preprocess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spe1Source:
    """A cell of the SPE-1 layout: <recordings>/<cell>/, the channel map and the summary."""

    recordings: str
    chan_map: str
    summary: str | None = None
    reference_channels: list[int] | None = None


@dataclass(frozen=True)
class RecordingSource:
    """A recording SpikeInterface reads, with optional ground-truth spike times; `binary`
    holds the raw binary reader's settings (sampling_frequency, num_channels, dtype,
    gain_to_uV, offset_to_uV)."""

    reader: str
    path: str
    stream_id: str | None = None
    probe: str | None = None
    spike_times: str | None = None
    spike_times_units: str = "samples"
    binary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CellSettings:
    """Everything the job needs of the config for one cell (and nothing of the others)."""

    cell: str
    skip_s: float
    duration_s: float | None
    segment_s: float
    train_fraction: float
    ms_before: float
    ms_after: float
    min_spikes: int
    bad_channels: dict[str, Any]
    detect_threshold: float
    peak_detection_seed: int
    spe1: Spe1Source | None = None
    recording: RecordingSource | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CellSettings:
        values = dict(values)
        if values.get("spe1") is not None:
            values["spe1"] = Spe1Source(**values["spe1"])
        if values.get("recording") is not None:
            values["recording"] = RecordingSource(**values["recording"])
        return cls(**values)


@dataclass(frozen=True)
class _Opened:
    """A cell's recording, window, ground-truth spikes (None: detect peaks) and what the
    metadata says of its source."""

    recording: sc.BaseRecording
    start: int
    end: int
    spikes: np.ndarray | None
    spike_source: str
    mode: str
    patch_rate_hz: float | None = None
    gt_channel: int | None = None


def _open_spe1(settings: CellSettings) -> _Opened:
    source = settings.spe1
    assert source is not None
    files = spe1.find_cell_files(Path(source.recordings) / settings.cell)
    n_npx = spe1.check_npx_binary(files.npx_raw)
    channel_map = spe1.read_channel_map(source.chan_map, source.reference_channels)
    row = None
    if source.summary and Path(source.summary).is_file():
        row = spe1.summary_row(spe1.read_summary(source.summary), settings.cell)
    rate = spe1.patch_rate(row)
    recording = spe1.open_spe1_recording(files.npx_raw, channel_map)
    fs = recording.get_sampling_frequency()
    start, end = analysis_window(n_npx, fs, settings.skip_s, settings.duration_s)
    gt = truth.ground_truth_spikes(files, n_npx, rate, start, end)
    return _Opened(
        recording, start, end, gt.spike_rel, gt.spike_source, spe1.SPE1_MODE,
        patch_rate_hz=rate, gt_channel=spe1.summary_channel(row),
    )  # fmt: skip


def _open_recording(settings: CellSettings) -> _Opened:
    spec = settings.recording
    assert spec is not None
    recording = open_recording(
        spec.reader, spec.path, spec.stream_id, probe_path=spec.probe, **spec.binary
    )
    fs = recording.get_sampling_frequency()
    start, end = analysis_window(
        recording.get_num_samples(0), fs, settings.skip_s, settings.duration_s
    )
    if not spec.spike_times:
        return _Opened(recording, start, end, None, "", spec.reader)
    absolute = load_spike_samples(spec.spike_times, fs, units=spec.spike_times_units)
    spikes = absolute[(absolute >= start) & (absolute < end)] - start
    source = f"{Path(spec.spike_times).name} (ground truth)"
    return _Opened(recording, start, end, spikes, source, spec.reader)


def _convert_detecting_peaks(
    opened: _Opened, settings: CellSettings, out_dir: Path, options: dict[str, Any], threads: int
) -> tuple[Conversion, np.ndarray, str]:
    """No spike times: peaks are detected on the preprocessed traces, so those are saved
    (beside the outputs, removed afterwards) and converted without filtering again."""
    recording = opened.recording
    # Refuse a window too short for the train/test split before the preprocessing pass.
    plan_segments(
        opened.end - opened.start, recording.get_sampling_frequency(), settings.segment_s,
        settings.train_fraction, recording.get_num_channels(),
    )  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{settings.cell}.", dir=out_dir.parent) as tmp:
        saved, bad, details = preprocess(
            opened.recording, opened.start, opened.end, Path(tmp) / "preprocessed",
            bad_channel_kwargs=settings.bad_channels,
            job_kwargs={"n_jobs": threads, "chunk_duration": "1s"},
        )  # fmt: skip
        spikes, channel = truth.detect_peak_spikes(
            saved, detect_threshold=settings.detect_threshold, job_kwargs={"n_jobs": threads},
            seed=settings.peak_detection_seed,
        )  # fmt: skip
        result = convert(saved, 0, None, spikes, out_dir, preprocessed=True, **options)
    source = f"spikeinterface peak detection (channel {channel})"
    return Conversion(result.template, bad, details, result.export), spikes, source


def unconnected_channels(recording: sc.BaseRecording) -> list[int]:
    """Indices of the channels whose `connected` property is False (none without it)."""
    if "connected" not in recording.get_property_keys():
        return []
    return [int(c) for c in np.flatnonzero(~np.asarray(recording.get_property("connected"), bool))]


def convert_cell(
    settings: CellSettings, metadata_path: str | Path, templates_path: str | Path, threads: int
) -> dict[str, Any]:
    """Convert one cell; its outputs go beside `metadata_path`. Returns the metadata."""
    opened = _open_spe1(settings) if settings.spe1 is not None else _open_recording(settings)
    recording, start, end = opened.recording, opened.start, opened.end
    fs = recording.get_sampling_frequency()
    out_dir = Path(metadata_path).parent
    options = dict(
        segment_s=settings.segment_s, train_fraction=settings.train_fraction,
        ms_before=settings.ms_before, ms_after=settings.ms_after,
        min_spikes=settings.min_spikes, job_kwargs={"n_jobs": threads},
    )  # fmt: skip
    if opened.spikes is not None:
        result = convert(
            recording, start, end, opened.spikes, out_dir,
            bad_channel_kwargs=settings.bad_channels, **options,
        )  # fmt: skip
        spikes, spike_source = opened.spikes, opened.spike_source
    else:
        result, spikes, spike_source = _convert_detecting_peaks(
            opened, settings, out_dir, options, threads
        )
    details = result.preprocess
    log.info("%s: %s", settings.cell, {k: v for k, v in details.items() if k.startswith("seconds")})
    locations = np.asarray(recording.get_channel_locations(), np.float32)
    # Reference sites carry no signal: bad whatever the detector's majority vote says.
    unconnected = unconnected_channels(recording)
    missed = sorted(set(unconnected) - set(result.bad_channels))
    if missed:
        log.info("%s: unconnected channels the detector kept: %s", settings.cell, missed)
    bad = sorted(set(result.bad_channels) | set(unconnected))
    metadata = conversion_metadata(
        cell_id=settings.cell,
        skip_seconds=settings.skip_s,
        duration_s=(end - start) / fs,
        patch_sample_rate_hz=opened.patch_rate_hz,
        spike_source=spike_source,
        template_metadata=result.template.metadata,
        sampling_frequency=fs,
        num_channels=recording.get_num_channels(),
        peak_channel=result.template.peak_channel,
        gt_electrode_chan_idx=opened.gt_channel,
        channel_locations=locations,
        bad_channel_ids=bad,
        n_spikes_total=int(len(spikes)),
        segment_duration_s=settings.segment_s,
        train_fraction=settings.train_fraction,
        mode=opened.mode,
        extra={
            "detector_bad_channel_ids": result.bad_channels,
            "unconnected_channel_ids": unconnected,
            # What the pass did, without its timings, so that a rebuild is byte-identical.
            "preprocess": {k: v for k, v in details.items() if not k.startswith("seconds")},
        },
    )
    write_json(metadata_path, metadata)
    meta = result.template.metadata
    write_templates_npz(
        templates_path, result.template.templates, fs, locations, meta["nbefore"], meta["nafter"]
    )
    log.info(
        "%s: %d spikes, peak channel %d, %d bad channels",
        settings.cell, len(spikes), result.template.peak_channel, len(bad),
    )  # fmt: skip
    return metadata

"""Paired patch-clamp / Neuropixels recordings to ML-ready Arrow datasets (SPE-1 layout or any
recording SpikeInterface reads).

One cell goes through these stages; each is a function here, so a workflow rule can call them:

  inputs       read_channel_map, read_summary / summary_row / patch_rate / summary_channel,
               find_cell_files, open_spe1_recording, open_recording
  window       analysis_window: skip the burn-in, then the configured duration;
               plan_segments: refuse early a window too short for the train/test split
  convert      convert: the whole cell in one streaming pass whose chunks are the export's
               segments: bandpass 300-3000 Hz and global median reference (bit-identical to
               SpikeInterface's lazy chain), bad channels detected on the bandpassed traces,
               the peak-aligned template summed, one Arrow file per segment written
               (train/, test/, dataset_dict.json); then conversion_metadata, write_json,
               write_templates_npz
  preprocess   preprocess: the same pass writing a SpikeInterface binary folder instead, for
               recordings whose spikes are found on the preprocessed traces
               (detect_peak_spikes), which convert(..., preprocessed=True) then exports
  spikes       ground_truth_spikes (wc_spike_samples.npy, else detect_patch_spikes on the patch
               trace, mapped with patch_to_npx), load_spike_samples, detect_peak_spikes
  templates    peak_aligned_template: the same template read from saved traces (a memmap,
               never through the filter chain)
  demo         write_mock_spe1_cell: a mock cell in the SPE-1 layout with known ground truth

Memory does not grow with the recording's length: every stage streams in chunks (one segment,
3 s by default, for the Neuropixels data; 84 s for long patch traces).

Units follow the conversion this replaces: the saved traces, the `cp` column and the templates
are in the recording's stored units (ADC counts for SPE-1, 2.34375 uV per count), and the spike
times in `ctt` are in ms from the start of each segment.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import probeinterface
import pyarrow as pa
import scipy.signal
import scipy.stats
import spikeinterface.core as sc
import spikeinterface.preprocessing as spre
from spikeinterface.core.core_tools import (
    save_annotations_to_folder,
    save_properties_to_folder,
    save_provenance_to_folder,
)
from spikeinterface.core.job_tools import (
    TimeSeriesChunkExecutor,
    fix_job_kwargs,
)
from spikeinterface.core.time_series_tools import get_random_sample_slices
from spikeinterface.preprocessing.detect_bad_channels import detect_bad_channels_ibl

from spikeforge.errors import InputError
from spikeforge.matio import atomic_directory, atomic_path, load_mat, save_mat

log = logging.getLogger(__name__)

# --- SPE-1 recording format -------------------------------------------------------------------
NPX_CHANNELS = 384
NPX_SAMPLING_HZ = 30_000.0
NPX_GAIN_UV = 2.34375  # uV per int16 count of the SPE-1 AP-band binaries
NPX_DTYPE = np.dtype("<i2")
DEFAULT_PATCH_RATE_HZ = 50_023.0  # the conversion's constant; the summary has per-cell rates
SPE1_DATASET = "Marques-Smith et al. (2018) — CRCNS spe-1"
SPE1_MODE = "spe1_paired_recording"
PREPROCESSING_LABEL = "bandpass_300_3000Hz + global_CMR"
SOURCE_WC_SPIKES = "wc_spike_samples.npy (authoritative GT)"
SOURCE_PATCH_DETECTION = "detect_spikes_from_patch (fallback)"
TEMPLATE_METHOD = "zhao2026_raw_mean_template"

NPX_SUFFIX = "npx_raw.bin"
PATCH_SUFFIX = "patch_ch1.bin"
WC_SPIKE_SUFFIX = "wc_spike_samples.npy"

SUMMARY_CELL = "Cell"
SUMMARY_CHANNEL = "chan_predicted"
SUMMARY_PATCH_RATE = "Patch Samp. Freq. (Hz)"

# The 10 reference (not connected) channels of a Neuropixels Phase3A probe, as in Kilosort's
# neuropixPhase3A_kilosortChanMap.mat; the mock cells flatten them the same way.
PHASE3A_REFERENCE_CHANNELS = (36, 75, 112, 151, 188, 227, 264, 303, 340, 379)

# Bad-channel detection defaults: SpikeInterface's own (coherence+psd, 100 random chunks of
# 0.3 s), with a fixed seed so that reruns give the same channels.
DEFAULT_BAD_CHANNEL_KWARGS: dict[str, Any] = {"method": "coherence+psd", "seed": 0}

# Arrow list offsets are int32.
_MAX_LIST_VALUES = 2**31 - 1

DATASET_DICT_JSON = {"splits": {"train": {"name": "train"}, "test": {"name": "test"}}}


# ==============================================================================================
# Inputs
# ==============================================================================================


@dataclass(frozen=True)
class ChannelMap:
    """Probe geometry in recorded-channel order.

    locations: [n, 2] float32 (x, y) in um; row c is recorded channel c.
    connected: [n] bool; False for reference / unconnected sites (all True when the file has
               no `connected` variable).
    """

    locations: np.ndarray
    connected: np.ndarray
    path: str

    @property
    def n_channels(self) -> int:
        return int(self.locations.shape[0])


def _column(values: Any) -> np.ndarray:
    return np.asarray(values).reshape(-1)


def read_channel_map(path: str | Path) -> ChannelMap:
    """Read a Kilosort channel map (.mat v5 or v7.3: xcoords, ycoords, optional chanMap0ind /
    chanMap, connected).

    Row i of xcoords / ycoords / connected describes recorded channel chanMap0ind[i] (or
    chanMap[i] - 1 when only the 1-based map is present); without either, row i is channel i.
    Raises InputError naming the file when coordinates are missing, of unequal length or not
    finite, or when the channel map is not a permutation of 0..n-1.
    """
    path = Path(path)
    data = load_mat(path)
    for key in ("xcoords", "ycoords"):
        if key not in data:
            raise InputError(
                path,
                f"no '{key}' variable: a Kilosort channel map needs xcoords and ycoords "
                f"(variables found: {', '.join(sorted(data)) or 'none'})",
                key=key,
            )
    x = _column(data["xcoords"]).astype(np.float64)
    y = _column(data["ycoords"]).astype(np.float64)
    if x.size == 0 or x.size != y.size:
        raise InputError(path, f"xcoords has {x.size} entries and ycoords {y.size}", key="ycoords")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError(path, "xcoords / ycoords contain NaN or Inf", key="xcoords")
    n = x.size

    if "chanMap0ind" in data:
        order, key = _column(data["chanMap0ind"]).astype(np.int64), "chanMap0ind"
    elif "chanMap" in data:
        order, key = _column(data["chanMap"]).astype(np.int64) - 1, "chanMap"
    else:
        order, key = np.arange(n), None
    if key is not None and (order.size != n or not np.array_equal(np.sort(order), np.arange(n))):
        raise InputError(path, f"'{key}' is not a permutation of the {n} channels", key=key)

    connected_rows = np.ones(n, dtype=bool)
    if "connected" in data:
        flags = _column(data["connected"])
        if flags.size != n:
            raise InputError(
                path, f"'connected' has {flags.size} entries, expected {n}", key="connected"
            )
        connected_rows = flags.astype(bool)

    locations = np.zeros((n, 2), dtype=np.float32)
    connected = np.ones(n, dtype=bool)
    locations[order, 0] = x
    locations[order, 1] = y
    connected[order] = connected_rows
    return ChannelMap(locations=locations, connected=connected, path=str(path))


def read_summary(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read the SPE-1 `Data Summary.xlsx` as {cell id: row}; rows without a Cell are skipped.

    Missing values (empty cells) become None. Raises InputError naming the file when it is
    missing, unreadable or has no `Cell` column.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        with warnings.catch_warnings():
            # openpyxl warns about Excel extensions it drops; they carry no data we use.
            warnings.simplefilter("ignore", UserWarning)
            frame = pd.read_excel(path)
    except Exception as exc:  # pandas/openpyxl raise many types for a corrupt file
        raise InputError(path, f"not a readable Excel file ({type(exc).__name__}: {exc})") from exc
    if SUMMARY_CELL not in frame.columns:
        raise InputError(path, f"no '{SUMMARY_CELL}' column", key=SUMMARY_CELL)
    summary: dict[str, dict[str, Any]] = {}
    for record in frame.to_dict(orient="records"):
        cell = record.get(SUMMARY_CELL)
        if _missing(cell):
            continue
        summary[str(cell).strip()] = {
            str(k): (None if _missing(v) else v) for k, v in record.items()
        }
    return summary


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


def summary_row(summary: Mapping[str, Mapping[str, Any]], cell_id: str) -> dict[str, Any] | None:
    """The summary row of `cell_id`, or None with a warning (the cell is processed without its
    summary location and with the default patch rate)."""
    row = summary.get(cell_id)
    if row is None:
        log.warning(
            "cell %s is not in the data summary: continuing without its electrode location "
            "(gt_electrode_chan_idx and unit_locations_um will be null)",
            cell_id,
        )
        return None
    return dict(row)


def patch_rate(row: Mapping[str, Any] | None) -> float:
    """The cell's patch sampling rate (Hz) from its summary row; 50,023 Hz with a warning when
    the row or the value is missing (the constant the original conversion used for every cell)."""
    value = None if row is None else row.get(SUMMARY_PATCH_RATE)
    if value is not None:
        try:
            rate = float(value)
        except (TypeError, ValueError):
            rate = float("nan")
        if math.isfinite(rate) and rate > 0:
            return rate
    cell = None if row is None else row.get(SUMMARY_CELL)
    log.warning(
        "no usable '%s' for cell %s: using %.1f Hz",
        SUMMARY_PATCH_RATE,
        cell if cell is not None else "(no summary row)",
        DEFAULT_PATCH_RATE_HZ,
    )
    return DEFAULT_PATCH_RATE_HZ


def summary_channel(row: Mapping[str, Any] | None) -> int | None:
    """The summary's `chan_predicted` (used, as in the original conversion, as a 0-based channel
    index), or None when the row or the value is missing."""
    value = None if row is None else row.get(SUMMARY_CHANNEL)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        log.warning("'%s' is not an integer (%r): ignored", SUMMARY_CHANNEL, value)
        return None


@dataclass(frozen=True)
class CellFiles:
    """The files of one SPE-1 cell folder; `patch` may be None only when `wc_spike` exists."""

    cell_dir: Path
    npx_raw: Path
    patch: Path | None
    wc_spike: Path | None


def find_cell_files(cell_dir: str | Path) -> CellFiles:
    """Find the files ending in npx_raw.bin, patch_ch1.bin and wc_spike_samples.npy.

    The Neuropixels binary is required. The patch trace is required unless
    wc_spike_samples.npy is present: those samples are the authoritative ground truth and the
    patch trace then only fixes the patch-to-Neuropixels length ratio, which the patch sampling
    rate also gives (see ground_truth_spikes). Raises InputError naming the folder and the
    missing (or ambiguous) file.
    """
    cell_dir = Path(cell_dir)
    if not cell_dir.is_dir():
        raise InputError(cell_dir, "cell folder not found")
    found: dict[str, list[Path]] = {NPX_SUFFIX: [], PATCH_SUFFIX: [], WC_SPIKE_SUFFIX: []}
    for entry in sorted(cell_dir.iterdir()):
        for suffix in found:
            if entry.name.endswith(suffix) and entry.is_file():
                found[suffix].append(entry)
    for suffix, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise InputError(cell_dir, f"several files end in {suffix} ({names}); keep one")
    npx = found[NPX_SUFFIX][0] if found[NPX_SUFFIX] else None
    patch = found[PATCH_SUFFIX][0] if found[PATCH_SUFFIX] else None
    wc = found[WC_SPIKE_SUFFIX][0] if found[WC_SPIKE_SUFFIX] else None
    if npx is None:
        raise InputError(cell_dir, f"missing the Neuropixels binary (*{NPX_SUFFIX})")
    if patch is None and wc is None:
        raise InputError(
            cell_dir, f"missing the patch trace (*{PATCH_SUFFIX}) and no *{WC_SPIKE_SUFFIX}"
        )
    return CellFiles(cell_dir=cell_dir, npx_raw=npx, patch=patch, wc_spike=wc)


def check_npx_binary(path: str | Path, n_channels: int = NPX_CHANNELS) -> int:
    """Number of samples of an interleaved int16 binary; InputError naming the file when it is
    missing, empty or not a whole number of n_channels x 2-byte frames."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    size = path.stat().st_size
    frame = n_channels * NPX_DTYPE.itemsize
    if size == 0 or size % frame:
        raise InputError(
            path,
            f"size {size:,} bytes is not a positive multiple of {n_channels} channels x "
            f"{NPX_DTYPE.itemsize} bytes ({frame} bytes per sample): truncated or not an "
            f"interleaved int16 {n_channels}-channel file",
        )
    return size // frame


def probe_from_channel_map(channel_map: ChannelMap) -> probeinterface.Probe:
    """A probeinterface Probe whose contact i is recorded channel i (12 um square sites)."""
    probe = probeinterface.Probe(ndim=2, si_units="um")
    probe.set_contacts(
        positions=channel_map.locations.astype(np.float64),
        shapes="square",
        shape_params={"width": 12.0},
    )
    probe.set_device_channel_indices(np.arange(channel_map.n_channels))
    return probe


def open_spe1_recording(npx_path: str | Path, channel_map: ChannelMap) -> sc.BaseRecording:
    """The SPE-1 Neuropixels binary as a SpikeInterface recording: int16, 384 channels
    interleaved, 30 kHz, 2.34375 uV per count, offset 0, with the channel map as its probe and
    a boolean `connected` channel property."""
    n_samples = check_npx_binary(npx_path)
    if channel_map.n_channels != NPX_CHANNELS:
        raise InputError(
            channel_map.path,
            f"has {channel_map.n_channels} channels but {Path(npx_path).name} has {NPX_CHANNELS}",
        )
    recording = sc.BinaryRecordingExtractor(
        file_paths=[str(npx_path)],
        sampling_frequency=NPX_SAMPLING_HZ,
        num_channels=NPX_CHANNELS,
        dtype=NPX_DTYPE.str,
        time_axis=0,
        gain_to_uV=NPX_GAIN_UV,
        offset_to_uV=0.0,
        is_filtered=False,
    )
    recording.set_probe(probe_from_channel_map(channel_map))
    recording.set_property("connected", channel_map.connected.copy())
    assert recording.get_num_samples() == n_samples
    return recording


_READERS = {
    "openephys": ("read_openephys", "folder_path"),
    "spikeglx": ("read_spikeglx", "folder_path"),
    "nwb": ("read_nwb", "file_path"),
}


def open_recording(
    reader: Literal["openephys", "spikeglx", "nwb", "binary"],
    path: str | Path,
    stream_id: str | None = None,
    *,
    probe_path: str | Path | None = None,
    **binary_kwargs: Any,
) -> sc.BaseRecording:
    """Open a recording with a SpikeInterface reader.

    "openephys", "spikeglx", "nwb": the folder (file for NWB) and optional stream id.
    "binary": a raw file plus `probe_path` (probeinterface JSON or .prb) and the
    BinaryRecordingExtractor keywords (sampling_frequency, num_channels, dtype, gain_to_uV,
    offset_to_uV, ...). Raises InputError naming the path on a missing path or a reader error.
    """
    import spikeinterface.extractors as se

    path = Path(path)
    if not path.exists():
        raise InputError(path, "recording not found")
    try:
        if reader == "binary":
            if probe_path is None:
                raise InputError(path, "a binary recording needs a probe file (probe_path)")
            probe_path = Path(probe_path)
            if not probe_path.is_file():
                raise InputError(probe_path, "probe file not found")
            recording = se.read_binary(file_paths=[str(path)], **binary_kwargs)
            if probe_path.suffix == ".prb":
                group = probeinterface.read_prb(probe_path)
            else:
                group = probeinterface.read_probeinterface(probe_path)
            recording.set_probegroup(group)  # in place since spikeinterface 0.105
        elif reader in _READERS:
            function, argument = _READERS[reader]
            kwargs: dict[str, Any] = {argument: str(path)}
            if stream_id is not None:
                kwargs["stream_id"] = stream_id
            recording = getattr(se, function)(**kwargs)
        else:
            raise InputError(
                path, f"unknown reader {reader!r} (openephys, spikeglx, nwb, binary)", key="reader"
            )
    except InputError:
        raise
    except Exception as exc:  # each reader raises its own types for unreadable input
        raise InputError(path, f"{reader} reader failed ({type(exc).__name__}: {exc})") from exc
    return recording


# ==============================================================================================
# Analysis window and ground-truth spikes
# ==============================================================================================


def analysis_window(
    n_samples: int, fs: float, skip_s: float, duration_s: float | None
) -> tuple[int, int]:
    """(start_frame, end_frame): skip `skip_s`, then `duration_s` (None: to the end).

    A window starting at or past the end is an InputError; a window running past the end is cut
    at the end with a warning (the original conversion cut it silently).
    """
    if skip_s < 0 or (duration_s is not None and duration_s <= 0):
        raise InputError(
            "analysis window", f"skip {skip_s} s / duration {duration_s} s must be >= 0 / > 0"
        )
    start = int(skip_s * fs)
    if start >= n_samples:
        raise InputError(
            "analysis window",
            f"starts at {skip_s:g} s (frame {start:,}) but the recording has only "
            f"{n_samples:,} frames ({n_samples / fs:.3f} s)",
        )
    if duration_s is None:
        return start, n_samples
    end = start + int(duration_s * fs)
    if end > n_samples:
        log.warning(
            "analysis window %g s + %g s runs past the end of the recording (%.3f s): using %.3f s",
            skip_s,
            duration_s,
            n_samples / fs,
            (n_samples - start) / fs,
        )
        end = n_samples
    return start, end


def read_patch(path: str | Path) -> np.ndarray:
    """The float64 patch trace, memory-mapped; InputError on a missing, empty or ragged file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    size = path.stat().st_size
    if size == 0 or size % 8:
        raise InputError(path, f"size {size:,} bytes is not a positive multiple of 8 (float64)")
    return np.memmap(path, dtype="<f8", mode="r")


# Patch traces longer than this are detected chunk by chunk (same result, bounded memory).
PATCH_CHUNK_SAMPLES = 1 << 20  # 21 s at 50 kHz
_PATCH_MARGIN_S = 0.1  # 20 periods of the 200 Hz high-pass: its transients are long gone


def detect_patch_spikes(
    patch: np.ndarray, fs: float, chunk_samples: int = PATCH_CHUNK_SAMPLES
) -> np.ndarray:
    """Action potentials of a patch trace: zero-phase 5th-order Butterworth high-pass at 200 Hz,
    threshold median - 12 * MAD * 1.4826 of the filtered trace, negative peaks at least 1 ms
    apart (scipy.signal.find_peaks on the negated trace). Returns int64 sample indices.

    A trace longer than `chunk_samples` is filtered once in overlapping chunks (read from the
    file when `patch` is a memmap, so its pages are not kept mapped), kept in a temporary
    file, and its median and MAD found exactly by histogram selection, so memory does not grow
    with its length; the peaks are those of the whole-trace computation (tests compare the two).
    """
    sos = scipy.signal.butter(5, 200.0, btype="highpass", fs=fs, output="sos")
    distance = max(1, int(fs * 0.001))  # find_peaks needs at least one sample
    n = int(patch.shape[0])
    if n <= chunk_samples:
        filtered = scipy.signal.sosfiltfilt(sos, np.asarray(patch, dtype=np.float64))
        centre = np.median(filtered)
        spread = 1.4826 * np.median(np.abs(filtered - centre))
        threshold = centre - 12.0 * spread
        peaks, _ = scipy.signal.find_peaks(-filtered, height=-threshold, distance=distance)
        return peaks.astype(np.int64)

    margin = int(_PATCH_MARGIN_S * fs)
    # The filtered trace is computed once, chunk by chunk (each with margins of real data),
    # and kept in a temporary file that the median passes and the peak search read back.
    with tempfile.TemporaryFile() as cache:
        for a in range(0, n, chunk_samples):
            b = min(a + chunk_samples, n)
            lo, hi = max(0, a - margin), min(n, b + margin)
            filtered = scipy.signal.sosfiltfilt(sos, _patch_slice(patch, lo, hi))
            cache.write(np.ascontiguousarray(filtered[a - lo : b - lo]).data)
        del filtered

        def read(lo: int, hi: int) -> np.ndarray:
            values = np.empty(hi - lo, dtype=np.float64)
            cache.seek(lo * 8)
            if cache.readinto(memoryview(values).cast("B")) != values.nbytes:
                raise OSError("patch filter cache is shorter than the trace")
            return values

        def cores() -> Iterator[np.ndarray]:
            for a in range(0, n, chunk_samples):
                yield read(a, min(a + chunk_samples, n))

        centre = _median_streamed(cores, n)
        spread = 1.4826 * _median_streamed(lambda: (np.abs(c - centre) for c in cores()), n)
        threshold = centre - 12.0 * spread
        # Candidates as find_peaks finds them (local maxima of -x at or above the height),
        # chunk by chunk (the neighbouring samples give maxima at a chunk's edge their
        # neighbours), then find_peaks' distance rule once over all of them.
        peaks, heights = [], []
        for a in range(0, n, chunk_samples):
            b = min(a + chunk_samples, n)
            lo, hi = max(0, a - margin), min(n, b + margin)
            local, props = scipy.signal.find_peaks(-read(lo, hi), height=-threshold)
            core = (local >= a - lo) & (local < b - lo)
            peaks.append(local[core] + lo)
            heights.append(props["peak_heights"][core])
    all_peaks = np.concatenate(peaks).astype(np.int64)
    keep = _keep_by_distance(all_peaks, np.concatenate(heights), distance)
    return all_peaks[keep]


def _patch_slice(patch: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """patch[lo:hi] as float64. A whole-file memmap (read_patch's) is read rather than
    indexed: mapped pages would stay resident, and grow with the trace."""
    whole_file = (
        isinstance(patch, np.memmap)
        and patch.filename is not None
        and patch.ndim == 1
        and patch.offset == 0
        and os.path.getsize(patch.filename) == patch.nbytes
    )
    if whole_file:
        itemsize = patch.dtype.itemsize
        values = np.fromfile(patch.filename, patch.dtype, count=hi - lo, offset=lo * itemsize)
        return values.astype(np.float64, copy=False)
    return np.asarray(patch[lo:hi], dtype=np.float64)


def _keep_by_distance(peaks: np.ndarray, priority: np.ndarray, distance: int) -> np.ndarray:
    """scipy.signal.find_peaks' distance rule: highest peaks first, each removes the peaks
    closer than `distance` samples on either side."""
    keep = np.ones(peaks.size, dtype=bool)
    for j in np.argsort(priority)[::-1]:
        if not keep[j]:
            continue
        k = j - 1
        while k >= 0 and peaks[j] - peaks[k] < distance:
            keep[k] = False
            k -= 1
        k = j + 1
        while k < peaks.size and peaks[k] - peaks[j] < distance:
            keep[k] = False
            k += 1
    return keep


def _median_streamed(stream: Any, n: int, bins: int = 1 << 16, limit: int = 1 << 20) -> float:
    """np.median of the n values `stream()` yields (in chunks), exactly, in bounded memory:
    histogram passes narrow down the bin holding the middle rank(s), then its values are
    sorted. `stream` is called once per pass."""
    lo, hi = np.inf, -np.inf
    for values in stream():
        lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
    k = (n - 1) // 2  # lower middle rank; the upper one is k + 1 when n is even
    path: list[tuple[float, float, int]] = []  # nested (start, width, bin) choices

    def member(values: np.ndarray) -> np.ndarray:
        """Values inside every chosen bin so far (the same arithmetic every pass)."""
        for start, width, b in path:
            idx = np.clip(((values - start) / width * bins).astype(np.int64), 0, bins - 1)
            values = values[idx == b]
        return values

    below = 0  # values before the current range
    start, width = lo, hi - lo
    while True:
        if width <= 0:
            return lo if not path else start  # every remaining value is equal
        counts = np.zeros(bins, dtype=np.int64)
        for values in stream():
            inside = member(values)
            idx = np.clip(((inside - start) / width * bins).astype(np.int64), 0, bins - 1)
            counts += np.bincount(idx, minlength=bins)
        cumulative = np.cumsum(counts)
        b = int(np.searchsorted(cumulative, k - below, side="right"))
        before = below + (int(cumulative[b - 1]) if b else 0)
        path.append((start, width, b))
        if counts[b] <= limit or len(path) >= 8:
            break
        below = before
        start, width = start + b * width / bins, width / bins
    # Collect the chosen bin; the next value above it is the smallest value of later bins.
    chosen: list[np.ndarray] = []
    above = np.inf
    *outer, (start, width, b) = path
    for values in stream():
        inside = values
        for o_start, o_width, o_b in outer:
            idx = np.clip(((inside - o_start) / o_width * bins).astype(np.int64), 0, bins - 1)
            later = inside[idx > o_b]
            if later.size:
                above = min(above, float(later.min()))
            inside = inside[idx == o_b]
        idx = np.clip(((inside - start) / width * bins).astype(np.int64), 0, bins - 1)
        chosen.append(inside[idx == b])
        later = inside[idx > b]
        if later.size:
            above = min(above, float(later.min()))
    ordered = np.sort(np.concatenate(chosen))
    lower = float(ordered[k - before])
    if n % 2:
        return lower
    upper = float(ordered[k - before + 1]) if k - before + 1 < ordered.size else above
    return (lower + upper) / 2.0


def patch_to_npx(
    spike_idx_patch: np.ndarray, n_npx: int, n_patch: int, start_frame: int, end_frame: int
) -> np.ndarray:
    """Patch-clock samples to window-relative Neuropixels frames.

    Both recordings span the same time, so a patch sample maps by the length ratio
    n_npx / n_patch, truncated to an integer frame; frames outside [start_frame, end_frame) are
    dropped and the rest returned relative to start_frame (int64, in the input order).
    """
    ratio = n_npx / n_patch
    frames = (np.asarray(spike_idx_patch, dtype=np.int64) * ratio).astype(np.int64)
    inside = (frames >= start_frame) & (frames < end_frame)
    return frames[inside] - start_frame


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth spikes of one cell in the analysis window.

    spike_rel: int64 frames relative to the window start; spike_source: the label the metadata
    records; n_patch: patch samples used for the clock ratio; patch_spikes: all spikes on the
    patch clock (before windowing).
    """

    spike_rel: np.ndarray
    spike_source: str
    n_patch: int
    patch_spikes: np.ndarray


def ground_truth_spikes(
    files: CellFiles,
    n_npx: int,
    patch_rate_hz: float,
    start_frame: int,
    end_frame: int,
) -> GroundTruth:
    """The cell's ground-truth spikes in the window.

    wc_spike_samples.npy when present (patch-clock samples), else detect_patch_spikes on the
    patch trace at `patch_rate_hz`. The patch-to-Neuropixels ratio is the length ratio of the
    two traces; without a patch trace (allowed when wc_spike_samples.npy exists) the patch
    length is taken as n_npx * patch_rate_hz / 30 kHz, with a warning.
    """
    patch = read_patch(files.patch) if files.patch is not None else None
    if files.wc_spike is not None:
        try:
            samples = np.load(files.wc_spike, allow_pickle=False)
        except Exception as exc:  # numpy raises several types for a corrupt .npy
            raise InputError(files.wc_spike, f"not a readable .npy ({exc})") from exc
        samples = np.asarray(samples).reshape(-1)
        if samples.size and (
            not np.issubdtype(samples.dtype, np.number)
            or not np.all(np.isfinite(samples))
            or samples.min() < 0
        ):
            raise InputError(files.wc_spike, "spike samples must be finite and >= 0")
        patch_spikes = np.sort(samples.astype(np.int64))
        source = SOURCE_WC_SPIKES
    else:
        assert patch is not None  # find_cell_files guarantees one of the two
        patch_spikes = detect_patch_spikes(patch, patch_rate_hz)
        source = SOURCE_PATCH_DETECTION
    if patch is not None:
        n_patch = int(patch.shape[0])
    else:
        n_patch = int(round(n_npx * patch_rate_hz / NPX_SAMPLING_HZ))
        log.warning(
            "%s: no patch trace; mapping wc_spike_samples with the rate ratio %.1f / %.1f Hz",
            files.cell_dir,
            patch_rate_hz,
            NPX_SAMPLING_HZ,
        )
    spike_rel = patch_to_npx(patch_spikes, n_npx, n_patch, start_frame, end_frame)
    return GroundTruth(
        spike_rel=spike_rel, spike_source=source, n_patch=n_patch, patch_spikes=patch_spikes
    )


def load_spike_samples(
    path: str | Path, fs: float | None = None, units: Literal["samples", "seconds"] = "samples"
) -> np.ndarray:
    """Ground-truth spike times from a .npy, .txt or .csv file (one column), as int64 samples of
    the recording (seconds are multiplied by `fs` and rounded). Sorted."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "spike-times file not found")
    try:
        if path.suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            values = np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=1)
    except Exception as exc:  # numpy raises several types for unreadable text or .npy
        raise InputError(path, f"not readable as spike times ({exc})") from exc
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(values)) or (values.size and values.min() < 0):
        raise InputError(path, "spike times must be finite and >= 0")
    if units == "seconds":
        if fs is None:
            raise InputError(path, "spike times in seconds need the sampling frequency")
        values = np.round(values * fs)
    return np.sort(values.astype(np.int64))


def detect_peak_spikes(
    recording: sc.BaseRecording,
    channel: int | None = None,
    detect_threshold: float = 5.0,
    peak_sign: Literal["neg", "pos", "both"] = "neg",
    exclude_sweep_ms: float = 1.0,
    job_kwargs: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, int]:
    """Spike source for recordings without a patch: SpikeInterface's by-channel peak detection
    (threshold in MADs) on one channel, by default the channel with the most peaks.

    Returns (frames, channel). These are threshold crossings of everything near that channel,
    not one neuron's ground truth; the metadata's spike_source says so.
    """
    from spikeinterface.sortingcomponents.peak_detection import detect_peaks

    n = recording.get_num_samples()
    # Noise from random chunks no longer than the recording (short recordings included).
    chunk = max(1, min(10_000, n - 1))
    jobs = _job_kwargs(job_kwargs)
    noise = sc.get_noise_levels(
        recording,
        return_in_uV=False,
        random_slices_kwargs={"num_chunks_per_segment": 20, "chunk_size": chunk, "seed": 0},
        **jobs,
    )
    peaks = detect_peaks(
        recording,
        method="by_channel",
        method_kwargs={
            "peak_sign": peak_sign,
            "detect_threshold": detect_threshold,
            "exclude_sweep_ms": exclude_sweep_ms,
            "noise_levels": noise,
        },
        job_kwargs=jobs,
    )
    if channel is None:
        counts = np.bincount(peaks["channel_index"], minlength=recording.get_num_channels())
        channel = int(np.argmax(counts))
    frames = np.sort(peaks["sample_index"][peaks["channel_index"] == channel]).astype(np.int64)
    return frames, int(channel)


# ==============================================================================================
# Preprocessing: one streaming pass, bad channels detected on the way
# ==============================================================================================


def _job_kwargs(job_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """SpikeInterface job kwargs: 1 s chunks, one job and no progress bar unless given."""
    merged: dict[str, Any] = {"n_jobs": 1, "chunk_duration": "1s", "progress_bar": False}
    merged.update(job_kwargs or {})
    try:
        return fix_job_kwargs(merged)
    except AssertionError as exc:
        raise InputError("job_kwargs", str(exc)) from exc


def _filtfilt_min_samples(freq_min: float, freq_max: float, fs: float) -> int:
    """Shortest trace scipy's sosfiltfilt accepts for SpikeInterface's 5th-order bandpass."""
    sos = scipy.signal.iirfilter(5, [freq_min, freq_max], fs=fs, btype="bandpass", output="sos")
    taps = 2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * taps + 1


_IBL_ARGUMENTS = {
    "psd_hf_threshold": "psd_hf_threshold",
    "dead_channel_threshold": "dead_channel_thr",
    "noisy_channel_threshold": "noisy_channel_thr",
    "outside_channel_threshold": "outside_channel_thr",
    "n_neighbors": "n_neighbors",
    "nyquist_threshold": "nyquist_threshold",
    "welch_window_ms": "welch_window_ms",
    "outside_channels_location": "outside_channels_location",
}
_LABEL_NAMES = np.array(["good", "dead", "noise", "out"])


def _bad_channel_settings(bad_channel_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """SpikeInterface's detect_bad_channels defaults updated with ours and the caller's."""
    params = inspect.signature(spre.detect_bad_channels).parameters
    settings = {k: p.default for k, p in params.items() if k not in ("recording", "job_kwargs")}
    settings.update(DEFAULT_BAD_CHANNEL_KWARGS)
    for key, value in (bad_channel_kwargs or {}).items():
        if key not in settings:
            raise InputError(
                "bad_channel_kwargs",
                f"unknown option {key!r}; spikeinterface.preprocessing.detect_bad_channels "
                f"takes {', '.join(sorted(settings))}",
                key=key,
            )
        settings[key] = value
    return settings


# Channels filtered together: few enough that scipy's float64 copies of a group stay in cache.
_FILTER_CHANNELS = 64
# Samples per block of the transposes and of the reference's arithmetic.
_BLOCK_ROWS = 4096


def _bandpass_chunk(ctx: dict[str, Any], start: int, end: int) -> np.ndarray:
    """Frames [start, end) of the window, bandpassed exactly as spikeinterface's
    FilterRecordingSegment.get_traces computes them (same margins from the recording, the same
    sosfiltfilt on the same dtype per channel, rounded and cast to the filter's dtype), but on
    channels laid out along time, in groups: about 20 % faster than one sosfiltfilt over
    [samples, channels] along axis 0, and bit-identical (tested against the lazy chain)."""
    filt = ctx["filter"]
    margin, offset = filt["margin"], filt["offset"]
    a, b = start + offset, end + offset  # frames of the whole segment
    left = min(margin, a)
    right = min(margin, filt["n_total"] - b)
    raw = filt["recording"].get_traces(segment_index=0, start_frame=a - left, end_frame=b + right)
    n_rows, n_channels = raw.shape
    by_channel = np.empty((n_channels, n_rows), dtype=raw.dtype)
    for r0 in range(0, n_rows, _BLOCK_ROWS):
        by_channel[:, r0 : r0 + _BLOCK_ROWS] = raw[r0 : r0 + _BLOCK_ROWS].T
    dtype = filt["dtype"]
    out = np.empty((end - start, n_channels), dtype=dtype)
    stop = n_rows - right
    for c0 in range(0, n_channels, _FILTER_CHANNELS):
        c1 = min(c0 + _FILTER_CHANNELS, n_channels)
        filtered = scipy.signal.sosfiltfilt(filt["sos"], by_channel[c0:c1], axis=-1)
        filtered = filtered[:, left:stop]
        if np.issubdtype(dtype, np.integer):
            filtered = filtered.round()
        out[:, c0:c1] = filtered.T.astype(dtype)
    return out


def _median_reference(
    traces: np.ndarray, reference: np.ndarray | None, dtype: np.dtype
) -> np.ndarray:
    """traces minus their median over the reference channels, as spikeinterface's global
    median CommonReferenceRecording computes it: the median in float64, subtracted, rounded
    (half to even) for integer output. For integer traces the subtraction and rounding run in
    float32, which is exact there (the median is a multiple of 0.5 within 2^16) and halves the
    memory traffic."""
    shift = np.median(traces if reference is None else traces[:, reference], axis=1, keepdims=True)
    integer_in = np.issubdtype(traces.dtype, np.integer) and traces.dtype.itemsize <= 2
    if not integer_in:
        referenced = traces - shift
        if np.issubdtype(dtype, np.integer):
            np.round(referenced, out=referenced)
        return referenced.astype(dtype, copy=False)
    shift32 = shift.astype(np.float32)
    out = np.empty(traces.shape, dtype=dtype)
    integer_out = np.issubdtype(dtype, np.integer)
    for r0 in range(0, traces.shape[0], _BLOCK_ROWS):
        block = traces[r0 : r0 + _BLOCK_ROWS].astype(np.float32)
        block -= shift32[r0 : r0 + _BLOCK_ROWS]
        if integer_out:
            np.round(block, out=block)
        out[r0 : r0 + _BLOCK_ROWS] = block
    return out


def _pass_init(
    source: sc.BaseRecording,
    filter_spec: dict[str, Any] | None,
    apply_reference: bool,
    reference: np.ndarray | None,
    out_path: str | None,
    dtype: str,
    slices: list[tuple[int, int, int]],
    ibl: dict[str, Any] | None,
    export: dict[str, Any] | None,
) -> dict[str, Any]:
    # Positioned writes rather than a memmap of the output: a mapping would keep every written
    # page in the worker's resident memory, which then grows with the recording.
    return {
        "source": source,
        "filter": filter_spec,
        "apply_reference": apply_reference,
        "reference": reference,
        "out": None if out_path is None else open(out_path, "r+b", buffering=0),  # noqa: SIM115
        "dtype": np.dtype(dtype),
        "slices": slices,
        "ibl": ibl,
        "export": export,
    }


def _pass_chunk(segment_index: int, start: int, end: int, ctx: dict[str, Any]) -> dict[str, Any]:
    """One chunk of the streaming pass: bandpassed traces (the lazy filter's get_traces), their
    global median reference, then whatever the pass was asked for: the binary file, the
    bad-channel labels of the slices that start here, the template's partial sums and the
    chunk's Arrow segment file."""
    source = ctx["source"]
    if ctx["filter"] is not None:
        chunk = _bandpass_chunk(ctx, start, end)
    else:
        chunk = source.get_traces(segment_index=segment_index, start_frame=start, end_frame=end)
    result: dict[str, Any] = {}
    if ctx["apply_reference"]:
        # Bit-identical to saving the lazy spikeinterface chain with the same chunks.
        traces = _median_reference(chunk, ctx["reference"], ctx["dtype"])
        result["labels"] = _label_slices(source, segment_index, start, end, chunk, ctx)
    else:
        traces = chunk
    if ctx["out"] is not None:
        _write_at(ctx["out"], start * traces.shape[1] * traces.dtype.itemsize, traces)
    export = ctx["export"]
    if export is not None:
        result["template"] = _template_sums(traces, start, export)
        result["segment"] = _write_segment(traces, start, export)
    return result


def _label_slices(
    source: sc.BaseRecording,
    segment_index: int,
    start: int,
    end: int,
    chunk: np.ndarray,
    ctx: dict[str, Any],
) -> list[tuple[int, np.ndarray]]:
    """IBL labels of the bad-channel slices that start in [start, end)."""
    labels = []
    ibl = ctx["ibl"]
    for k, a, b in ctx["slices"]:
        if not start <= a < end:
            continue
        if b <= end:
            piece = chunk[a - start : b - start]
        else:
            # The slice runs into the next chunk: filter it on its own, as detect_bad_channels
            # would (the chunk's own traces must stay as spikeinterface computes them).
            piece = source.get_traces(segment_index=segment_index, start_frame=a, end_frame=b)
        # Microvolts as spikeinterface's detect_bad_channels reads them (return_in_uV).
        raw = piece.astype(np.float32) * ibl["gains"] + ibl["offsets"]
        order_f, order_r = ibl["order_f"], ibl["order_r"]
        if order_f is not None:
            raw = raw[:, order_f]
        chunk_labels = detect_bad_channels_ibl(raw=raw, fs=ibl["fs"], **ibl["kwargs"])
        labels.append((k, chunk_labels[order_r] if order_r is not None else chunk_labels))
    return labels


def _write_at(handle: Any, offset: int, array: np.ndarray) -> None:
    view = memoryview(np.ascontiguousarray(array)).cast("B")
    while view.nbytes:
        written = os.pwrite(handle.fileno(), view, offset)
        view, offset = view[written:], offset + written


def _labels_from_chunks(
    chunk_labels: np.ndarray, channel_ids: np.ndarray, channel_filters: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Mode of the per-chunk IBL labels -> (bad channel ids, label names), as spikeinterface."""
    mode_labels, _ = scipy.stats.mode(chunk_labels, axis=1, keepdims=False)
    names = _LABEL_NAMES[mode_labels.astype(int)]
    if np.count_nonzero(mode_labels) > len(channel_ids) / 3:
        log.warning(
            "over 1/3 of the channels are labelled bad (%d of %d): bad-channel detection may "
            "fail on such recordings",
            np.count_nonzero(mode_labels),
            len(channel_ids),
        )
    allowed = {"dead", "noise", "out"}
    filters = allowed if channel_filters is None else set(channel_filters)
    if not filters <= allowed:
        raise InputError("bad_channel_kwargs", f"channel_filters must be within {allowed}")
    return channel_ids[np.isin(names, list(filters))], names


def _write_binary_folder_metadata(
    folder: Path, raw_name: str, recording: sc.BaseRecording, dtype: np.dtype
) -> None:
    """The metadata files spikeinterface's recording.save(format="binary") writes beside the
    traces, so that spikeinterface.load(folder) reads the folder back with its probe,
    properties, annotations and provenance (the lazy chain the traces came from)."""
    save_properties_to_folder(folder / "properties", recording)
    save_provenance_to_folder(folder, recording, relative_to=folder)
    save_annotations_to_folder(folder, recording)
    if recording.has_probe():
        probeinterface.write_probeinterface(folder / "probegroup.json", recording.get_probegroup())
    binary = sc.BinaryRecordingExtractor(
        file_paths=[folder / raw_name],
        sampling_frequency=recording.get_sampling_frequency(),
        num_channels=recording.get_num_channels(),
        dtype=dtype.str,
        t_starts=recording.get_segment_t_starts(),
        channel_ids=recording.get_channel_ids(),
        time_axis=0,
        file_offset=0,
        is_filtered=recording.is_filtered(),
        gain_to_uV=recording.get_channel_gains(),
        offset_to_uV=recording.get_channel_offsets(),
    )
    binary.dump(folder / "binary.json", relative_to=folder)
    sc.BinaryFolderRecording(folder_path=folder).dump_to_json(
        file_path=folder / "si_folder.json",
        relative_to=folder,
        include_properties=False,
        include_annotations=False,
        include_extra_metadata=False,
    )


def _checked_window(
    recording: sc.BaseRecording,
    start_frame: int,
    end_frame: int | None,
    segment_index: int,
    freq_min: float,
    freq_max: float,
    filtered: bool = True,
) -> tuple[sc.BaseRecording, int, int]:
    """The one-segment recording and the window [start, end) preprocess works on, or an
    InputError for a window or recording it cannot process (`filtered`: the window will be
    bandpassed, so the recording must be long enough for the filter)."""
    fs = float(recording.get_sampling_frequency())
    n_segments = recording.get_num_segments()
    if not 0 <= segment_index < n_segments:
        raise InputError(
            "recording", f"has {n_segments} segment(s); segment_index {segment_index} is invalid"
        )
    if n_segments > 1:
        log.warning(
            "recording has %d segments: using segment %d only (segments %s left out)",
            n_segments,
            segment_index,
            [i for i in range(n_segments) if i != segment_index],
        )
        recording = recording.select_segments([segment_index])
    n_total = recording.get_num_samples()
    start = int(start_frame)
    end = n_total if end_frame is None else int(end_frame)
    if start < 0 or start >= n_total:
        raise InputError(
            "analysis window",
            f"starts at frame {start:,} but the recording has {n_total:,} frames "
            f"({n_total / fs:.3f} s)",
        )
    if end > n_total:
        log.warning(
            "analysis window ends at frame %d, past the recording's %d frames: cut at the end",
            end,
            n_total,
        )
        end = n_total
    if end <= start:
        raise InputError("analysis window", f"is empty (frames {start:,} to {end:,})")
    min_samples = _filtfilt_min_samples(freq_min, freq_max, fs) if filtered else 1
    if n_total < min_samples:
        raise InputError(
            "recording",
            f"has {n_total} samples ({n_total / fs * 1000:.2f} ms); the {freq_min:g}-"
            f"{freq_max:g} Hz zero-phase filter needs at least {min_samples}",
        )
    try:
        recording.get_channel_locations()
    except ValueError as exc:
        raise InputError("recording", "has no channel locations: give it a probe") from exc
    if not recording.has_scaleable_traces():
        raise InputError("recording", "has no gain_to_uV / offset_to_uV: cannot work in uV")
    return recording, start, end


def _ibl_plan(
    bandpassed: sc.BaseRecording, settings: Mapping[str, Any]
) -> tuple[list[tuple[int, int, int]], dict[str, Any]]:
    """The chunks spikeinterface's detect_bad_channels would draw ("coherence+psd"), and what
    the pass needs to label them as it does."""
    if int(settings["num_random_chunks"]) < 1:
        raise InputError("bad_channel_kwargs", "num_random_chunks must be >= 1")
    fs = float(bandpassed.get_sampling_frequency())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # spikeinterface's own draw (same seed, same chunks); it shortens chunks longer than
        # the window, with a warning passed on to the log.
        drawn = get_random_sample_slices(
            bandpassed,
            num_chunks_per_segment=int(settings["num_random_chunks"]),
            chunk_size=int(settings["chunk_duration_s"] * fs),
            seed=settings["seed"],
        )
    for w in caught:
        log.warning("bad-channel detection: %s", w.message)
    slices = [(k, int(a), int(b)) for k, (_, a, b) in enumerate(drawn)]
    locations = bandpassed.get_channel_locations()
    if ["x", "y", "z"].index(settings["direction"]) >= locations.shape[1]:
        raise InputError("bad_channel_kwargs", f"direction {settings['direction']!r}")
    # IBL's neighbour filters assume channels ordered by depth, as spikeinterface orders them.
    order_f, order_r = sc.order_channels_by_depth(recording=bandpassed, dimensions=("x", "y"))
    if np.all(np.diff(order_f) == 1):
        order_f = order_r = None
    ibl = {
        "fs": fs,
        "gains": bandpassed.get_channel_gains().astype(np.float32),
        "offsets": bandpassed.get_channel_offsets().astype(np.float32),
        "order_f": order_f,
        "order_r": order_r,
        "kwargs": {ibl_key: settings[key] for key, ibl_key in _IBL_ARGUMENTS.items()},
    }
    return slices, ibl


@dataclass
class _PassPlan:
    """What a streaming pass over one recording's window needs, checked before it starts."""

    recording: sc.BaseRecording  # the one segment used
    n_segments: int
    segment_index: int
    start: int
    end: int
    fs: float
    freq_min: float
    freq_max: float
    margin: int
    bandpassed: sc.BaseRecording  # lazy, cut to the window
    filter_spec: dict[str, Any] | None  # what _bandpass_chunk needs (None: use get_traces)
    referenced: sc.BaseRecording  # lazy, for the saved folder's provenance
    reference: np.ndarray | None
    channel_ids: np.ndarray
    settings: dict[str, Any]
    method: str | None
    slices: list[tuple[int, int, int]]
    ibl: dict[str, Any] | None
    bad_ids: np.ndarray
    labels: np.ndarray | None
    seconds_detect: float
    jobs: dict[str, Any]


def _plan_pass(
    recording: sc.BaseRecording,
    start_frame: int,
    end_frame: int | None,
    bad_channel_kwargs: Mapping[str, Any] | None,
    job_kwargs: Mapping[str, Any] | None,
    segment_index: int,
    freq_min: float,
    freq_max: float,
) -> _PassPlan:
    n_segments = recording.get_num_segments()
    recording, start, end = _checked_window(
        recording, start_frame, end_frame, segment_index, freq_min, freq_max
    )
    fs = float(recording.get_sampling_frequency())
    bandpassed_full = spre.bandpass_filter(recording, freq_min=freq_min, freq_max=freq_max)
    margin = int(bandpassed_full.margin_samples)
    n_window = end - start
    if n_window < 2 * margin:
        log.warning(
            "analysis window is %d samples (%.1f ms), shorter than twice the filter margin "
            "(2 x %d samples): filter edge effects reach most of it where it touches the "
            "recording's ends",
            n_window,
            n_window / fs * 1000,
            margin,
        )
    bandpassed = bandpassed_full.frame_slice(start, end)
    channel_ids = bandpassed.get_channel_ids()
    # The filter's own coefficients and settings, so the pass filters exactly as it would.
    filter_segment = bandpassed_full._recording_segments[0]
    filter_spec = None
    if (filter_segment.filter_mode, filter_segment.direction) == ("sos", "forward-backward") and (
        not filter_segment.add_reflect_padding
    ):
        filter_spec = {
            "recording": recording,
            "offset": start,
            "margin": int(filter_segment.margin),
            "n_total": recording.get_num_samples(),
            "sos": np.asarray(filter_segment.coeff),
            "dtype": np.dtype(filter_segment.dtype),
        }
    reference = None
    ref_channel_ids = None
    if "connected" in recording.get_property_keys():
        connected = np.asarray(recording.get_property("connected"), dtype=bool)
        if not connected.any():
            raise InputError("channel map", "no channel is connected")
        if not connected.all():
            reference = np.flatnonzero(connected)
            ref_channel_ids = list(channel_ids[reference])
    referenced = spre.common_reference(
        bandpassed, reference="global", operator="median", ref_channel_ids=ref_channel_ids
    )
    jobs = _job_kwargs(job_kwargs)

    settings = _bad_channel_settings(bad_channel_kwargs)
    method = settings["method"]
    labels: np.ndarray | None = None
    slices: list[tuple[int, int, int]] = []
    ibl: dict[str, Any] | None = None
    bad_ids: np.ndarray = np.array([], dtype=channel_ids.dtype)
    seconds_detect = 0.0
    if method in (None, "none"):
        method = None
    elif method == "coherence+psd":
        slices, ibl = _ibl_plan(bandpassed, settings)
    else:
        t0 = time.perf_counter()
        detect_kwargs = {k: v for k, v in settings.items() if k != "method"}
        bad_ids, names = spre.detect_bad_channels(
            bandpassed, method=method, **detect_kwargs, job_kwargs=jobs
        )
        labels = np.asarray(names)
        seconds_detect = time.perf_counter() - t0
    return _PassPlan(
        recording=recording,
        n_segments=n_segments,
        segment_index=segment_index,
        start=start,
        end=end,
        fs=fs,
        freq_min=freq_min,
        freq_max=freq_max,
        margin=margin,
        bandpassed=bandpassed,
        filter_spec=filter_spec,
        referenced=referenced,
        reference=reference,
        channel_ids=channel_ids,
        settings=settings,
        method=method,
        slices=slices,
        ibl=ibl,
        bad_ids=bad_ids,
        labels=labels,
        seconds_detect=seconds_detect,
        jobs=jobs,
    )


def _pass_results(
    plan: _PassPlan,
    results: Sequence[Mapping[str, Any]],
    out_dtype: np.dtype,
    seconds_pass: float,
    started: float,
) -> tuple[list[int], dict[str, Any]]:
    """(bad channel indices, info) of a finished pass."""
    bad_ids, labels = plan.bad_ids, plan.labels
    if plan.method == "coherence+psd":
        per_chunk = np.zeros((len(plan.channel_ids), len(plan.slices)), dtype=np.int64)
        for chunk_result in results:
            for k, chunk_labels in chunk_result.get("labels", []):
                per_chunk[:, k] = chunk_labels
        bad_ids, labels = _labels_from_chunks(
            per_chunk, plan.channel_ids, plan.settings["channel_filters"]
        )
    id_list = list(plan.channel_ids)
    bad_idx = sorted(int(id_list.index(c)) for c in bad_ids)
    settings = plan.settings
    settings_out = {k: v for k, v in settings.items() if k != "channel_filters"}
    if settings["channel_filters"] is not None:
        settings_out["channel_filters"] = sorted(settings["channel_filters"])
    freq = (plan.freq_min, plan.freq_max)
    info: dict[str, Any] = {
        "preprocessing": (
            PREPROCESSING_LABEL
            if freq == (300.0, 3000.0)
            else f"bandpass_{freq[0]:g}_{freq[1]:g}Hz + global_CMR"
        ),
        "segment_index": plan.segment_index,
        "segments_left_out": [i for i in range(plan.n_segments) if i != plan.segment_index],
        "start_frame": plan.start,
        "end_frame": plan.end,
        "n_samples": plan.end - plan.start,
        "sampling_frequency": plan.fs,
        "filter_margin_samples": plan.margin,
        "reference_channels": "connected" if plan.reference is not None else "all",
        "dtype": out_dtype.str,
        "bad_channel_method": plan.method,
        "bad_channel_settings": _jsonable(settings_out),
        "bad_channel_chunks": len(plan.slices),
        "channel_labels": [] if labels is None else [str(x) for x in labels],
        "seconds_bad_channels_separate": round(plan.seconds_detect, 3),
        "seconds_streaming_pass": round(seconds_pass, 3),
        "seconds_total": round(time.perf_counter() - started, 3),
    }
    log.info(
        "preprocessed %d samples x %d channels in %.1f s; %d bad channels: %s",
        plan.end - plan.start,
        len(plan.channel_ids),
        info["seconds_total"],
        len(bad_idx),
        bad_idx,
    )
    return bad_idx, info


def preprocess(
    recording: sc.BaseRecording,
    start_frame: int,
    end_frame: int | None,
    folder: str | Path,
    bad_channel_kwargs: Mapping[str, Any] | None = None,
    job_kwargs: Mapping[str, Any] | None = None,
    *,
    segment_index: int = 0,
    freq_min: float = 300.0,
    freq_max: float = 3000.0,
    dtype: str | None = None,
) -> tuple[sc.BaseRecording, list[int], dict[str, Any]]:
    """Bandpass (5th-order Butterworth, zero phase), global median reference, written once to
    `folder` as a SpikeInterface binary folder; bad channels detected on the bandpassed (not
    referenced) traces. `convert` does the same pass and writes the Arrow datasets instead;
    use this one when the traces themselves are wanted (e.g. to detect peaks on them).

    Window: frames [start_frame, end_frame) of segment `segment_index` (end None: to the end).
    The filter runs on the whole segment and the window is cut afterwards, so the filter's
    margins come from real data on both sides of the window. A recording with several segments
    uses one (default 0) and logs the ones it leaves out: concatenating them would filter across
    the gaps between them.

    Reference: the median over channels whose `connected` property is True (all channels when
    the property is absent): unconnected reference sites carry no signal.

    Bad channels (bad_channel_kwargs: any keyword of spikeinterface.preprocessing.
    detect_bad_channels; default SpikeInterface's, i.e. "coherence+psd" with 100 random chunks
    of 0.3 s, seed 0; "method": None skips detection): for "coherence+psd" the chunks are the
    ones spikeinterface would draw and each is labelled by its IBL detector inside the same
    streaming pass that writes the output, so detection costs no extra filtering. Other methods
    call detect_bad_channels on the lazy bandpassed recording (an extra read and filter).
    `num_random_chunks` sets the cost (about 0.2 s per chunk on 384 channels).

    Short recordings: a segment shorter than the filter's minimum (sosfiltfilt's padding,
    about 34 samples) is an InputError; a window shorter than twice the filter margin (5 periods
    of freq_min, i.e. 2 x 500 samples at 30 kHz) is processed with a warning, since filter edge
    effects then reach most of it when the window touches the recording's ends.
    A window past the end is an InputError; one running past the end is cut with a warning.

    Returns (saved recording, bad channel indices, info); nothing is left in `folder` on error.
    """
    started = time.perf_counter()
    plan = _plan_pass(
        recording,
        start_frame,
        end_frame,
        bad_channel_kwargs,
        job_kwargs,
        segment_index,
        freq_min,
        freq_max,
    )
    out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(plan.referenced.get_dtype())
    folder = Path(folder)
    raw_name = "traces_cached_seg0.raw"
    t0 = time.perf_counter()
    with atomic_directory(folder) as staging:
        raw_path = staging / raw_name
        with open(raw_path, "wb") as handle:
            handle.truncate((plan.end - plan.start) * len(plan.channel_ids) * out_dtype.itemsize)
        executor = TimeSeriesChunkExecutor(
            plan.bandpassed,
            _pass_chunk,
            _pass_init,
            (plan.bandpassed, plan.filter_spec, True, plan.reference, str(raw_path), out_dtype.str)
            + (plan.slices, plan.ibl, None),
            handle_returns=True,
            job_name="spikeforge preprocess",
            **plan.jobs,
        )
        results = executor.run()
        _write_binary_folder_metadata(staging, raw_name, plan.referenced, out_dtype)
    saved = sc.BinaryFolderRecording(folder_path=folder)
    bad_idx, info = _pass_results(plan, results, out_dtype, time.perf_counter() - t0, started)
    return saved, bad_idx, info


def _binary_description(traces: sc.BaseRecording) -> dict[str, Any] | None:
    if traces.get_num_segments() != 1 or not traces.is_binary_compatible():
        return None
    description = traces.get_binary_description()
    if (
        len(description["file_paths"]) != 1
        or description["time_axis"] != 0
        or int(description["num_channels"]) != traces.get_num_channels()
    ):
        return None
    return description


def trace_array(traces: sc.BaseRecording | np.ndarray) -> np.ndarray:
    """[samples, channels] array of a recording: a read-only memmap of a one-segment, one-file
    binary recording (e.g. what preprocess returns); arrays pass through. Other recordings are
    refused: save them first, so later stages never re-run the lazy filter chain."""
    if isinstance(traces, np.ndarray):
        if traces.ndim != 2:
            raise ValueError(f"traces must be [samples, channels], got shape {traces.shape}")
        return traces
    description = _binary_description(traces)
    if description is None:
        raise ValueError(
            f"{type(traces).__name__} is not a one-segment, one-file binary recording: save it "
            "first (preprocess returns one)"
        )
    return np.memmap(
        description["file_paths"][0],
        dtype=np.dtype(description["dtype"]),
        mode="r",
        offset=int(description["file_offset"]),
        shape=(traces.get_num_samples(), traces.get_num_channels()),
    )


class _Rows:
    """Row access to [samples, channels] traces. Arrays (memmaps included) are indexed
    directly. A binary recording's file is read with readinto (blocks) or through a mapping
    opened per gather (scattered rows) and never kept mapped, so resident memory does not
    accumulate the pages of a long recording."""

    def __init__(self, traces: sc.BaseRecording | np.ndarray) -> None:
        self.array: np.ndarray | None = None
        self.handle: Any = None
        if isinstance(traces, np.ndarray):
            self.array = trace_array(traces)
            self.shape = self.array.shape
            self.dtype = self.array.dtype
            return
        mapped = trace_array(traces)
        self.shape, self.dtype = mapped.shape, mapped.dtype
        self.path = str(mapped.filename)
        self.offset = int(mapped.offset)
        del mapped
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        self.handle = open(self.path, "rb")  # noqa: SIM115 - closed by close()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()

    def __enter__(self) -> _Rows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def block(self, a: int, b: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows [a, b), into `out` ([>= b - a, channels], same dtype) when given."""
        if self.array is not None:
            return self.array[a:b]
        rows = np.empty((b - a, self.shape[1]), self.dtype) if out is None else out[: b - a]
        self.handle.seek(self.offset + a * self.row_bytes)
        view = memoryview(rows).cast("B")
        while view.nbytes:
            got = self.handle.readinto(view)
            if not got:
                raise OSError(f"{self.path}: file shorter than its {self.shape[0]} samples")
            view = view[got:]
        return rows

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Copy of the given rows."""
        if self.array is not None:
            return self.array[rows]
        mapped = np.memmap(self.path, self.dtype, "r", offset=self.offset, shape=self.shape)
        try:
            return np.array(mapped[rows])
        finally:
            del mapped


# ==============================================================================================
# Templates
# ==============================================================================================


@dataclass(frozen=True)
class TemplateResult:
    """templates: [1, nbefore + nafter, channels] float32 mean waveform; peak_channel: argmax
    over channels of max |template|; metadata: the keys the original conversion writes."""

    templates: np.ndarray
    peak_channel: int
    metadata: dict[str, Any]


def template_window(fs: float, ms_before: float, ms_after: float) -> tuple[int, int]:
    """(nbefore, nafter) in samples, truncated as the original conversion does."""
    return int(ms_before * fs / 1000.0), int(ms_after * fs / 1000.0)


def peak_aligned_template(
    traces: sc.BaseRecording | np.ndarray,
    spike_samples: np.ndarray,
    fs: float,
    ms_before: float = 1.0,
    ms_after: float = 2.0,
    min_spikes: int = 2,
    batch_size: int = 256,
) -> TemplateResult:
    """Mean of the windows [s - nbefore, s + nafter) around each spike (no realignment).

    `traces` is the saved recording (preprocess's result; best for memory) or any
    [samples, channels] array: windows are gathered with one fancy-index read per batch of
    spikes, so no per-spike call goes through a filter chain and memory is bounded by the
    batch. Sums are float64; the template is float32, in the traces' units. Spikes whose
    window leaves the data are counted in n_out_of_bounds_discarded; fewer than `min_spikes`
    usable spikes give an all-zero template (and peak channel 0, with a warning).
    """
    reader = _Rows(traces)
    n_samples, n_channels = reader.shape
    nbefore, nafter = template_window(fs, ms_before, ms_after)
    width = nbefore + nafter
    spikes = np.asarray(spike_samples, dtype=np.int64).reshape(-1)
    inside = (spikes - nbefore >= 0) & (spikes + nafter <= n_samples)
    used = np.sort(spikes[inside])  # sorted: reads walk the file forwards
    total = np.zeros((width, n_channels), dtype=np.float64)
    offsets = np.arange(-nbefore, nafter, dtype=np.int64)
    with reader:
        for i in range(0, used.size, batch_size):
            rows = (used[i : i + batch_size, None] + offsets[None, :]).reshape(-1)
            windows = reader.gather(rows).reshape(-1, width, n_channels)
            total += windows.sum(axis=0, dtype=np.float64)  # no float64 copy of the batch
    return _template_result(
        total, used.size, spikes.size, nbefore, nafter, ms_before, ms_after, min_spikes
    )


def _template_result(
    total: np.ndarray,
    n_used: int,
    n_total: int,
    nbefore: int,
    nafter: int,
    ms_before: float,
    ms_after: float,
    min_spikes: int,
) -> TemplateResult:
    """The mean template from the float64 sum of the `n_used` windows."""
    if n_used >= min_spikes and n_used > 0:
        template = (total / n_used).astype(np.float32)
    else:
        template = np.zeros(total.shape, dtype=np.float32)
        log.warning(
            "%d usable spikes (< %d): template is all zeros, peak channel 0", n_used, min_spikes
        )
    peak_channel = int(np.argmax(np.max(np.abs(template), axis=0)))
    metadata = {
        "extraction_method": TEMPLATE_METHOD,
        "ms_before": float(ms_before),
        "ms_after": float(ms_after),
        "nbefore": int(nbefore),
        "nafter": int(nafter),
        "n_spikes_total": int(n_total),
        "n_spikes_used": int(n_used),
        "n_out_of_bounds_discarded": int(n_total - n_used),
    }
    return TemplateResult(
        templates=template[np.newaxis], peak_channel=peak_channel, metadata=metadata
    )


# ==============================================================================================
# Export
# ==============================================================================================


def split_segments(
    n_samples: int, seg_len: int, train_fraction: float
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Consecutive segments [s0, s1) of seg_len samples (the last may be shorter); the first
    int(n_segments * train_fraction) are train, the rest test."""
    if seg_len < 1:
        raise ValueError("segment length must be at least one sample")
    segments = [(s, min(s + seg_len, n_samples)) for s in range(0, n_samples, seg_len)]
    n_train = int(len(segments) * train_fraction)
    return segments[:n_train], segments[n_train:]


def arrow_features() -> Any:
    """The datasets Features of a segment row: sample_id str, cit list[list[int32]], ctt
    list[list[float64]] (ms), cp list[list[float32]] (channels x samples)."""
    from datasets import Features, List, Value

    return Features(
        {
            "sample_id": Value("string"),
            "cit": List(List(Value("int32"))),
            "ctt": List(List(Value("float64"))),
            "cp": List(List(Value("float32"))),
        }
    )


def _nested(values: pa.Array, inner_offsets: np.ndarray) -> pa.Array:
    """One row holding a list of per-channel lists."""
    inner = pa.ListArray.from_arrays(pa.array(inner_offsets, type=pa.int32()), values)
    outer = np.array([0, len(inner_offsets) - 1], dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(outer, type=pa.int32()), inner)


def _channel_offsets(n_channels: int, channel: int, n_spikes: int) -> np.ndarray:
    """List offsets of a row whose spikes all sit on `channel` (the other lists empty)."""
    return np.where(np.arange(n_channels + 1) > channel, n_spikes, 0).astype(np.int32)


def _segment_table(
    traces: np.ndarray,
    s0: int,
    spike_rel: np.ndarray,
    fs: float,
    schema: pa.Schema,
    channel: int,
) -> pa.Table:
    """The row of the segment starting at s0 whose traces are `traces` ([samples, channels])."""
    length, n_channels = traces.shape
    cp = np.empty((n_channels, length), np.float32)
    # Transpose in blocks of samples: a whole-segment transposed copy is cache-hostile.
    step = 4096
    for a in range(0, length, step):
        cp[:, a : a + step] = traces[a : a + step].T
    values = pa.Array.from_buffers(pa.float32(), cp.size, [None, pa.py_buffer(cp)])
    cp_col = _nested(values, np.arange(0, n_channels * length + 1, length, dtype=np.int32))

    lo, hi = np.searchsorted(spike_rel, [s0, s0 + length])
    times_ms = (spike_rel[lo:hi] - s0).astype(np.float64) / fs * 1000.0
    spike_offsets = _channel_offsets(n_channels, channel, times_ms.size)
    cit_col = _nested(pa.array(np.zeros(times_ms.size, np.int32)), spike_offsets)
    ctt_col = _nested(pa.array(times_ms), spike_offsets)
    ids = pa.array([f"{s0:010d}"], type=pa.string())
    return pa.Table.from_arrays([ids, cit_col, ctt_col, cp_col], schema=schema)


def _spike_list_positions(path: str) -> list[tuple[int, int]]:
    """(file position, bytes) of the per-channel list offsets of cit and ctt in a one-row Arrow
    stream file: where `_place_spikes` rewrites them once the peak channel is known."""
    with pa.memory_map(path) as source:
        base = source.read_buffer(1).address  # the mapping's first byte
        source.seek(0)
        batch = pa.ipc.open_stream(source).read_next_batch()
        positions = []
        for name in ("cit", "ctt"):
            inner = batch.column(name).values
            offsets = inner.buffers()[1]
            positions.append((offsets.address - base + 4 * inner.offset, 4 * (len(inner) + 1)))
        del batch, inner, offsets
    return positions


def _place_spikes(
    path: str, positions: list[tuple[int, int]], n_channels: int, channel: int, n_spikes: int
) -> None:
    """Move a segment row's spikes to `channel`: the lists keep their sizes, only their
    offsets change, so the file is rewritten in place (a few kB)."""
    offsets = _channel_offsets(n_channels, channel, n_spikes)
    with open(path, "r+b") as handle:
        for position, size in positions:
            if size != offsets.nbytes:
                raise RuntimeError(f"{path}: unexpected list offsets at byte {position}")
            _write_at(handle, position, offsets)


def _segment_file(split_dir: str, index: int, count: int) -> str:
    return os.path.join(split_dir, f"data-{index:05d}-of-{count:05d}.arrow")


def _write_segment(traces: np.ndarray, start: int, export: Mapping[str, Any]) -> dict[str, Any]:
    """Write the chunk's segment as a one-row Arrow stream file, spikes on the placeholder
    channel 0; returns where its spike lists are."""
    k, rest = divmod(start, export["segment_samples"])
    if rest:
        raise RuntimeError(f"chunk at frame {start} is not a segment start")
    split, index, count = export["files"][k]
    path = _segment_file(export["dirs"][split], index, count)
    table = _segment_table(traces, start, export["spikes"], export["fs"], export["schema"], 0)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, export["schema"]) as writer:
        writer.write_table(table)
    return {"k": k, "path": path, "positions": _spike_list_positions(path)}


def _template_sums(traces: np.ndarray, start: int, export: Mapping[str, Any]) -> np.ndarray | None:
    """Sum over the template's spikes of the rows of [s - nbefore, s + nafter) that fall in
    this chunk (float64, so integer traces sum exactly in any order), or None."""
    nbefore, nafter = export["nbefore"], export["nafter"]
    end = start + traces.shape[0]
    spikes = export["template_spikes"]
    lo = np.searchsorted(spikes, start - nafter, side="right")
    hi = np.searchsorted(spikes, end + nbefore, side="left")
    if hi <= lo:
        return None
    near = spikes[lo:hi]
    width = nbefore + nafter
    total = np.zeros((width, traces.shape[1]), dtype=np.float64)
    whole = (near - nbefore >= start) & (near + nafter <= end)
    offsets = np.arange(-nbefore, nafter, dtype=np.int64)
    local = near[whole] - start
    for i in range(0, local.size, 256):
        rows = (local[i : i + 256, None] + offsets[None, :]).reshape(-1)
        total += traces[rows].reshape(-1, width, traces.shape[1]).sum(axis=0, dtype=np.float64)
    for s in near[~whole]:  # windows that cross into a neighbouring chunk
        a, b = max(s - nbefore, start), min(s + nafter, end)
        total[a - (s - nbefore) : b - (s - nbefore)] += traces[a - start : b - start]
    return total


def _split_state(
    split: str, files: list[str], n_channels: int, segments: list[tuple[int, int]], key: str
) -> dict[str, Any]:
    # A fingerprint from what the split holds, so rebuilding it gives the same state.json.
    digest = hashlib.sha256(json.dumps([split, n_channels, segments, key]).encode())
    return {
        "_data_files": [{"filename": name} for name in files],
        "_fingerprint": digest.hexdigest()[:16],
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": None,
    }


def plan_segments(
    n_samples: int,
    fs: float,
    segment_s: float,
    train_fraction: float,
    n_channels: int = NPX_CHANNELS,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The (train, test) segments of a window, or InputError when a split would be empty (the
    message gives the longest segment length that works) or a row would not fit an Arrow list.
    Cheap: call it before preprocessing to refuse a too-short window early."""
    if not 0.0 < train_fraction < 1.0:
        raise InputError("train_fraction", f"{train_fraction} must be between 0 and 1")
    seg_len = int(segment_s * fs)
    if seg_len < 1:
        raise InputError("segment_duration_s", f"{segment_s} s is shorter than one sample")
    if n_channels * seg_len > _MAX_LIST_VALUES:
        raise InputError(
            "segment_duration_s",
            f"{segment_s} s x {n_channels} channels exceeds an Arrow list's 2^31 values",
        )
    train, test = split_segments(n_samples, seg_len, train_fraction)
    if not train or not test:
        needed = next(
            m
            for m in range(2, 10_000)
            if int(m * train_fraction) >= 1 and m - int(m * train_fraction) >= 1
        )
        longest = math.floor(n_samples / needed) / fs
        raise InputError(
            "segment_duration_s",
            f"the window has {n_samples:,} samples ({n_samples / fs:.4g} s): "
            f"{len(train) + len(test)} segment(s) of {segment_s:g} s leave the "
            f"{'train' if not train else 'test'} split empty (train fraction "
            f"{train_fraction:g}); use segments of at most {longest:.4g} s or a longer window",
        )
    return train, test


@dataclass(frozen=True)
class Conversion:
    """What `convert` made besides its files: the template, the bad channels and the pass's
    figures (preprocess's info; empty for already-preprocessed input), and the split sizes."""

    template: TemplateResult
    bad_channels: list[int]
    preprocess: dict[str, Any]
    export: dict[str, Any]


def convert(
    recording: sc.BaseRecording,
    start_frame: int,
    end_frame: int | None,
    spike_rel: np.ndarray,
    out_dir: str | Path,
    *,
    segment_s: float = 3.0,
    train_fraction: float = 0.8,
    ms_before: float = 1.0,
    ms_after: float = 2.0,
    min_spikes: int = 2,
    bad_channel_kwargs: Mapping[str, Any] | None = None,
    job_kwargs: Mapping[str, Any] | None = None,
    preprocessed: bool = False,
    segment_index: int = 0,
    freq_min: float = 300.0,
    freq_max: float = 3000.0,
) -> Conversion:
    """One cell in one streaming pass: preprocess's bandpass + global median reference and
    bad-channel detection, the peak-aligned template and the Arrow datasets, each chunk of the
    recording read and filtered once.

    Writes out_dir/train and out_dir/test (datasets.load_from_disk-able) and
    out_dir/dataset_dict.json. `spike_rel` are spike frames relative to start_frame.
    `preprocessed=True` takes `recording` as already preprocessed (e.g. preprocess's saved
    folder): no filter, reference or bad-channel detection.

    The pass's chunks are the segments (`segment_s`; the first int(n * train_fraction) are
    train), so each worker writes whole rows: one Arrow stream file per segment
    (data-XXXXX-of-YYYYY.arrow, as save_to_disk names its shards) with dataset_info.json and
    state.json. Rows: sample_id "{s0:010d}" (s0 relative to the window start), cp
    [channels][T] float32 traces, cit / ctt [channels][spikes]: unit index 0 and spike times
    in ms from the segment start, on the template's peak channel (other channels empty). The
    peak channel is known only at the end of the pass, so workers put the spikes on channel 0
    and the spike lists' offsets are then rewritten in place.

    Template: as peak_aligned_template on the saved traces (same spikes used, same float64
    sums, hence the same result), accumulated chunk by chunk.

    Memory: a few copies of one segment per worker (about 0.2 GB per second of 384-channel
    data), independent of the recording's length. Nothing is left in out_dir on error; no
    HuggingFace cache is used.
    """
    started = time.perf_counter()
    from datasets import DatasetInfo, load_from_disk

    if preprocessed:
        recording, start, end = _checked_window(
            recording, start_frame, end_frame, segment_index, freq_min, freq_max, filtered=False
        )
        source = recording.frame_slice(start, end)
        plan = None
        jobs = _job_kwargs(job_kwargs)
        reference = filter_spec = None
        slices: list[tuple[int, int, int]] = []
        ibl = None
    else:
        plan = _plan_pass(
            recording,
            start_frame,
            end_frame,
            bad_channel_kwargs,
            job_kwargs,
            segment_index,
            freq_min,
            freq_max,
        )
        source, jobs = plan.bandpassed, plan.jobs
        reference, slices, ibl = plan.reference, plan.slices, plan.ibl
        filter_spec = plan.filter_spec
    fs = float(source.get_sampling_frequency())
    n_samples, n_channels = source.get_num_samples(), source.get_num_channels()
    out_dtype = np.dtype(source.get_dtype() if plan is None else plan.referenced.get_dtype())
    train, test = plan_segments(n_samples, fs, segment_s, train_fraction, n_channels)
    segments = train + test
    seg_len = int(segment_s * fs)
    spikes = np.sort(np.asarray(spike_rel, dtype=np.int64).reshape(-1))
    nbefore, nafter = template_window(fs, ms_before, ms_after)
    used = spikes[(spikes - nbefore >= 0) & (spikes + nafter <= n_samples)]
    for key in ("chunk_size", "chunk_memory", "total_memory", "chunk_duration"):
        jobs.pop(key, None)
    jobs["chunk_size"] = seg_len

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: dict[str, Path] = {}
    t0 = time.perf_counter()
    try:
        for split in ("train", "test"):
            staged[split] = Path(tempfile.mkdtemp(prefix=f".{split}.", dir=out_dir))
        files = [("train", i, len(train)) for i in range(len(train))]
        files += [("test", i, len(test)) for i in range(len(test))]
        features = arrow_features()
        export = {
            "segment_samples": seg_len,
            "files": files,
            "dirs": {split: str(path) for split, path in staged.items()},
            "spikes": spikes,
            "template_spikes": used,
            "nbefore": nbefore,
            "nafter": nafter,
            "fs": fs,
            "schema": features.arrow_schema,
        }
        executor = TimeSeriesChunkExecutor(
            source,
            _pass_chunk,
            _pass_init,
            (source, filter_spec, plan is not None, reference, None, out_dtype.str)
            + (slices, ibl, export),
            handle_returns=True,
            job_name="spikeforge convert",
            **jobs,
        )
        results = executor.run()
        seconds_pass = time.perf_counter() - t0

        total = np.zeros((nbefore + nafter, n_channels), dtype=np.float64)
        for chunk_result in results:
            if chunk_result["template"] is not None:
                total += chunk_result["template"]
        template = _template_result(
            total, used.size, spikes.size, nbefore, nafter, ms_before, ms_after, min_spikes
        )
        written = sorted((r["segment"] for r in results), key=lambda s: s["k"])
        if [s["k"] for s in written] != list(range(len(segments))):
            raise RuntimeError("the pass did not write every segment")
        counts = np.diff(np.searchsorted(spikes, [s for s, _ in segments] + [n_samples]))
        for segment, n_spikes in zip(written, counts, strict=True):
            _place_spikes(
                segment["path"],
                segment["positions"],
                n_channels,
                template.peak_channel,
                int(n_spikes),
            )

        spikes_digest = hashlib.sha256(spikes.tobytes()).hexdigest()
        content_key = f"{template.peak_channel}:{spikes_digest}"
        info = asdict(DatasetInfo(features=features))
        for split, split_rows in (("train", train), ("test", test)):
            count = len(split_rows)
            names = [os.path.basename(_segment_file("", i, count)) for i in range(count)]
            state = _split_state(split, names, n_channels, split_rows, content_key)
            (staged[split] / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
            (staged[split] / "dataset_info.json").write_text(
                json.dumps({k: info[k] for k in sorted(info)}, indent=2)
            )
            loaded = load_from_disk(str(staged[split]))  # memory-mapped: checks the layout
            if len(loaded) != len(split_rows):
                raise RuntimeError(f"{split}: wrote {len(split_rows)} rows, read {len(loaded)}")
            del loaded
        for split, staging in staged.items():
            final = out_dir / split
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
        write_json(out_dir / "dataset_dict.json", DATASET_DICT_JSON, indent=None)
    finally:
        for staging in staged.values():
            shutil.rmtree(staging, ignore_errors=True)

    if plan is not None:
        bad_idx, pass_info = _pass_results(plan, results, out_dtype, seconds_pass, started)
    else:
        bad_idx, pass_info = [], {}
    export_info = {
        "segment_samples": seg_len,
        "n_train": len(train),
        "n_test": len(test),
        "n_channels": n_channels,
        "seconds_total": round(time.perf_counter() - started, 3),
    }
    return Conversion(
        template=template, bad_channels=bad_idx, preprocess=pass_info, export=export_info
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> None:
    """Write JSON atomically (numpy scalars and arrays converted)."""
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(_jsonable(value), indent=indent, ensure_ascii=False))


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
    return _jsonable(metadata)


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


# ==============================================================================================
# Mock SPE-1 cells
# ==============================================================================================


def np1_geometry(n_channels: int = NPX_CHANNELS) -> np.ndarray:
    """Neuropixels 1.0 site positions (um) in channel order: two sites per 20 um row, columns
    staggered at x = 43, 11, 59, 27 (the layout of Kilosort's Phase3A / 3B channel maps)."""
    index = np.arange(n_channels)
    x = np.array([43.0, 11.0, 59.0, 27.0])[index % 4]
    y = 20.0 * (index // 2 + 1)
    return np.column_stack([x, y]).astype(np.float32)


def write_channel_map_mat(path: str | Path, channel_map: ChannelMap) -> None:
    """A Kilosort-format chanMap.mat (chanMap, chanMap0ind, connected, xcoords, ycoords,
    kcoords, shankInd, fs), rows in channel order, written atomically."""
    n = channel_map.n_channels
    save_mat(
        path,
        {
            "chanMap": np.arange(1, n + 1, dtype=np.float64),
            "chanMap0ind": np.arange(n, dtype=np.float64),
            "connected": channel_map.connected.astype(np.float64),
            "xcoords": channel_map.locations[:, 0].astype(np.float64),
            "ycoords": channel_map.locations[:, 1].astype(np.float64),
            "kcoords": np.ones(n),
            "shankInd": np.ones(n),
            "fs": np.array([[NPX_SAMPLING_HZ]]),
        },
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive lock beside `path`, so parallel jobs updating one shared file take turns."""
    lock = path.with_name(f".{path.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upsert_summary_row(path: str | Path, row: Mapping[str, Any]) -> None:
    """Add or replace the row of row["Cell"] in a Data Summary.xlsx (created when absent),
    atomically and under a lock (several mock-cell jobs may share one summary)."""
    import pandas as pd

    path = Path(path)
    with _locked(path):
        if path.is_file():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                frame = pd.read_excel(path)
            frame = frame[frame[SUMMARY_CELL].astype(str) != str(row[SUMMARY_CELL])]
            frame = pd.concat([frame, pd.DataFrame([dict(row)])], ignore_index=True)
        else:
            frame = pd.DataFrame([dict(row)])
        frame = frame.sort_values(
            SUMMARY_CELL, key=lambda s: s.astype(str).str.extract(r"(\d+)")[0].astype(float)
        )
        with atomic_path(path, suffix=".xlsx") as tmp:
            frame.to_excel(tmp, index=False, engine="openpyxl")


@dataclass(frozen=True)
class MockCell:
    """What a mock cell contains, for tests and the demo's report.

    gt_frames: the ground-truth unit's spikes on the Neuropixels clock (absolute frames);
    gt_patch_samples: the same spikes on the patch clock (where the action potentials are);
    gt_peak_channel: argmax over channels of the unit's generator template (|amplitude|).
    """

    cell_id: str
    cell_dir: Path
    npx_path: Path
    patch_path: Path
    wc_spike_path: Path | None
    n_npx: int
    n_patch: int
    patch_rate_hz: float
    gt_unit: int
    gt_frames: np.ndarray
    gt_patch_samples: np.ndarray
    gt_peak_channel: int
    unit_peak_channels: np.ndarray
    channel_map: ChannelMap
    summary: dict[str, Any] = field(default_factory=dict)


def _ap_waveform(fs: float) -> tuple[np.ndarray, int]:
    """A juxtacellular action potential on the patch clock: sharp negative peak (at the
    returned index), slower positive repolarisation; peak value -1."""
    t = np.arange(int(-1e-3 * fs), int(3e-3 * fs) + 1) / fs * 1e3  # ms
    wave = -np.exp(-0.5 * (t / 0.12) ** 2) + 0.25 * np.exp(-0.5 * ((t - 0.55) / 0.3) ** 2)
    peak = int(np.argmin(wave))
    return wave / -wave[peak], peak


def write_mock_spe1_cell(
    root: str | Path,
    cell_id: str,
    duration_s: float = 16.0,
    seed: int = 0,
    *,
    num_units: int = 5,
    patch_rate_hz: float = 50_023.9,
    firing_rate_hz: float = 10.0,
    noise_uv: float = 6.0,
    common_noise_uv: float = 8.0,
    disconnected: Sequence[int] = PHASE3A_REFERENCE_CHANNELS,
    write_wc_spikes: bool = False,
    update_shared: bool = True,
) -> MockCell:
    """Write a mock cell in the SPE-1 layout under `root`:

      root/Recordings/<cell>/<cell>_npx_raw.bin   int16 x 384 interleaved, 30 kHz, 2.34375 uV/count
      root/Recordings/<cell>/<cell>_patch_ch1.bin float64 patch trace (mV) at patch_rate_hz
      root/Recordings/<cell>/<cell>_wc_spike_samples.npy   (write_wc_spikes) patch-clock spikes
      root/chanMap.mat, root/Data Summary.xlsx    (update_shared) shared by all cells

    Neuropixels: spikeinterface's generate_ground_truth_recording on a Neuropixels 1.0 geometry
    (`num_units` units, unit 0 the ground-truth cell: the largest, placed near a site in the
    middle of the probe) plus white noise common to all channels (what a median reference
    removes; IBL bad-channel detection relies on it), per-channel DC offsets, and flat
    `disconnected` sites (Phase3A's reference channels; connected = 0 in chanMap.mat).
    Patch: slow drift, 50 Hz hum and white noise with an action potential at each of unit 0's
    spikes, at patch sample ceil(frame * n_patch / n_npx) so that the chain's length-ratio
    mapping returns the spike's frame. The summary row gives Cell, chan_predicted (unit 0's
    peak channel), the patch rate, the length in minutes and the spike count.
    Deterministic in (seed, cell_id); written chunk by chunk, so memory does not grow with
    duration_s.
    """
    root = Path(root)
    cell_dir = root / "Recordings" / cell_id
    fs = NPX_SAMPLING_HZ
    n_npx = int(round(duration_s * fs))
    n_patch = int(round(duration_s * patch_rate_hz))
    cell_seed = np.random.SeedSequence([seed, zlib.crc32(cell_id.encode())])
    rng = np.random.default_rng(cell_seed.spawn(1)[0])
    base_seed = int(rng.integers(0, 2**31 - 1))

    locations = np1_geometry()
    connected = np.ones(NPX_CHANNELS, dtype=bool)
    connected[list(disconnected)] = False
    channel_map = ChannelMap(
        locations=locations, connected=connected, path=str(root / "chanMap.mat")
    )
    probe = probe_from_channel_map(channel_map)

    # Unit 0 (ground truth) sits 15 um from a connected site in the middle third of the probe.
    candidates = np.flatnonzero(
        connected & (np.arange(NPX_CHANNELS) > 128) & (np.arange(NPX_CHANNELS) < 256)
    )
    site = int(rng.choice(candidates))
    unit_locations = np.zeros((num_units, 3))
    unit_locations[0] = [
        locations[site, 0] + rng.uniform(-4, 4),
        locations[site, 1] + rng.uniform(-4, 4),
        15.0,
    ]
    y_span = (locations[:, 1].min(), locations[:, 1].max())
    for u in range(1, num_units):
        unit_locations[u] = [rng.uniform(0, 70), rng.uniform(*y_span), rng.uniform(20, 50)]
    alpha = np.concatenate([[450.0], rng.uniform(150.0, 300.0, num_units - 1)])
    ms_before, ms_after = 1.5, 3.0
    templates = sc.generate_templates(
        locations.astype(np.float64),
        unit_locations,
        fs,
        ms_before,
        ms_after,
        seed=base_seed,
        unit_params={"alpha": alpha},
    )
    unit_peak_channels = np.argmax(np.max(np.abs(templates), axis=1), axis=1)
    sorting = sc.generate_sorting(
        num_units=num_units,
        sampling_frequency=fs,
        durations=[n_npx / fs],
        firing_rates=firing_rate_hz,
        refractory_period_ms=4.0,
        seed=base_seed,
    )
    recording, sorting = sc.generate_ground_truth_recording(
        durations=[n_npx / fs],
        sampling_frequency=fs,
        sorting=sorting,
        probe=probe,
        templates=templates,
        ms_before=ms_before,
        ms_after=ms_after,
        noise_kwargs={"noise_levels": noise_uv, "strategy": "on_the_fly"},
        seed=base_seed,
    )
    gt_frames = np.sort(sorting.get_unit_spike_train(sorting.unit_ids[0])).astype(np.int64)

    channel_gain = rng.uniform(0.9, 1.1, NPX_CHANNELS).astype(np.float32)
    dc_counts = rng.integers(-40, 40, NPX_CHANNELS).astype(np.float32)
    cell_dir.mkdir(parents=True, exist_ok=True)
    npx_path = cell_dir / f"{cell_id}_{NPX_SUFFIX}"
    chunk = int(fs)
    with atomic_path(npx_path, suffix=".bin") as tmp, open(tmp, "wb") as handle:
        for k, s0 in enumerate(range(0, n_npx, chunk)):
            s1 = min(s0 + chunk, n_npx)
            uv = recording.get_traces(start_frame=s0, end_frame=s1).astype(np.float32)
            chunk_rng = np.random.default_rng(np.random.SeedSequence([base_seed, 1, k]))
            common = chunk_rng.standard_normal(s1 - s0).astype(np.float32) * common_noise_uv
            uv += common[:, None] * channel_gain[None, :]
            uv[:, ~connected] = chunk_rng.standard_normal((s1 - s0, int((~connected).sum()))) * 0.5
            counts = np.round(uv / NPX_GAIN_UV + dc_counts)
            np.clip(counts, -32768, 32767, out=counts)
            counts.astype(NPX_DTYPE).tofile(handle)

    # Patch trace on its own clock.
    gt_patch = -((-gt_frames * n_patch) // n_npx)  # ceil(frame * n_patch / n_npx), exact
    wave, peak = _ap_waveform(patch_rate_hz)
    t = np.arange(n_patch) / patch_rate_hz
    patch = (
        0.8 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi))
        + 0.3 * np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 2 * np.pi))
        + 0.05 * np.sin(2 * np.pi * 50.0 * t)
        + 0.012 * rng.standard_normal(n_patch)
    )
    amplitudes = rng.uniform(0.6, 1.2, gt_patch.size)
    for sample, amp in zip(gt_patch, amplitudes, strict=True):
        a = sample - peak
        lo, hi = max(a, 0), min(a + wave.size, n_patch)
        patch[lo:hi] += amp * wave[lo - a : hi - a]
    patch_path = cell_dir / f"{cell_id}_{PATCH_SUFFIX}"
    with atomic_path(patch_path, suffix=".bin") as tmp:
        patch.astype("<f8").tofile(tmp)
    wc_path = None
    if write_wc_spikes:
        wc_path = cell_dir / f"{cell_id}_{WC_SPIKE_SUFFIX}"
        with atomic_path(wc_path, suffix=".npy") as tmp:
            np.save(tmp, gt_patch.astype(np.int64))

    gt_peak = int(unit_peak_channels[0])
    row = {
        SUMMARY_CELL: cell_id,
        SUMMARY_CHANNEL: gt_peak,
        SUMMARY_PATCH_RATE: float(patch_rate_hz),
        "Recording Length (mins)": n_npx / fs / 60.0,
        "# Patch Spikes": int(gt_frames.size),
    }
    if update_shared:
        write_channel_map_mat(root / "chanMap.mat", channel_map)
        upsert_summary_row(root / "Data Summary.xlsx", row)
    return MockCell(
        cell_id=cell_id,
        cell_dir=cell_dir,
        npx_path=npx_path,
        patch_path=patch_path,
        wc_spike_path=wc_path,
        n_npx=n_npx,
        n_patch=n_patch,
        patch_rate_hz=float(patch_rate_hz),
        gt_unit=0,
        gt_frames=gt_frames,
        gt_patch_samples=gt_patch.astype(np.int64),
        gt_peak_channel=gt_peak,
        unit_peak_channels=unit_peak_channels,
        channel_map=channel_map,
        summary=row,
    )

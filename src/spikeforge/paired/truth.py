"""Ground-truth spikes of a paired cell: the dataset's own wc_spike_samples.npy, else action
potentials detected on the patch trace (streamed, exact), mapped to the Neuropixels clock; and
SpikeInterface peak detection for recordings without a patch."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.signal
import spikeinterface.core as sc

from spikeforge.core.errors import InputError
from spikeforge.paired.spe1 import NPX_SAMPLING_HZ, CellFiles
from spikeforge.paired.streaming import resolve_job_kwargs

log = logging.getLogger(__name__)

SOURCE_WC_SPIKES = "wc_spike_samples.npy (authoritative GT)"
SOURCE_PATCH_DETECTION = "detect_spikes_from_patch (fallback)"


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

        centre = median_streamed(cores, n)
        spread = 1.4826 * median_streamed(lambda: (np.abs(c - centre) for c in cores()), n)
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


def median_streamed(stream: Any, n: int, bins: int = 1 << 16, limit: int = 1 << 20) -> float:
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


def detect_peak_spikes(
    recording: sc.BaseRecording,
    channel: int | None = None,
    detect_threshold: float = 5.0,
    peak_sign: Literal["neg", "pos", "both"] = "neg",
    exclude_sweep_ms: float = 1.0,
    job_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
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
    jobs = resolve_job_kwargs(job_kwargs)
    noise = sc.get_noise_levels(
        recording,
        return_in_uV=False,
        random_slices_kwargs={"num_chunks_per_segment": 20, "chunk_size": chunk, "seed": seed},
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

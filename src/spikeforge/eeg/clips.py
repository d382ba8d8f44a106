"""Raw neural-mass recordings to rescaled spike clips (docs/eeg-chain.md §3-4), streamed.

Two passes over the chunks keep memory independent of the recording length: the first
decimates, finds every peak and accumulates column means (and keeps the spiking region's own
trace); the second accumulates the scale factor's noise power and stages the clips' rows in a
temporary file, from which the clips are finished one at a time.
All indices here are 0-based; the 1-based rules of docs/eeg-chain.md are converted where
they are applied.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_directory, atomic_path
from spikeforge.eeg.raw import (
    FSAVERAGE_RAW_REGIONS,
    Preprocessing,
    decimated_chunks,
    raw_chunk_paths,
    raw_shape,
)
from spikeforge.io.mat import save_mat

log = logging.getLogger(__name__)

CLIP_SAMPLES = 500


@dataclass(frozen=True)
class Detection:
    threshold_mv: float = 8.0
    min_separation: int = 100  # samples between consecutive peaks of the time-sorted list
    before: int = 249  # a kept peak needs this many samples before it ...
    after: int = 251  # ... and after it (1-based t + 250 < n)
    clear_before: int = 200  # no other region's peak in [clip start - 200, clip start + 699]
    clear_after: int = 699
    target_snr_db: float = 15.0
    alpha_window: tuple[int, int] = (-99, 100)  # rows around each peak for the SNR powers


class PeakFinder:
    """Strict local maxima along time of the data with values below the threshold set to 0,
    fed chunk by chunk; each row is judged once both its neighbours have been seen."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._tail = None  # last two rows seen
        self._times: list[np.ndarray] = []
        self._chans: list[np.ndarray] = []
        self.n_rows = 0
        self.sums: np.ndarray | None = None

    def feed(self, chunk: np.ndarray) -> None:
        clipped = np.where(chunk < self.threshold, 0.0, chunk)
        total = chunk.sum(axis=0, dtype=np.float64)
        self.sums = total if self.sums is None else self.sums + total
        block = clipped if self._tail is None else np.concatenate([self._tail, clipped])
        base = self.n_rows - (0 if self._tail is None else self._tail.shape[0])
        if block.shape[0] >= 3:
            centre = block[1:-1]
            t, c = np.nonzero((centre > block[:-2]) & (centre > block[2:]))
            self._times.append(t + 1 + base)
            self._chans.append(c)
        self.n_rows += chunk.shape[0]
        self._tail = block[-2:]

    def peaks(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, channels) sorted by time, then channel."""
        if not self._times:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        times = np.concatenate(self._times).astype(np.int64)
        chans = np.concatenate(self._chans).astype(np.int64)
        order = np.lexsort((chans, times))
        return times[order], chans[order]


def keep_separated(times: np.ndarray, chans: np.ndarray, n_rows: int, det: Detection):
    """docs/eeg-chain.md §3: away from both ends, and more than min_separation after the previous
    peak of the whole sorted list (the first peak counts as separated)."""
    separated = np.ones(times.size, bool)
    separated[1:] = np.diff(times) > det.min_separation
    keep = separated & (times >= det.before) & (times + det.after < n_rows)
    return times[keep], chans[keep]


def clip_start(times: np.ndarray) -> np.ndarray:
    """0-based start of the 500-sample clip holding each peak (1-based floor(t/500)*500 + 1)."""
    return (times + 1) // CLIP_SAMPLES * CLIP_SAMPLES


def select_region_peaks(times, chans, region: int, det: Detection) -> np.ndarray:
    """docs/eeg-chain.md §3: the region's peaks whose clip window has no other region's peak."""
    own = times[chans == region]
    others = np.sort(times[chans != region])
    starts = clip_start(own)
    lo = np.searchsorted(others, starts - det.clear_before, side="left")
    hi = np.searchsorted(others, starts + det.clear_after, side="right")
    return own[hi == lo]


def spike_alpha(
    rows: np.ndarray,
    means: np.ndarray,
    region_trace_rows: np.ndarray,
    fwd: np.ndarray,
    region: int,
    target_snr_db: float,
) -> float:
    """docs/eeg-chain.md §4: alpha = sqrt(10^(SNR/10) Pn / Ps) on the rows around the kept peaks.

    rows: the data at the window rows (with repeats, as windows may overlap), all regions;
    means: every region's mean over the whole recording (the centring of both powers).
    Ps is the sensor power of region `region` alone, Pn that of every other region.
    """
    others = np.ones(fwd.shape[1], bool)
    others[region] = False
    noise = (rows[:, others] - means[others]) @ fwd[:, others].T
    pn = float(np.sum(noise**2)) / rows.shape[0]
    return _alpha(_signal_power(region_trace_rows, means, fwd, region), pn, region, target_snr_db)


def _signal_power(
    region_trace_rows: np.ndarray, means: np.ndarray, fwd: np.ndarray, region: int
) -> float:
    """Ps: mean sensor power of region `region` alone over the given rows."""
    x_r = region_trace_rows - means[region]
    gain = fwd[:, region]
    return float(gain @ gain) * float(x_r @ x_r) / x_r.size


def _alpha(
    ps: float, pn: float, region: int, target_snr_db: float, where: str | Path = "leadfield"
) -> float:
    if ps <= 0:
        raise InputError(
            where,
            f"region {region} has no sensor signal power around its peaks (its leadfield "
            "column is zero or its trace is flat there): its spikes cannot be scaled",
        )
    return float(np.sqrt(10 ** (target_snr_db / 10) * pn / ps))


def _near_zero(sig: np.ndarray, threshold: float) -> np.ndarray:
    positions = np.flatnonzero(np.abs(sig) < threshold) + 1  # 1-based, as the reference counts
    return positions[(positions >= 50) & (positions <= 450)]


def rescale_trace(trace: np.ndarray, peaks: np.ndarray, alpha: float) -> np.ndarray:
    """docs/eeg-chain.md §4: scale only each spike (between the near-zero samples that bracket it)
    of the mean-removed trace by alpha, peak by peak in time order, then add the mean back."""
    mean = trace.mean(dtype=np.float64)
    x = trace.astype(np.float64) - mean
    for t in peaks:
        sig = x[t - 249 : t + 251].copy()  # 500 samples, the peak at 1-based position 250
        threshold = 0.1
        near = _near_zero(sig, threshold)
        while not np.any(near < 250):
            threshold += 0.05
            near = _near_zero(sig, threshold)
        start = near[near < 250][-1]
        # 1-based position of the trough within 301..400, plus one (DeepSIF's reference).
        after = int(np.argmin(sig[300:400])) + 302
        while not np.any(near > after):
            threshold += 0.05
            near = _near_zero(sig, threshold)
        end = near[near > after][0]
        sig[start - 1 : end] *= alpha
        x[t - 249 : t + 251] = sig
    return x + mean


@dataclass
class RegionClips:
    """Clips of one spiking region with their provenance (clips only when no on_clip sink was
    given to process_region)."""

    clips: list[np.ndarray]  # each 500 x R float32
    iteration: list[int]
    peak_time: list[int]  # 0-based sample at the preprocessed rate
    clip_start: list[int]
    alpha: list[float]
    messages: list[str]


class _ClipStage:
    """The unscaled rows of an iteration's clips, written as pass 2 reads them, to a temporary
    file ([clip, 500, regions] float32): the clips are finished only once the scale factor,
    which needs the whole pass, is known, and holding them in memory would grow with their
    number."""

    def __init__(self, starts: np.ndarray, width: int) -> None:
        self.starts = starts
        self.ends = starts + CLIP_SAMPLES
        self.row_bytes = width * 4
        self.width = width
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()

    def feed(self, chunk: np.ndarray, offset: int) -> None:
        end = offset + chunk.shape[0]
        first = int(np.searchsorted(self.ends, offset, side="right"))
        last = int(np.searchsorted(self.starts, end, side="left"))
        for i in range(first, last):
            a, b = max(int(self.starts[i]), offset), min(int(self.ends[i]), end)
            rows = np.ascontiguousarray(chunk[a - offset : b - offset], dtype=np.float32)
            position = (i * CLIP_SAMPLES + a - int(self.starts[i])) * self.row_bytes
            self.file.seek(position)
            self.file.write(rows.data)

    def clip(self, i: int) -> np.ndarray:
        out = np.empty((CLIP_SAMPLES, self.width), dtype=np.float32)
        self.file.seek(i * CLIP_SAMPLES * self.row_bytes)
        if self.file.readinto(memoryview(out).cast("B")) != out.nbytes:
            raise OSError("clip staging file is shorter than its clips")
        return out

    def close(self) -> None:
        self.file.close()


def process_region(
    raw_dir: str | Path,
    region: int,
    iterations: list[int],
    fwd: np.ndarray,
    prep: Preprocessing,
    det: Detection,
    on_clip: Callable[[np.ndarray], None] | None = None,
    expected_chunks: int | None = None,
) -> RegionClips:
    """Raw chunk files of every iteration of one spiking region -> its rescaled clips
    (region_clips over the files' preprocessed rows)."""
    n_regions = fwd.shape[1]
    recordings = []
    for iteration in iterations:
        paths = raw_chunk_paths(raw_dir, region, iteration, expected_chunks)
        _, width = raw_shape(paths)
        expected = FSAVERAGE_RAW_REGIONS if prep.fsaverage_remap else n_regions
        if width != expected:
            raise InputError(
                paths[0],
                f"raw data has {width} regions, the leadfield {n_regions}"
                + (
                    f" (fsaverage remap expects {FSAVERAGE_RAW_REGIONS})"
                    if prep.fsaverage_remap
                    else ""
                ),
                key="data",
            )
        recordings.append(
            Recording(iteration, paths[0].parent, lambda paths=paths: decimated_chunks(paths, prep))
        )
    return region_clips(region, recordings, fwd, det, on_clip)


@dataclass(frozen=True)
class Recording:
    """One iteration of a spiking region's simulation as preprocessed (500 Hz, remapped)
    rows: `chunks()` starts a new pass over them; `where` names it in messages."""

    iteration: int
    where: Path
    chunks: Callable[[], Iterator[np.ndarray]]


def region_clips(
    region: int,
    recordings: list[Recording],
    fwd: np.ndarray,
    det: Detection,
    on_clip: Callable[[np.ndarray], None] | None = None,
) -> RegionClips:
    """The preprocessed recordings of one spiking region -> its rescaled clips, two passes
    over each.

    Each finished clip (500 x R float32) goes to `on_clip` in order and is not kept; without
    `on_clip` the clips are collected in the result's `clips`. Memory does not grow with the
    recording's length or its number of clips, apart from the spiking region's own trace.
    """
    out = RegionClips([], [], [], [], [], [])
    others = np.ones(fwd.shape[1], bool)
    others[region] = False
    for recording in recordings:
        iteration, where, chunks = recording.iteration, recording.where, recording.chunks
        finder = PeakFinder(det.threshold_mv)
        trace_parts = []
        for chunk in chunks():
            finder.feed(chunk)
            trace_parts.append(chunk[:, region].astype(np.float64))
        trace = np.concatenate(trace_parts) if trace_parts else np.zeros(0)
        times, chans = finder.peaks()
        times, chans = keep_separated(times, chans, finder.n_rows, det)
        peaks = select_region_peaks(times, chans, region, det)
        if peaks.size == 0:
            out.messages.append(
                f"region {region} iteration {iteration}: no peak passes the selection"
            )
            continue
        means = finder.sums / finder.n_rows
        offsets = np.arange(det.alpha_window[0], det.alpha_window[1] + 1)
        alpha_rows = np.clip((peaks[:, None] + offsets).ravel(), 0, finder.n_rows - 1)
        starts = clip_start(peaks)
        fits = starts + CLIP_SAMPLES <= finder.n_rows
        if not np.all(fits):
            out.messages.append(
                f"region {region} iteration {iteration}: {np.sum(~fits)} peak(s) whose clip "
                "would run past the end of the recording were skipped"
            )

        # Pass 2: the noise power over the alpha rows (each counted as often as the windows
        # hold it) and the clips' rows, chunk by chunk.
        unique_rows, counts = np.unique(alpha_rows, return_counts=True)
        noise_sum = 0.0
        stage = _ClipStage(starts[fits], width=fwd.shape[1])
        try:
            offset = 0
            for chunk in chunks():
                lo, hi = np.searchsorted(unique_rows, [offset, offset + chunk.shape[0]])
                if hi > lo:
                    rows = chunk[unique_rows[lo:hi] - offset]
                    noise = (rows[:, others] - means[others]) @ fwd[:, others].T
                    noise_sum += float(np.sum(counts[lo:hi, None] * noise**2))
                stage.feed(chunk, offset)
                offset += chunk.shape[0]
            ps = _signal_power(trace[alpha_rows], means, fwd, region)
            alpha = _alpha(ps, noise_sum / alpha_rows.size, region, det.target_snr_db, where)
            scaled = rescale_trace(trace, peaks, alpha)
            for i, (t, s) in enumerate(zip(peaks[fits], starts[fits], strict=True)):
                clip = stage.clip(i)
                clip[:, region] = scaled[s : s + CLIP_SAMPLES]
                if on_clip is None:
                    out.clips.append(clip)
                else:
                    on_clip(clip)
                out.iteration.append(iteration)
                out.peak_time.append(int(t))
                out.clip_start.append(int(s))
                out.alpha.append(alpha)
        finally:
            stage.close()

    return out


def extract_region_clips(
    raw_dir: str | Path,
    region: int,
    iterations: list[int],
    anatomy_path: str | Path,
    preprocessing: Mapping[str, Any],
    detection: Mapping[str, Any],
    clips_dir: str | Path,
    info_path: str | Path,
    expected_chunks: int | None = None,
) -> RegionClips:
    """The extract_clips job: one spiking region's clips written as `nmm_{j}.mat` (key `data`)
    into `clips_dir` as each is finished, and their provenance (iteration, peak time, clip start,
    alpha, messages) to `info_path` (JSON). Both appear only when complete."""
    from spikeforge.eeg.anatomy import read_anatomy

    fwd = read_anatomy(anatomy_path).leadfield
    settings = detection_settings(detection)
    prep = Preprocessing(**preprocessing)
    return write_region_clips(
        region,
        lambda on_clip: process_region(raw_dir, region, iterations, fwd, prep, settings,
                                       on_clip=on_clip, expected_chunks=expected_chunks),
        clips_dir,
        info_path,
    )  # fmt: skip


def detection_settings(detection: Mapping[str, Any]) -> Detection:
    """The config's eeg.detection as Detection."""
    return Detection(
        threshold_mv=detection["threshold_mv"], target_snr_db=detection["target_snr_db"]
    )


def write_region_clips(
    region: int,
    extract: Callable[[Callable[[np.ndarray], None]], RegionClips],
    clips_dir: str | Path,
    info_path: str | Path,
) -> RegionClips:
    """Clips of one spiking region, as `extract(on_clip)` hands them over, written as
    `nmm_{j}.mat` (key `data`) into `clips_dir`, and their provenance (iteration, peak time,
    clip start, alpha, messages) to `info_path` (JSON). Both appear only when complete."""
    with atomic_directory(clips_dir) as staging:
        written: list[int] = []

        def save_clip(clip: np.ndarray) -> None:
            # j counts from 1 and continues across iterations, as DeepSIF numbers its clips.
            written.append(len(written) + 1)
            save_mat(staging / f"nmm_{written[-1]}.mat", {"data": clip})

        result = extract(save_clip)
    for message in result.messages:
        log.warning(message)
    clips = [
        {
            "j": j,
            "iteration": result.iteration[j - 1],
            "peak_time": result.peak_time[j - 1],
            "clip_start": result.clip_start[j - 1],
            "alpha": result.alpha[j - 1],
        }
        for j in written
    ]
    info = {"region": region, "clips": clips, "messages": result.messages}
    with atomic_path(info_path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    log.info("region %d: %d clips", region, len(clips))
    return result

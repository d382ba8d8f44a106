"""Raw neural-mass recordings to spike clips (deepsif.md sections 2-4), streamed chunk by chunk.

Raw layout (DeepSIF's TVB output): raw_nmm/a{r}/mean_iter_{m}_a_iter_{r}_{k}.mat with `data`
(time x regions, mV, 2 kHz), `time` (ms) and `A`; chunks k = 0, 1, ... in time order.

Two passes over the chunks keep memory independent of the recording length: the first
decimates, finds every peak and accumulates column means (and keeps the spiking region's own
trace); the second accumulates the scale factor's noise power and stages the clips' rows in a
temporary file, from which the clips are finished one at a time.
All indices here are 0-based; deepsif.md's 1-based rules are converted where they are applied.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal

from spikeforge.errors import InputError
from spikeforge.matio import load_mat, mat_variable_shape

RAW_FS = 2000.0
CLIP_SAMPLES = 500
# fsaverage5 (998 -> 994 regions): 1-based columns 995, 998, 997, 996 fill 8, 326, 922, 950.
FSAVERAGE_SOURCES = np.array([994, 997, 996, 995])
FSAVERAGE_TARGETS = np.array([7, 325, 921, 949])
FSAVERAGE_REGIONS = 994


@dataclass(frozen=True)
class Preprocessing:
    burn_in: int = 1000  # raw samples dropped at the start (unconverged simulation)
    factor: int = 4  # 2 kHz -> 500 Hz
    decimation: str = "take"  # "take": every factor-th sample (DeepSIF); "antialias": FIR first
    fsaverage_remap: bool = False


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


def raw_chunk_paths(raw_dir: str | Path, region: int, iteration: int) -> list[Path]:
    """The chunk files of one simulation in k order; a gap in k is an error naming it."""
    folder = Path(raw_dir) / f"a{region}"
    pattern = re.compile(rf"^mean_iter_{iteration}_a_iter_{region}_(\d+)\.mat$")
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = pattern.match(path.name)
            if match:
                found[int(match.group(1))] = path
    if not found:
        raise InputError(folder, f"no raw chunks mean_iter_{iteration}_a_iter_{region}_<k>.mat")
    missing = sorted(set(range(max(found) + 1)) - set(found))
    if missing:
        name = f"mean_iter_{iteration}_a_iter_{region}_{missing[0]}.mat"
        raise InputError(
            folder / name,
            f"raw chunk missing from the sequence 0..{max(found)} ({len(missing)} missing)",
        )
    return [found[k] for k in sorted(found)]


def raw_shape(paths: list[Path]) -> tuple[int, int]:
    """(total raw samples, regions) from the chunk headers; region counts must agree."""
    total, width = 0, None
    for path in paths:
        shape = mat_variable_shape(path, ["data"])
        if len(shape) != 2:
            raise InputError(path, f"data must be time x regions, got {shape}", key="data")
        if width is not None and shape[1] != width:
            raise InputError(path, f"{shape[1]} regions, earlier chunks have {width}", key="data")
        width = shape[1]
        total += shape[0]
    return total, int(width)


def _raw_chunks(paths: list[Path]) -> Iterator[np.ndarray]:
    for path in paths:
        data = np.asarray(load_mat(path, ["data"]).get("data"), dtype=np.float32)
        if data.ndim != 2 or not np.all(np.isfinite(data)):
            raise InputError(path, "data must be a finite time x regions matrix", key="data")
        yield data


def _antialias_filter(factor: int) -> np.ndarray:
    # Linear phase, 16 * factor + 1 taps (so the group delay is a whole number of output
    # samples), cut-off at 80 % of the new Nyquist frequency.
    return scipy.signal.firwin(16 * factor + 1, 0.8 / factor)


def _decimate_rows(x: np.ndarray, first: int, count: int, factor: int, taps) -> np.ndarray:
    """Rows first, first + factor, ... (count of them) of x, FIR-filtered around each
    (zero-phase, zero padding outside x) when taps are given."""
    if taps is None:
        return x[first : first + factor * count : factor]
    half = (taps.size - 1) // 2
    lo, hi = first - half, first + factor * (count - 1) + half + 1
    segment = x[max(lo, 0) : min(hi, x.shape[0])]
    segment = np.pad(segment, ((max(0, -lo), max(0, hi - x.shape[0])), (0, 0)))
    # upfirdn output n is full-convolution index factor * n; centre i sits at 2 * half + factor * i.
    full = scipy.signal.upfirdn(taps, segment, up=1, down=factor, axis=0)
    skip = 2 * half // factor
    return full[skip : skip + count].astype(np.float32)


def decimated_chunks(paths: list[Path], prep: Preprocessing) -> Iterator[np.ndarray]:
    """Pass over the raw chunks yielding preprocessed rows: output row i is raw row
    burn_in + factor * i (filtered first with decimation='antialias'), then remapped."""
    taps = _antialias_filter(prep.factor) if prep.decimation == "antialias" else None
    half = 0 if taps is None else (taps.size - 1) // 2
    buffer = np.zeros((0, 0), np.float32)
    buffer_start = 0  # global raw index of buffer[0]
    next_out = prep.burn_in  # global raw index of the next output row
    chunks = _raw_chunks(paths)
    done = False
    while not done:
        chunk = next(chunks, None)
        done = chunk is None
        if not done:
            buffer = chunk if buffer.size == 0 else np.concatenate([buffer, chunk])
        end = buffer_start + buffer.shape[0]  # one past the last raw row seen
        # Rows whose filter window is complete (all rows at the end of the recording).
        last = end - 1 if done else end - 1 - half
        if last >= next_out:
            count = (last - next_out) // prep.factor + 1
            rows = _decimate_rows(buffer, next_out - buffer_start, count, prep.factor, taps)
            yield remap(rows, prep)
            next_out += count * prep.factor
        keep_from = min(max(next_out - half, buffer_start), end)
        buffer = buffer[keep_from - buffer_start :]
        buffer_start = keep_from


def remap(rows: np.ndarray, prep: Preprocessing) -> np.ndarray:
    if not prep.fsaverage_remap:
        return rows
    if rows.shape[1] < 998:
        raise InputError(
            "preprocessing.fsaverage_remap", f"needs 998 raw regions, the data has {rows.shape[1]}"
        )
    rows = rows.copy()
    rows[:, FSAVERAGE_TARGETS] = rows[:, FSAVERAGE_SOURCES]
    return rows[:, :FSAVERAGE_REGIONS]


def preprocess(raw: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """In-memory preprocessing of a whole recording (small data, tests)."""
    taps = _antialias_filter(prep.factor) if prep.decimation == "antialias" else None
    count = max(0, (raw.shape[0] - prep.burn_in + prep.factor - 1) // prep.factor)
    return remap(_decimate_rows(raw, prep.burn_in, count, prep.factor, taps), prep)


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
    """deepsif.md 3.2: away from both ends, and more than min_separation after the previous
    peak of the whole sorted list (the first peak counts as separated)."""
    separated = np.ones(times.size, bool)
    separated[1:] = np.diff(times) > det.min_separation
    keep = separated & (times >= det.before) & (times + det.after < n_rows)
    return times[keep], chans[keep]


def clip_start(times: np.ndarray) -> np.ndarray:
    """0-based start of the 500-sample clip holding each peak (1-based floor(t/500)*500 + 1)."""
    return (times + 1) // CLIP_SAMPLES * CLIP_SAMPLES


def select_region_peaks(times, chans, region: int, det: Detection) -> np.ndarray:
    """deepsif.md 3.3: the region's peaks whose clip window has no other region's peak."""
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
    """deepsif.md 4.1: alpha = sqrt(10^(SNR/10) Pn / Ps) on the rows around the kept peaks.

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


def _alpha(ps: float, pn: float, region: int, target_snr_db: float) -> float:
    if ps <= 0:
        raise ValueError(f"region {region} has no signal power around its peaks")
    return float(np.sqrt(10 ** (target_snr_db / 10) * pn / ps))


def _near_zero(sig: np.ndarray, threshold: float) -> np.ndarray:
    positions = np.flatnonzero(np.abs(sig) < threshold) + 1  # 1-based, as deepsif.md counts
    return positions[(positions >= 50) & (positions <= 450)]


def rescale_trace(trace: np.ndarray, peaks: np.ndarray, alpha: float) -> np.ndarray:
    """deepsif.md 4.2: scale only each spike (between the near-zero samples that bracket it)
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
) -> RegionClips:
    """Raw chunks of every iteration of one spiking region -> its rescaled clips.

    Each finished clip (500 x R float32) goes to `on_clip` in order and is not kept; without
    `on_clip` the clips are collected in the result's `clips`. Memory does not grow with the
    recording's length or its number of clips, apart from the spiking region's own trace.
    """
    out = RegionClips([], [], [], [], [], [])
    n_regions = fwd.shape[1]
    others = np.ones(n_regions, bool)
    others[region] = False
    for iteration in iterations:
        paths = raw_chunk_paths(raw_dir, region, iteration)
        n_raw, width = raw_shape(paths)
        expected = 998 if prep.fsaverage_remap else n_regions
        if width != expected:
            raise InputError(
                paths[0],
                f"raw data has {width} regions, the leadfield {n_regions}"
                + (" (fsaverage remap expects 998)" if prep.fsaverage_remap else ""),
                key="data",
            )
        finder = PeakFinder(det.threshold_mv)
        trace_parts = []
        for chunk in decimated_chunks(paths, prep):
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
        stage = _ClipStage(starts[fits], width=n_regions)
        try:
            offset = 0
            for chunk in decimated_chunks(paths, prep):
                lo, hi = np.searchsorted(unique_rows, [offset, offset + chunk.shape[0]])
                if hi > lo:
                    rows = chunk[unique_rows[lo:hi] - offset]
                    noise = (rows[:, others] - means[others]) @ fwd[:, others].T
                    noise_sum += float(np.sum(counts[lo:hi, None] * noise**2))
                stage.feed(chunk, offset)
                offset += chunk.shape[0]
            ps = _signal_power(trace[alpha_rows], means, fwd, region)
            alpha = _alpha(ps, noise_sum / alpha_rows.size, region, det.target_snr_db)
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


def write_mock_raw(
    folder: str | Path,
    region: int,
    iterations: list[int],
    n_regions: int,
    duration_s: float,
    chunk_s: float,
    seed: int,
) -> list[Path]:
    """Seeded mock of one spiking region's TVB output in the raw layout (2 kHz, mV).

    Every region carries slow background activity below the 8 mV threshold; region `region`
    fires spikes (a sharp peak of 18-30 mV and a slow negative wave) every 1.2-2.5 s, and some
    of them propagate to another region within 300 ms, as coupled neural masses do.
    """
    from spikeforge.matio import save_mat
    from spikeforge.seeding import STREAM_MOCK, rng_for

    folder = Path(folder)
    n = int(round(duration_s * RAW_FS))
    per_chunk = int(round(chunk_s * RAW_FS))
    t = np.arange(n) / RAW_FS
    written = []
    for iteration in iterations:
        gen = rng_for(seed, "mock_raw", region * 10 + iteration, STREAM_MOCK)
        freqs = gen.uniform(0.5, 10.0, (4, n_regions))
        amps = gen.uniform(0.2, 0.6, (4, n_regions))
        phases = gen.uniform(0, 2 * np.pi, (4, n_regions))
        data = np.full((n, n_regions), 3.0)
        for i in range(4):
            data += amps[i] * np.sin(2 * np.pi * np.outer(t, freqs[i]) + phases[i])
        data += 0.05 * gen.standard_normal((n, n_regions))
        event = 0.8 + gen.uniform(0.0, 1.0)  # seconds; the burn-in (0.5 s) stays quiet
        samples = np.arange(n)
        while event < duration_s - 0.5:
            centre = event * RAW_FS
            amplitude = gen.uniform(18.0, 30.0)
            window = slice(max(0, int(centre) - 2000), min(n, int(centre) + 2000))
            s = samples[window]
            shape = amplitude * np.exp(-0.5 * ((s - centre) / 8.0) ** 2) - 0.3 * amplitude * (
                np.exp(-0.5 * ((s - centre - 200) / 80.0) ** 2)
            )
            data[window, region] += shape
            if gen.random() < 0.15:
                other = int(gen.integers(n_regions - 1))
                other += other >= region
                shift = int(gen.uniform(-600, 600))
                data[window, other] += np.roll(shape, shift)
            event += gen.uniform(1.2, 2.5)
        data = data.astype(np.float32)
        a_values = np.full((1, n_regions), 3.25)
        a_values[0, region] = 3.5
        for k, start in enumerate(range(0, n, per_chunk)):
            path = folder / f"a{region}" / f"mean_iter_{iteration}_a_iter_{region}_{k}.mat"
            part = slice(start, min(n, start + per_chunk))
            save_mat(path, {"data": data[part], "time": t[part][None] * 1000.0, "A": a_values})
            written.append(path)
    return written

"""Raw neural-mass recordings (docs/eeg-chain.md §1-2): the chunk file layout, streamed reading
with decimation and the fsaverage5 remap, and seeded mock recordings in the same layout.

Layout (DeepSIF's TVB output): <raw folder>/a{r}/mean_iter_{m}_a_iter_{r}_{k}.mat with `data`
(time x regions, mV, 2 kHz), `time` (ms) and `A`; chunks k = 0, 1, ... in time order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.seeding import STREAM_MOCK, rng
from spikeforge.io.mat import load_mat, mat_variable_shape, save_mat

RAW_FS = 2000.0
# fsaverage5 (998 -> 994 regions): 1-based columns 995, 998, 997, 996 fill 8, 326, 922, 950.
FSAVERAGE_SOURCES = np.array([994, 997, 996, 995])
FSAVERAGE_TARGETS = np.array([7, 325, 921, 949])
FSAVERAGE_REGIONS = 994
FSAVERAGE_RAW_REGIONS = 998
# Jansen-Rit excitatory gain A (mV): raised in the spiking region only.
A_BACKGROUND = 3.25
A_SPIKING = 3.5


def chunk_name(region: int | str, iteration: int | str, chunk: int | str) -> str:
    """File name of chunk k of the simulation of spiking region r with noise setting m (strings
    such as "{region}" give the workflow's wildcard pattern)."""
    return f"mean_iter_{iteration}_a_iter_{region}_{chunk}.mat"


def chunk_index(name: str, region: int, iteration: int) -> int | None:
    """k of a chunk file name of (region, iteration), or None for any other name."""
    prefix, suffix = chunk_name(region, iteration, "|").split("|")
    middle = name[len(prefix) : len(name) - len(suffix)]
    if name.startswith(prefix) and name.endswith(suffix) and middle.isdigit():
        return int(middle)
    return None


def region_folder_name(region: int | str) -> str:
    return f"a{region}"


def chunk_path(raw_dir: str | Path, region: int, iteration: int, chunk: int) -> Path:
    return Path(raw_dir) / region_folder_name(region) / chunk_name(region, iteration, chunk)


@dataclass(frozen=True)
class Preprocessing:
    burn_in: int = 1000  # raw samples dropped at the start (unconverged simulation)
    factor: int = 4  # 2 kHz -> 500 Hz
    decimation: str = "take"  # "take": every factor-th sample (DeepSIF); "antialias": FIR first
    fsaverage_remap: bool = False


def raw_chunk_paths(
    raw_dir: str | Path, region: int, iteration: int, expected: int | None = None
) -> list[Path]:
    """The chunk files of one simulation in k order; a gap in k is an error naming it, and so
    is a missing last chunk when the config implies how many there are (`expected`)."""
    folder = Path(raw_dir) / region_folder_name(region)
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            k = chunk_index(path.name, region, iteration)
            if k is not None:
                found[k] = path
    if not found:
        raise InputError(folder, f"no raw chunks {chunk_name(region, iteration, '<k>')}")
    missing = sorted(set(range(max(found) + 1)) - set(found))
    if missing:
        raise InputError(
            folder / chunk_name(region, iteration, missing[0]),
            f"raw chunk missing from the sequence 0..{max(found)} ({len(missing)} missing)",
        )
    if expected is not None and len(found) != expected:
        k = len(found) if len(found) < expected else expected
        raise InputError(
            folder / chunk_name(region, iteration, k),
            f"raw chunk {k} {'missing' if len(found) < expected else 'is one too many'}: "
            f"the config's duration and chunk length make {expected} chunks, {len(found)} found",
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
    import scipy.signal  # here: the workflow imports this module at start-up, not this

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
    import scipy.signal

    full = scipy.signal.upfirdn(taps, segment, up=1, down=factor, axis=0)
    skip = 2 * half // factor
    return full[skip : skip + count].astype(np.float32)


class Decimator:
    """Preprocessing fed raw rows piece by piece, in any piece sizes: output row i is raw row
    burn_in + factor * i (filtered first with decimation='antialias'), then remapped. `push`
    returns the rows whose filter window is complete, `finish` the rest at the end."""

    def __init__(self, prep: Preprocessing) -> None:
        self.prep = prep
        self.taps = _antialias_filter(prep.factor) if prep.decimation == "antialias" else None
        self.half = 0 if self.taps is None else (self.taps.size - 1) // 2
        self.buffer = np.zeros((0, 0), np.float32)
        self.buffer_start = 0  # global raw index of buffer[0]
        self.next_out = prep.burn_in  # global raw index of the next output row

    def push(self, raw: np.ndarray) -> np.ndarray | None:
        self.buffer = raw if self.buffer.size == 0 else np.concatenate([self.buffer, raw])
        return self._emit(done=False)

    def finish(self) -> np.ndarray | None:
        return self._emit(done=True)

    def _emit(self, done: bool) -> np.ndarray | None:
        prep, rows = self.prep, None
        end = self.buffer_start + self.buffer.shape[0]  # one past the last raw row seen
        # Rows whose filter window is complete (all rows at the end of the recording).
        last = end - 1 if done else end - 1 - self.half
        if last >= self.next_out:
            count = (last - self.next_out) // prep.factor + 1
            first = self.next_out - self.buffer_start
            rows = remap(_decimate_rows(self.buffer, first, count, prep.factor, self.taps), prep)
            self.next_out += count * prep.factor
        keep_from = min(max(self.next_out - self.half, self.buffer_start), end)
        self.buffer = self.buffer[keep_from - self.buffer_start :]
        self.buffer_start = keep_from
        return rows


def decimated_row_ends(n_raw: int, chunk_raw: int, prep: Preprocessing) -> list[int]:
    """Where decimated_chunks' pieces end (cumulative preprocessed rows) for a recording of
    n_raw rows in chunk files of chunk_raw rows: a reader of the same rows from elsewhere
    hands them over in the same pieces, so sums accumulated piece by piece are equal."""
    half = Decimator(prep).half
    total = max(0, (n_raw - 1 - prep.burn_in) // prep.factor + 1)
    ends = []
    for end in range(chunk_raw, n_raw + chunk_raw, chunk_raw):
        last = min(end, n_raw) - 1 - half
        ends.append(
            min(total, (last - prep.burn_in) // prep.factor + 1 if last >= prep.burn_in else 0)
        )
    ends.append(total)
    return sorted({e for e in ends if e > 0})


def decimated_chunks(paths: list[Path], prep: Preprocessing) -> Iterator[np.ndarray]:
    """Pass over the raw chunk files yielding preprocessed rows (Decimator)."""
    decimator = Decimator(prep)
    for chunk in _raw_chunks(paths):
        rows = decimator.push(chunk)
        if rows is not None:
            yield rows
    rows = decimator.finish()
    if rows is not None:
        yield rows


def connectivity_region(region: int, fsaverage_remap: bool) -> int:
    """The simulated (connectivity) region whose trace becomes leadfield region `region`: with
    the fsaverage remap, regions 7, 325, 921 and 949 take raw columns 994, 997, 996 and 995,
    so that is where a simulation spiking in one of them sets A."""
    if fsaverage_remap and region in FSAVERAGE_TARGETS:
        return int(FSAVERAGE_SOURCES[list(FSAVERAGE_TARGETS).index(region)])
    return int(region)


def remap(rows: np.ndarray, prep: Preprocessing) -> np.ndarray:
    if not prep.fsaverage_remap:
        return rows
    if rows.shape[1] < FSAVERAGE_RAW_REGIONS:
        raise InputError(
            "eeg.preprocessing.fsaverage_remap",
            f"needs {FSAVERAGE_RAW_REGIONS} raw regions, the data has {rows.shape[1]}",
        )
    rows = rows.copy()
    rows[:, FSAVERAGE_TARGETS] = rows[:, FSAVERAGE_SOURCES]
    return rows[:, :FSAVERAGE_REGIONS]


def preprocess(raw: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """In-memory preprocessing of a whole recording (small data, tests)."""
    taps = _antialias_filter(prep.factor) if prep.decimation == "antialias" else None
    count = max(0, (raw.shape[0] - prep.burn_in + prep.factor - 1) // prep.factor)
    return remap(_decimate_rows(raw, prep.burn_in, count, prep.factor, taps), prep)


def write_mock_raw(
    region_dir: str | Path,
    region: int,
    iterations: list[int],
    n_regions: int,
    duration_s: float,
    chunk_s: float,
    seed: int,
) -> list[Path]:
    """Seeded mock of one spiking region's TVB output in the raw layout (2 kHz, mV), written
    into `region_dir` (the a{region} folder).

        Every region carries slow background activity below the 8 mV threshold; region `region`
        fires spikes (a sharp peak of 18-30 mV and a slow negative wave) every 1.2-2.5 s, and some
        of them propagate to another region within 300 ms, as coupled neural masses do.
    """
    region_dir = Path(region_dir)
    n = int(round(duration_s * RAW_FS))
    per_chunk = int(round(chunk_s * RAW_FS))
    t = np.arange(n) / RAW_FS
    written = []
    for iteration in iterations:
        # One integer names (region, iteration): iterations are 0, 1 and 2.
        gen = rng(seed, "mock_raw", region * 10 + iteration, STREAM_MOCK)
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
        a_values = np.full((1, n_regions), A_BACKGROUND)
        a_values[0, region] = A_SPIKING
        for k, start in enumerate(range(0, n, per_chunk)):
            path = region_dir / chunk_name(region, iteration, k)
            part = slice(start, min(n, start + per_chunk))
            save_mat(path, {"data": data[part], "time": t[part][None] * 1000.0, "A": a_values})
            written.append(path)
    return written


def write_mock_raw_job(
    region_dir: str | Path,
    anatomy_path: str | Path,
    region: int,
    iterations: list[int],
    duration_s: float,
    chunk_s: float,
    seed: int,
) -> None:
    """The mock_raw_nmm job: one region's mock recordings for the anatomy's regions, in a
    folder that appears only when complete."""
    from spikeforge.core.files import atomic_directory
    from spikeforge.eeg.anatomy import read_anatomy

    n_regions = read_anatomy(anatomy_path).n_regions
    with atomic_directory(region_dir) as staging:
        write_mock_raw(staging, region, iterations, n_regions, duration_s, chunk_s, seed)

"""Spike clips in DeepSIF's `nmm_spikes/a{r}/nmm_{j}.mat` layout and the consolidated library.

The library is one HDF5 file that synthesis reads:
  clips            [N, R, T] float32  the clips, region-major and contiguous (not chunked), so
                                      reading a few regions of a clip reads only those bytes
  region           [N] int32          region whose spike the clip carries (0-based, the `a{r}`)
  clip_number      [N] int32          the `j` of nmm_{j}.mat (1-based)
  source_file      [N] str            clip path relative to the nmm_spikes folder
  projection       [N, C, T] float64  leadfield @ clip.T, computed once per clip
  centre_waveform  [N, T] float64     clip[:, region]
  iteration, peak_time, clip_start, alpha  [N]  provenance of clips extracted from raw recordings
Rows are ordered by region, then by j, so rows of one region are contiguous.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import sys
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
from threadpoolctl import threadpool_limits

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_directory, atomic_path
from spikeforge.core.seeding import STREAM_MOCK, rng
from spikeforge.eeg.anatomy import read_anatomy
from spikeforge.eeg.clips import CLIP_SAMPLES
from spikeforge.eeg.raw import region_folder_name
from spikeforge.io.hdf5 import open_hdf5
from spikeforge.io.mat import load_mat, save_mat

_CLIP_NAME = re.compile(r"^nmm_(\d+)\.mat$")
_REGION_DIR = re.compile(r"^a(\d+)$")
CLIP_INFO_FOLDER = "clip_info"


def mock_clip(n_regions: int, region: int, gen: np.random.Generator) -> np.ndarray:
    """One 500 x R clip: slow background in every region, an epileptiform spike in `region`.

    Amplitudes follow a Jansen-Rit output in mV: background of a few mV, spikes of tens of mV.
    """
    import scipy.signal  # here: the workflow imports this module at start-up, not this

    sos = scipy.signal.butter(4, 20.0, fs=500.0, output="sos")
    noise = gen.standard_normal((CLIP_SAMPLES + 200, n_regions))
    # filtered along contiguous rows (a third faster; the same values), then back to T x R
    filtered = scipy.signal.sosfiltfilt(sos, np.ascontiguousarray(noise.T), axis=1)
    background = np.ascontiguousarray(filtered.T[100:-100])
    background *= 1.5 / background.std()
    background += gen.uniform(2.0, 6.0, size=n_regions)
    t = np.arange(CLIP_SAMPLES, dtype=np.float64)
    peak = gen.uniform(180, 320)
    amplitude = gen.uniform(25.0, 40.0)
    spike = amplitude * np.exp(-0.5 * ((t - peak) / 6.0) ** 2)
    slow_wave = 0.35 * amplitude * np.exp(-0.5 * ((t - peak - 45.0) / 28.0) ** 2)
    clip = background.copy()
    clip[:, region] += spike - slow_wave
    return clip.astype(np.float32)


def write_mock_clips(
    folder: str | Path,
    n_regions: int,
    clips_per_region: int,
    seed: int,
    regions: Sequence[int] | None = None,
) -> None:
    """Write the DeepSIF clip layout with seeded mock clips (j from 1 within each region) for
    `regions` (default: all)."""
    folder = Path(folder)
    for region in range(n_regions) if regions is None else regions:
        for j in range(1, clips_per_region + 1):
            clip = mock_clip(n_regions, region, rng(seed, "mock_clips", region, j, STREAM_MOCK))
            save_mat(folder / region_folder_name(region) / f"nmm_{j}.mat", {"data": clip})


def write_mock_clip_folder(
    folder: str | Path,
    anatomy_path: str | Path,
    clips_per_region: int,
    seed: int,
    workers: int = 1,
) -> None:
    """The mock_spike_clips job: mock clips for every region of the anatomy, written by
    `workers` processes (each region's clips depend only on its seeds) to a folder that
    appears only when complete."""
    n_regions = read_anatomy(anatomy_path).n_regions
    with atomic_directory(folder) as staging:
        if workers <= 1:
            write_mock_clips(staging, n_regions, clips_per_region, seed)
            return
        shares = [list(range(w, n_regions, workers)) for w in range(workers)]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            done = [
                pool.submit(write_mock_clips, staging, n_regions, clips_per_region, seed, share)
                for share in shares
            ]
            for future in done:
                future.result()


def clip_info_path(folder: str | Path, region: int) -> Path:
    """Provenance of region r's extracted clips: <clip folder>/clip_info/a{r}.json."""
    return Path(folder) / CLIP_INFO_FOLDER / f"{region_folder_name(region)}.json"


def _roots(folder: str | Path | Sequence[str | Path]) -> list[Path]:
    return [Path(f) for f in folder] if isinstance(folder, list | tuple) else [Path(folder)]


def _region_folders(roots: list[Path], regions: Sequence[int] | None) -> list[tuple[int, Path]]:
    if regions is not None:
        found = []
        for region in sorted(set(regions)):
            homes = [root / region_folder_name(region) for root in roots]
            present = [home for home in homes if home.is_dir()]
            if len(present) > 1:
                raise InputError(present[1], f"region {region}'s clips are in {present[0]} too")
            found.append((int(region), (present or homes)[0]))
        return found
    found = []
    for root in roots:
        for region_dir in root.iterdir():
            match = _REGION_DIR.match(region_dir.name)
            if match and region_dir.is_dir():
                found.append((int(match.group(1)), region_dir))
    return found


def list_clips(
    folder: str | Path | Sequence[str | Path], n_regions: int, regions: Sequence[int] | None = None
) -> list[tuple[int, int, Path]]:
    """(region, j, path) for every clip, ordered by region then j: in the folders a{r} of
    `regions` (each must exist; it may be empty), or, without `regions`, in every a{r} folder.
    `folder` may be several clip folders (one per simulate_clips job), each region in one.

    Regions without clips are allowed here; the plan rejects them if it needs them.
    """
    roots = _roots(folder)
    for root in roots:
        if not root.is_dir():
            raise InputError(root, "spike clip folder not found")
    entries: list[tuple[int, int, Path]] = []
    for region, region_dir in _region_folders(roots, regions):
        if not region_dir.is_dir():
            raise InputError(region_dir, f"clip folder of region {region} not found")
        if region >= n_regions:
            raise InputError(
                region_dir, f"region {region} does not exist: the leadfield has {n_regions} regions"
            )
        for path in region_dir.iterdir():
            clip_match = _CLIP_NAME.match(path.name)
            if clip_match:
                entries.append((region, int(clip_match.group(1)), path))
    if not entries:
        raise InputError(roots[0], "no clips found (expected a<region>/nmm_<j>.mat)")
    return sorted(entries)


def _prepared_clip(
    entry: tuple[int, int, Path], leadfield: np.ndarray, data_key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One clip read and checked: (R x T float32, its C x T projection, the centre waveform)."""
    region, _, path = entry
    n_regions = leadfield.shape[1]
    variables = load_mat(path, [data_key])
    if data_key not in variables:
        raise InputError(path, "variable not found", key=data_key)
    clip = np.asarray(variables[data_key])
    if clip.shape != (CLIP_SAMPLES, n_regions):
        raise InputError(
            path,
            f"clip must be {CLIP_SAMPLES} x {n_regions} (time x regions), got {clip.shape}",
            key=data_key,
        )
    if not np.all(np.isfinite(clip)):
        raise InputError(path, "clip contains non-finite values", key=data_key)
    clip32 = clip.astype(np.float32)
    clip64 = clip32.astype(np.float64)
    if clip64[:, region].max() <= 0:
        raise InputError(path, f"region {region}'s waveform has no positive peak")
    return np.ascontiguousarray(clip32.T), leadfield @ clip64.T, clip64[:, region]


def build_library(
    clip_folder: str | Path | Sequence[str | Path],
    leadfield: np.ndarray,
    out_path: str | Path,
    data_key: str = "data",
    regions: Sequence[int] | None = None,
    workers: int = 1,
) -> None:
    """Read every clip once, validate it, and write the library with per-clip projections.

    `regions`: read only those regions' folders (the workflow names the regions it extracted,
    so clips another run left in the same folder are never read); None reads every a{r}.
    `workers` threads read and project clips (file reads and the projection release the GIL)
    while this one writes them in order, a few clips ahead at most."""
    n_channels, n_regions = leadfield.shape
    clips = list_clips(clip_folder, n_regions, regions)
    n = len(clips)
    with atomic_path(out_path, suffix=".h5") as tmp, h5py.File(tmp, "w") as out:
        data = out.create_dataset("clips", (n, n_regions, CLIP_SAMPLES), dtype=np.float32)
        projection = out.create_dataset(
            "projection",
            (n, n_channels, CLIP_SAMPLES),
            dtype=np.float64,
            chunks=(1, n_channels, CLIP_SAMPLES),
        )
        centre = out.create_dataset("centre_waveform", (n, CLIP_SAMPLES), dtype=np.float64)
        # the workers are the parallelism: BLAS threads of their own would oversubscribe
        blas = threadpool_limits(1) if workers > 1 else contextlib.nullcontext()
        with blas, ThreadPoolExecutor(max(1, workers)) as pool:
            window: deque[Future] = deque()
            ahead = iter(clips)
            for row in range(n):
                while len(window) < 2 * max(1, workers) and (entry := next(ahead, None)):
                    window.append(pool.submit(_prepared_clip, entry, leadfield, data_key))
                data[row], projection[row], centre[row] = window.popleft().result()
        roots = _roots(clip_folder)
        folder = Path(os.path.commonpath(roots)) if len(roots) > 1 else roots[0]
        out["region"] = np.array([c[0] for c in clips], dtype=np.int32)
        out["clip_number"] = np.array([c[1] for c in clips], dtype=np.int32)
        out["source_file"] = np.array(
            [str(c[2].relative_to(folder)) for c in clips], dtype=h5py.string_dtype()
        )
        for name, values in _provenance(clips).items():
            out[name] = values
        out.attrs["n_regions"] = n_regions
        out.attrs["clip_folder"] = str(folder)
        out.attrs["n_channels"] = n_channels


def consolidate_library(
    anatomy_path: str | Path,
    clip_folder: str | Path | Sequence[str | Path],
    out_path: str | Path,
    data_key: str = "data",
    regions: Sequence[int] | None = None,
    workers: int = 1,
) -> None:
    """The spike_library job: build_library with the anatomy's leadfield."""
    leadfield = read_anatomy(anatomy_path).leadfield
    build_library(clip_folder, leadfield, out_path, data_key, regions, workers)


def _provenance(clips: list[tuple[int, int, Path]]) -> dict[str, np.ndarray]:
    """Per-clip iteration, peak time, clip start and alpha from clip_info/a{r}.json beside
    the region's folder, written when clips are extracted from raw recordings (-1 / NaN for
    clips without it)."""
    info: dict[tuple[int, int], dict] = {}
    for region, root in sorted({(c[0], c[2].parent.parent) for c in clips}):
        path = clip_info_path(root, region)
        if path.is_file():
            for entry in json.loads(path.read_text())["clips"]:
                info[(region, entry["j"])] = entry
    if not info:
        return {}
    rows = [info.get((region, j), {}) for region, j, _ in clips]
    return {
        "iteration": np.array([r.get("iteration", -1) for r in rows], np.int32),
        "peak_time": np.array([r.get("peak_time", -1) for r in rows], np.int64),
        "clip_start": np.array([r.get("clip_start", -1) for r in rows], np.int64),
        "alpha": np.array([r.get("alpha", np.nan) for r in rows], np.float64),
    }


class Library:
    """Read access to the consolidated library."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._opened = open_hdf5(self.path, "spike library")
        self._file = self._opened.__enter__()
        try:
            self._clips = self._file["clips"]
            self.projection = self._file["projection"]
            self.region = self._file["region"][()]
            self.centre_waveform = self._file["centre_waveform"]
        except BaseException:
            self._opened.__exit__(*sys.exc_info())
            raise
        self.n_clips, self.n_regions, self.n_time = self._clips.shape
        starts = np.searchsorted(self.region, np.arange(self.n_regions + 1))
        self.region_rows = starts  # rows of region r: starts[r]:starts[r+1]

    def clip(self, row: int) -> np.ndarray:
        """The whole clip, T x R float32 (DeepSIF's orientation)."""
        return self._clips[row].T

    def regions(self, row: int, regions: np.ndarray) -> np.ndarray:
        """Time courses of some regions (sorted, unique) of one clip: len(regions) x T float32.

        Only those regions' bytes are read."""
        if regions.size == 0:
            return np.zeros((0, self.n_time), np.float32)
        return self._clips[row, regions.tolist(), :]

    def clips_of(self, region: int) -> range:
        rows = range(int(self.region_rows[region]), int(self.region_rows[region + 1]))
        if not rows:
            raise InputError(
                self._file.attrs.get("clip_folder", self.path),
                f"region {region} has no spike clips (a{region}/nmm_<j>.mat), but the plan "
                "needs one: add clips or restrict plan.centre_regions",
            )
        return rows

    def regions_with_clips(self) -> np.ndarray:
        return np.flatnonzero(np.diff(self.region_rows) > 0)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""DeepSIF's raw chain without its raw files (docs/eeg-chain.md §1-4): the simulate_clips job.

A job simulates the runs (spiking region r, noise setting m) of a few regions together, one
batch on spikeforge.eeg.neural_mass (TVB's Jansen-Rit setup of spikeforge.eeg.tvb, with the
backend's own seeded noise). Each run's output goes, piece by piece as it is simulated,
through the preprocessing of the raw layout (burn-in, decimation, remap: raw.Decimator) into a
temporary 500 Hz file; the clips are then extracted from those rows exactly as extract_clips
extracts them from raw files (clips.region_clips), read in the pieces the raw layout's chunk
files of `chunk_s` would give (raw.decimated_row_ends), so the clips and their provenance are
byte-identical to what the raw layout gives. Writing the raw 2 kHz layout as well is an
option (`write_raw`).

What a job holds does not grow with the simulated length: a piece of steps of the batch, one
chunk per run when the raw layout is written, the spiking region's 500 Hz trace. The
temporary files take 4 bytes a region and 500 Hz sample per run (0.4 GB for 200 s of 998
regions) until the run's region is extracted; they sit inside the job's staging folder.

Output folder (one per job, laid out as a clip folder):
  a{r}/nmm_{j}.mat, clip_info/a{r}.json   per region of the job
  raw_nmm/a{r}/mean_iter_{m}_a_iter_{r}_{k}.mat   with write_raw
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_directory
from spikeforge.core.progress import Progress
from spikeforge.eeg.clips import (
    Recording,
    detection_settings,
    region_clips,
    write_region_clips,
)
from spikeforge.eeg.library import clip_info_path
from spikeforge.eeg.neural_mass import (
    DT_MS,
    Batch,
    Connectivity,
    Simulation,
    noise_keys,
    random_start,
    run_generators,
)
from spikeforge.eeg.raw import (
    FSAVERAGE_RAW_REGIONS,
    Decimator,
    Preprocessing,
    chunk_path,
    decimated_row_ends,
    region_folder_name,
)
from spikeforge.eeg.tvb import NOISE_SETTINGS, chunk_count, deepsif_run, whole_steps
from spikeforge.io.mat import save_mat

log = logging.getLogger(__name__)

KEYS = "eeg.raw.simulate"
# 0.1 s: a batch of 9 runs x 998 regions holds ~15 MB per array; larger pieces are no
# faster, and arrays of over 32 MB are page-faulted in anew every time (glibc maps them)
STEPS_PER_PIECE = 200


def deepsif_batch(
    connectivity: Connectivity, runs: Sequence[tuple[int, int]], seed: int, remap: bool = False
) -> tuple[Batch, np.ndarray, np.ndarray]:
    """DeepSIF's settings for runs (r, m): A = 3.5 in region r (the connectivity column that
    becomes r, with the fsaverage remap) and 3.25 elsewhere, mu and the noise's standard
    deviation of setting m (as spikeforge.eeg.tvb), and each run's random start. Returns
    (batch, initial_state, initial_history)."""
    settings = [deepsif_run(r, m, connectivity.n_regions, remap) for r, m in runs]
    a_values = np.stack([a for a, _, _ in settings])
    mu = np.array([mu for _, mu, _ in settings])
    nsig = np.array([nsig for _, _, nsig in settings])
    state, history = random_start(len(runs), connectivity, run_generators(seed, list(runs)))
    return Batch(a_values, mu, nsig), state, history


class _RowFile:
    """A run's preprocessed rows (float32, width columns), appended as they come and read
    back in blocks, as often as the extraction passes over them."""

    def __init__(self, path: Path, width: int) -> None:
        self.path, self.width, self.n_rows = path, width, 0
        self.path.touch()

    def append(self, rows: np.ndarray | None) -> None:
        if rows is None or rows.shape[0] == 0:
            return
        with open(self.path, "ab") as handle:
            handle.write(np.ascontiguousarray(rows, np.float32).data)
        self.n_rows += rows.shape[0]

    def chunks(self, ends: list[int]) -> Iterator[np.ndarray]:
        """The rows in pieces ending at `ends` (cumulative row counts)."""
        if ends[-1:] != [self.n_rows]:
            raise RuntimeError(f"{self.path}: {self.n_rows} rows, the pieces end at {ends[-1:]}")
        with open(self.path, "rb") as handle:
            start = 0
            for end in ends:
                yield np.fromfile(handle, np.float32, (end - start) * self.width).reshape(
                    end - start, -1
                )
                start = end


class _RawWriter:
    """One run's raw layout: chunk files of chunk_steps rows, as the tvb backend writes."""

    def __init__(self, folder: Path, run: tuple[int, int], a_values: np.ndarray, chunk_steps: int):
        self.folder, self.run, self.chunk_steps = folder, run, chunk_steps
        self.a_values = a_values.reshape(1, -1)
        self.pending: list[np.ndarray] = []
        self.n_pending = self.written_steps = self.k = 0

    def push(self, data: np.ndarray) -> None:
        self.pending.append(data)
        self.n_pending += data.shape[0]
        while self.n_pending >= self.chunk_steps:
            rows = np.concatenate(self.pending)
            chunk, rest = rows[: self.chunk_steps], rows[self.chunk_steps :]
            steps = self.written_steps + np.arange(1, self.chunk_steps + 1)
            region, iteration = self.run
            save_mat(chunk_path(self.folder, region, iteration, self.k), {
                "data": chunk, "time": (steps * DT_MS).reshape(1, -1), "A": self.a_values,
            })  # fmt: skip
            self.k += 1
            self.written_steps += self.chunk_steps
            self.pending, self.n_pending = [rest], rest.shape[0]


def _check(connectivity: Connectivity, where: Path, regions, iterations, n_leadfield, prep):
    for m in iterations:
        if not 0 <= m < len(NOISE_SETTINGS):
            raise InputError("eeg.raw.iterations", f"iteration must be 0, 1 or 2, got {m!r}")
    for region in regions:
        if not 0 <= region < connectivity.n_regions:
            raise InputError(
                where, f"spiking region {region} out of range: the connectivity has "
                f"{connectivity.n_regions} regions (0..{connectivity.n_regions - 1})",
            )  # fmt: skip
    expected = FSAVERAGE_RAW_REGIONS if prep.fsaverage_remap else n_leadfield
    if connectivity.n_regions != expected:
        raise InputError(
            where,
            f"the connectivity has {connectivity.n_regions} regions, the leadfield {n_leadfield}"
            + (f" (fsaverage remap expects {FSAVERAGE_RAW_REGIONS})" if prep.fsaverage_remap
               else ""),
        )  # fmt: skip


def simulate_region_clips(
    connectivity_zip: str | Path,
    regions: Sequence[int],
    iterations: Sequence[int],
    fwd: np.ndarray,
    preprocessing: Mapping[str, Any],
    detection: Mapping[str, Any],
    out_dir: str | Path,
    duration_s: float,
    seed: int,
    write_raw: bool = False,
    chunk_s: float = 10.0,
) -> dict[int, int]:
    """Simulate every (region, iteration) run of `regions` in one batch and write their clips
    into `out_dir` (see the module's layout), which appears only when complete. Returns the
    number of clips per region."""
    path = Path(connectivity_zip)
    connectivity = Connectivity.from_zip(path)
    prep = Preprocessing(**preprocessing)
    regions, iterations = [int(r) for r in regions], [int(m) for m in iterations]
    _check(connectivity, path, regions, iterations, fwd.shape[1], prep)
    total_steps = whole_steps(duration_s, f"{KEYS}.duration_s")
    chunk_steps = total_steps // chunk_count(duration_s, chunk_s, KEYS)
    ends = decimated_row_ends(total_steps, chunk_steps, prep)
    runs = [(r, m) for r in regions for m in iterations]
    batch, state, history = deepsif_batch(connectivity, runs, seed, prep.fsaverage_remap)
    simulation = Simulation(connectivity, batch, state, history, noise_keys=noise_keys(seed, runs))
    counts = {}
    with atomic_directory(out_dir) as staging:
        scratch = staging / ".decimated"
        scratch.mkdir()
        width = fwd.shape[1]
        files = [_RowFile(scratch / f"{r}_{m}.f32", width) for r, m in runs]
        decimators = [Decimator(prep) for _ in runs]
        raw = [_RawWriter(staging / "raw_nmm", run, batch.A[q], chunk_steps)
               for q, run in enumerate(runs)] if write_raw else []  # fmt: skip
        progress = Progress(total_steps * DT_MS / 1000.0, f"simulating {len(runs)} runs", " s")
        done = 0
        while done < total_steps:
            n = min(STEPS_PER_PIECE, total_steps - done)
            # The random start swings the sigmoids far into saturation for the first few
            # hundred ms: exp overflows to inf there and the sigmoid is correctly 0.
            with np.errstate(over="ignore"):
                trace = simulation.advance(n)
            if not np.isfinite(trace).all():
                raise RuntimeError(f"non-finite values in steps {done + 1}..{done + n}")
            for q in range(len(runs)):
                data = trace[:, q].astype(np.float32)
                files[q].append(decimators[q].push(data))
                if write_raw:
                    raw[q].push(data)
            done += n
            progress.update(done * DT_MS / 1000.0)
        for q in range(len(runs)):
            files[q].append(decimators[q].finish())
        settings = detection_settings(detection)
        for region in regions:
            own = [q for q, (r, _) in enumerate(runs) if r == region]
            recordings = [
                Recording(runs[q][1], path, lambda q=q: files[q].chunks(ends)) for q in own
            ]
            result = write_region_clips(
                region,
                lambda on_clip, recordings=recordings, region=region: region_clips(
                    region, recordings, fwd, settings, on_clip
                ),
                staging / region_folder_name(region),
                clip_info_path(staging, region),
            )
            counts[region] = len(result.alpha)
            for q in own:
                files[q].path.unlink()
        shutil.rmtree(scratch)
    return counts


def simulate_clips_job(anatomy_path: str | Path, **arguments: Any) -> dict[int, int]:
    """The simulate_clips job: simulate_region_clips with the anatomy's leadfield."""
    from spikeforge.eeg.anatomy import read_anatomy

    return simulate_region_clips(fwd=read_anatomy(anatomy_path).leadfield, **arguments)

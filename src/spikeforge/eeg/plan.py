"""Sample plans: per sample and source, the centre, patch, clip, weights and scale; per sample, SNR.

A plan file (HDF5, one per split) holds, for N samples and S sources (patch width W = 70):
  centre        [N, S] int32      centre region (0-based)
  patch         [N, S, W] int32   patch regions, centre first, padded with -1
  patch_size    [N, S] int32      number of regions in the patch
  mag_change    [N, S, W] float64 weight of each patch region (1 at the centre), padded with 0
  clip          [N, S] int64      row of the spike library (and of DeepSIF's `*_nmm.h5`)
  scale_ratios  [N, S, K] float64 source amplitude for each target SNR (docs/eeg-chain.md §5)
  scale         [N, S] float64    the ratio this sample uses (one of scale_ratios, seeded)
  sensor_snr    [N] float64       sensor-space SNR in dB
and attributes seed, split, source ("generated" or the imported file), point_05, target_snrs_db.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from spikeforge.core import seeding
from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_path
from spikeforge.core.seeding import STREAM_DATASET, STREAM_PLAN
from spikeforge.eeg.anatomy import Anatomy, read_anatomy
from spikeforge.eeg.library import Library
from spikeforge.io.hdf5 import open_hdf5

log = logging.getLogger(__name__)

PATCH_WIDTH = 70
# sigma of the Gaussian weight so that the weight is 0.5 at distance point_05 (sqrt(1 / (2 ln 2)))
SIGMA_PER_POINT_05 = 0.8493
SNR_WINDOW_HALF = 100


@dataclass
class PlanConfig:
    n_samples: int
    n_sources: int = 2
    samples_per_region: int = 1
    patch_method: str = "grow"  # "grow" (docs/eeg-chain.md §5) or "disk"
    grow_layers: tuple[int, ...] = (2, 3)
    disk_radius_mm: float = 20.0
    point_05_range_mm: tuple[float, float] = (40.0, 60.0)
    target_snrs_db: tuple[float, ...] = (10, 12, 14, 16, 18, 20)
    sensor_snrs_db: tuple[float, ...] = (5, 10, 15, 20)
    max_overlap_retries: int = 50
    centre_regions: tuple[int, ...] | None = None  # None: every region that has clips
    held_out_clips: float = 0.0  # fraction of each region's clips kept for one split
    use_held_out: bool = False  # this split draws from the held-out clips (else from the rest)

    @classmethod
    def from_settings(cls, settings: dict) -> PlanConfig:
        """From the workflow's per-split settings (lists where this holds tuples)."""
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
        return cls(**values)


@dataclass
class Plan:
    centre: np.ndarray
    patch: np.ndarray
    patch_size: np.ndarray
    mag_change: np.ndarray
    clip: np.ndarray
    scale_ratios: np.ndarray
    scale: np.ndarray
    sensor_snr: np.ndarray
    attrs: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.centre.shape[0])

    @property
    def n_sources(self) -> int:
        return int(self.centre.shape[1])

    def patch_of(self, sample: int, source: int) -> np.ndarray:
        return self.patch[sample, source, : self.patch_size[sample, source]]

    def weights_of(self, sample: int, source: int) -> np.ndarray:
        return self.mag_change[sample, source, : self.patch_size[sample, source]]

    def select(self, start: int, stop: int) -> Plan:
        sl = slice(start, stop)
        return Plan(
            self.centre[sl],
            self.patch[sl],
            self.patch_size[sl],
            self.mag_change[sl],
            self.clip[sl],
            self.scale_ratios[sl],
            self.scale[sl],
            self.sensor_snr[sl],
            dict(self.attrs),
        )


def _unit_vector(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def smooth_patch(patch: set[int], centre: int, neighbours: tuple[tuple[int, ...], ...]) -> set[int]:
    """Fill notches and trim spurs: add outside regions with all but one neighbour inside,
    then remove regions (never the centre) with exactly one neighbour inside; one region at
    a time, in id order, each seeing the changes before it. `neighbours`: duplicate-free."""
    patch = set(patch)
    border = set().union(*(neighbours[p] for p in patch)) - patch
    for v in sorted(border):
        nb = neighbours[v]
        if len(nb) > 1 and len(patch.intersection(nb)) >= len(nb) - 1:
            patch.add(v)
    for v in sorted(patch - {centre}):
        if len(patch.intersection(neighbours[v])) == 1:
            patch.discard(v)
    return patch


def grow_patch(centre: int, anatomy: Anatomy, n_layers: int, rng: np.random.Generator) -> set[int]:
    """Layer 1: all neighbours. Deeper layers: a neighbour is kept with probability
    (1 + cos angle) / 2 between its offset from the centre and one random direction."""
    neighbours, centres = anatomy.neighbour_lists, anatomy.centres
    patch = {centre, *neighbours[centre]}
    frontier = patch - {centre}
    direction = _unit_vector(rng)
    for _ in range(1, n_layers):
        candidates = sorted(set().union(*(neighbours[f] for f in frontier)) - patch)
        if not candidates:
            break
        offsets = centres[candidates] - centres[centre]
        norms = np.sqrt(np.einsum("ij,ij->i", offsets, offsets))
        cosine = np.divide(
            offsets @ direction, norms, out=np.zeros(len(candidates)), where=norms > 0
        )
        keep = rng.random(len(candidates)) < (1.0 + cosine) / 2.0
        frontier = set(itertools.compress(candidates, keep.tolist()))
        patch |= frontier
    return smooth_patch(patch, centre, neighbours)


def disk_patch(centre: int, anatomy: Anatomy, radius_mm: float) -> set[int]:
    """Every region within `radius_mm` of the centre along the region graph."""
    return {int(v) for v in np.flatnonzero(anatomy.distances[centre] <= radius_mm)} | {centre}


def order_patch(patch: set[int], centre: int, distances: np.ndarray) -> np.ndarray:
    """Centre first, then by distance (ties by id); at most PATCH_WIDTH regions."""
    others = sorted(patch - {centre}, key=lambda v: (distances[centre, v], v))
    return np.array([centre] + others[: PATCH_WIDTH - 1], dtype=np.int32)


def _sample_patch(
    centre: int, anatomy: Anatomy, cfg: PlanConfig, rng: np.random.Generator
) -> np.ndarray:
    if cfg.patch_method == "grow":
        layers = int(rng.choice(cfg.grow_layers))
        regions = grow_patch(centre, anatomy, layers, rng)
    elif cfg.patch_method == "disk":
        regions = disk_patch(centre, anatomy, cfg.disk_radius_mm)
    else:
        raise ValueError(f"unknown patch method {cfg.patch_method!r}")
    return order_patch(regions, centre, anatomy.distances)


def clip_rows(library: Library, region: int, cfg: PlanConfig) -> range:
    """The library rows of a region's clips this split draws from: with cfg.held_out_clips,
    the region's last round(fraction x n) clips (at least one) for the held-out split, the
    others for every other split."""
    rows = library.clips_of(region)
    if cfg.held_out_clips <= 0:
        return rows
    if len(rows) < 2:
        raise InputError(
            "eeg.plan.held_out_clips",
            f"region {region} has {len(rows)} clip, too few to hold some out for one split "
            "(each split needs its own)",
        )
    held = min(len(rows) - 1, max(1, round(cfg.held_out_clips * len(rows))))
    return rows[len(rows) - held :] if cfg.use_held_out else rows[: len(rows) - held]


def generate_plan(
    anatomy: Anatomy,
    library: Library,
    cfg: PlanConfig,
    seed: int,
    split: str,
    first: int = 0,
    stop: int | None = None,
) -> Plan:
    """Plan rows first..stop (default: all cfg.n_samples). Each row depends only on
    (seed, split, row), so a split can be planned in pieces of bounded memory."""
    stop = cfg.n_samples if stop is None else min(stop, cfg.n_samples)
    n, s = stop - first, cfg.n_sources
    n_regions = anatomy.n_regions
    if cfg.centre_regions is None:
        candidates = library.regions_with_clips()
        if candidates.size == 0:
            raise InputError(library.path, "the spike library has no clips")
    else:
        candidates = np.asarray(cfg.centre_regions)
        if candidates.size == 0 or candidates.min() < 0 or candidates.max() >= n_regions:
            raise InputError("plan.centre_regions", f"must be region ids in 0..{n_regions - 1}")
        for region in candidates:
            library.clips_of(int(region))  # fails early, naming the region without clips
    point_05 = float(seeding.rng(seed, split, 0, STREAM_DATASET).uniform(*cfg.point_05_range_mm))
    sigma = SIGMA_PER_POINT_05 * point_05

    centre = np.zeros((n, s), np.int32)
    patch = np.full((n, s, PATCH_WIDTH), -1, np.int32)
    size = np.zeros((n, s), np.int32)
    mag = np.zeros((n, s, PATCH_WIDTH), np.float64)
    clip = np.zeros((n, s), np.int64)
    choice = np.zeros((n, s), np.int64)
    sensor_snr = np.array(
        [cfg.sensor_snrs_db[(first + i) % len(cfg.sensor_snrs_db)] for i in range(n)], np.float64
    )
    for i in range(n):
        rng = seeding.rng(seed, split, first + i, STREAM_PLAN)
        used: set[int] = set()
        for k in range(s):
            if k == 0:
                # Region-major like DeepSIF: every region leads samples_per_region samples.
                c = int(candidates[((first + i) // cfg.samples_per_region) % candidates.size])
                regions = _sample_patch(c, anatomy, cfg, rng)
            else:
                for _ in range(cfg.max_overlap_retries):
                    c = int(candidates[rng.integers(candidates.size)])
                    regions = _sample_patch(c, anatomy, cfg, rng)
                    if used.isdisjoint(regions.tolist()):
                        break
            used.update(regions.tolist())
            centre[i, k] = c
            size[i, k] = len(regions)
            patch[i, k, : len(regions)] = regions
            d = anatomy.distances[c, regions]
            mag[i, k, : len(regions)] = np.exp(-(d**2) / (2 * sigma**2))
            rows = clip_rows(library, c, cfg)
            clip[i, k] = rows[int(rng.integers(len(rows)))]
            choice[i, k] = int(rng.integers(len(cfg.target_snrs_db)))

    ratios = scale_ratios_for(anatomy, library, patch, size, mag, clip, cfg.target_snrs_db)
    scale = np.take_along_axis(ratios, choice[..., None], axis=2)[..., 0]
    attrs = {
        "seed": seed,
        "split": split,
        "source": "generated",
        "point_05_mm": point_05,
        "target_snrs_db": np.asarray(cfg.target_snrs_db, np.float64),
        "patch_method": cfg.patch_method,
    }
    return Plan(centre, patch, size, mag, clip, ratios, scale, sensor_snr, attrs)


def snr_window(waveform: np.ndarray) -> slice:
    peak = int(np.argmax(waveform))
    return slice(max(0, peak - SNR_WINDOW_HALF), min(waveform.size, peak + SNR_WINDOW_HALF + 1))


def _power(x: np.ndarray) -> float:
    centred = x - x.mean(axis=-1, keepdims=True)
    return float(np.sum(centred**2) / x.shape[-1])


def scale_ratios_for(
    anatomy: Anatomy,
    library: Library,
    patch: np.ndarray,
    size: np.ndarray,
    mag: np.ndarray,
    clip: np.ndarray,
    target_snrs_db: tuple[float, ...],
) -> np.ndarray:
    """alpha = sqrt(10^(SNR/10) Pn / Ps) for every sample, source and target SNR.

    Ps: sensor power of the patch driven by the normalised centre waveform with its weights;
    Pn: sensor power of the clip's background in every region outside the patch. Both are
    time-mean removed and measured on +-100 samples around the waveform's peak.
    Work is grouped by clip: each clip's projection and the regions its uses need are read once.
    """
    fwd = anatomy.leadfield
    targets = 10.0 ** (np.asarray(target_snrs_db, np.float64) / 10.0)
    ratios = np.zeros(clip.shape + (len(targets),))
    order = np.argsort(clip, axis=None, kind="stable")
    flat_clip = clip.ravel()
    boundaries = np.flatnonzero(np.diff(flat_clip[order])) + 1
    for group in np.split(order, boundaries):
        row = int(flat_clip[group[0]])
        uses = [np.unravel_index(f, clip.shape) for f in group]
        needed = np.unique(np.concatenate([patch[i, k, : size[i, k]] for i, k in uses]))
        courses = library.regions(row, needed).astype(np.float64)
        projection = library.projection[row]
        waveform = library.centre_waveform[row]
        waveform = waveform / waveform.max()
        win = snr_window(waveform)
        w_power = _power(waveform[win])
        for i, k in uses:
            regions = patch[i, k, : size[i, k]]
            gain = fwd[:, regions] @ mag[i, k, : size[i, k]]
            ps = float(gain @ gain) * w_power
            in_patch = courses[np.searchsorted(needed, regions), win]
            background = projection[:, win] - fwd[:, regions] @ in_patch
            pn = _power(background)
            ratios[i, k] = np.sqrt(targets * pn / ps)
    return ratios


PLAN_ARRAYS = (
    "centre",
    "patch",
    "patch_size",
    "mag_change",
    "clip",
    "scale_ratios",
    "scale",
    "sensor_snr",
)


def write_plan(
    plan: Plan | Iterable[Plan], path: str | Path, first_index: int | None = None
) -> None:
    """Write a plan, or consecutive pieces of one, into one file (appearing when complete);
    `first_index`: the split's row the file's first row is (a plan part's attribute)."""
    pieces = iter([plan] if isinstance(plan, Plan) else plan)
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as out:
        if first_index is not None:
            out.attrs["first_index"] = first_index
        for piece in pieces:
            for name in PLAN_ARRAYS:
                values = getattr(piece, name)
                if name not in out:
                    out.create_dataset(
                        name,
                        data=values,
                        maxshape=(None,) + values.shape[1:],
                        chunks=(max(1, min(4096, len(values))),) + values.shape[1:],
                    )
                else:
                    dataset = out[name]
                    dataset.resize(dataset.shape[0] + len(values), axis=0)
                    dataset[-len(values) :] = values
            for key, value in piece.attrs.items():
                out.attrs[key] = value


def read_plan(path: str | Path, start: int | None = None, stop: int | None = None) -> Plan:
    """The split's rows start..stop (default: all the file holds) of a plan file or part;
    only those rows are read. The rows' position (a part's `first_index`) is not one of the
    plan's attributes: the returned plan can be written anywhere."""
    with open_hdf5(path, "sample plan") as src:
        first = int(src.attrs.get("first_index", 0))
        n_rows = src["centre"].shape[0]
        a = 0 if start is None else start - first
        b = n_rows if stop is None else stop - first
        if not 0 <= a <= b <= n_rows:
            raise InputError(
                path, f"holds plan rows {first}..{first + n_rows - 1}, not {start}..{stop}"
            )
        arrays = {name: src[name][a:b] for name in PLAN_ARRAYS}
        attrs = {
            k: (v.decode() if isinstance(v, bytes) else v)
            for k, v in src.attrs.items()
            if k != "first_index"
        }
    return Plan(**arrays, attrs=attrs)


# Rows planned at once: memory stays bounded whatever the split's size.
PLAN_PIECE = 10_000


def regions_without_clips(library: Library, expected: Iterable[int]) -> list[int]:
    return sorted(set(expected) - set(library.regions_with_clips().tolist()))


def plan_part(
    anatomy_path: str | Path,
    library_path: str | Path,
    out_path: str | Path,
    sample_range: tuple[int, int],
    cfg: PlanConfig | None,
    seed: int,
    split: str,
    imported_path: str | Path | None = None,
    expected_regions: Iterable[int] | None = None,
    report_regions_without_clips: bool = False,
) -> None:
    """The sample_plan job: plan rows [first, stop) of a split (those of some consecutive
    shards), generated in pieces of PLAN_PIECE rows, or copied from an imported plan
    (`imported_path`; `cfg` is then unused).

    A row depends only on (seed, split, row), so parts of any size make the same plan. With
    `report_regions_without_clips` (the split's first part), regions among
    `expected_regions` (default: all) without clips are reported: they are never centres."""
    first, stop = sample_range
    if imported_path is not None:
        write_plan(read_plan(imported_path, first, stop), out_path, first)
        log.info("%s: rows %d..%d of %s", split, first, stop - 1, imported_path)
        return
    assert cfg is not None
    anatomy = read_anatomy(anatomy_path)
    with Library(library_path) as library:
        if cfg.centre_regions is None and report_regions_without_clips:
            expected = range(anatomy.n_regions) if expected_regions is None else expected_regions
            missing = regions_without_clips(library, expected)
            if missing:
                shown = ", ".join(f"a{r}" for r in missing[:10])
                log.warning(
                    "%d region(s) have no clips and are not used as source centres: %s%s",
                    len(missing), shown, " ..." if len(missing) > 10 else "",
                )  # fmt: skip
        pieces = (
            generate_plan(anatomy, library, cfg, seed, split, a, min(stop, a + PLAN_PIECE))
            for a in range(first, stop, PLAN_PIECE)
        )
        write_plan(pieces, out_path, first)
    log.info("%s: rows %d..%d planned", split, first, stop - 1)


def read_plan_parts(paths: Iterable[str | Path]) -> Plan:
    """A split's plan from its parts, in order."""
    parts = [read_plan(p) for p in paths]
    if not parts:
        raise ValueError("a plan needs at least one part")
    return Plan(
        *(np.concatenate([getattr(p, name) for p in parts]) for name in PLAN_ARRAYS),
        attrs=parts[0].attrs,
    )

"""DeepSIF's own loader format (docs/eeg-chain.md §7): `{split}_sample_source1.mat` (the plan:
selected_region, nmm_idx, scale_ratio, mag_change, sensor_snr; padding 15213) and
`{split}_sample_nmm.h5` (dataset `data` [clips, 500, R]); and the same metadata read back as a
plan, so an existing DeepSIF dataset can be re-synthesised."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from spikeforge.core import seeding
from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_path
from spikeforge.core.seeding import STREAM_PLAN
from spikeforge.eeg.library import Library
from spikeforge.eeg.plan import PATCH_WIDTH, Plan, read_plan, write_plan
from spikeforge.io.mat import load_mat, save_mat

DEEPSIF_PAD = 15213


def write_deepsif_metadata(plan: Plan, path: str | Path) -> None:
    """DeepSIF's `{split}_sample_source1.mat`, read unchanged by its SpikeEEGBuild loader.

    scale_ratio holds the one ratio this plan chose, so DeepSIF's random pick is deterministic.
    """
    n, s = plan.centre.shape
    selected = np.full((n, s, PATCH_WIDTH), DEEPSIF_PAD, np.float64)
    mag = np.full((n, s, PATCH_WIDTH), DEEPSIF_PAD, np.float64)
    for i in range(n):
        for k in range(s):
            size = plan.patch_size[i, k]
            selected[i, k, :size] = plan.patch[i, k, :size]
            mag[i, k, :size] = plan.mag_change[i, k, :size]
    save_mat(
        path,
        {
            "selected_region": selected,
            "nmm_idx": plan.clip.astype(np.int64),
            "scale_ratio": plan.scale[:, :, None].astype(np.float64),
            "mag_change": mag,
            "sensor_snr": plan.sensor_snr[:, None].astype(np.float64),
        },
    )


def write_deepsif_clips(library_path: str | Path, path: str | Path) -> None:
    """DeepSIF's `{split}_sample_nmm.h5`: dataset `data` [clips, 500, R], rows = library rows."""
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(library_path, "r") as src, h5py.File(tmp, "w") as out:
            clips = src["clips"]
            n, n_regions, n_time = clips.shape
            data = out.create_dataset(
                "data", (n, n_time, n_regions), np.float32, chunks=(1, n_time, n_regions)
            )
            for row in range(n):
                data[row] = clips[row].T


def export_deepsif(
    plan_path: str | Path,
    library_path: str | Path,
    start: int,
    stop: int,
    metadata_path: str | Path,
    clips_path: str | Path,
) -> None:
    """The export_deepsif job: the plan rows [start, stop) as DeepSIF metadata and the spike
    library as DeepSIF's clip file."""
    write_deepsif_metadata(read_plan(plan_path, start, stop), metadata_path)
    write_deepsif_clips(library_path, clips_path)


def import_deepsif_plan(
    path: str | Path, library: Library, n_regions: int, seed: int, split: str
) -> Plan:
    """A DeepSIF metadata file (`*_sample_source*.mat`) as a plan.

    Reads selected_region, mag_change, scale_ratio, sensor_snr (or current_snr, as the released
    script saves it) and nmm_idx (rows of the clip library). DeepSIF's loader draws one of the
    scale ratios unseeded; here the choice is seeded per sample.
    """
    meta = load_mat(path)
    for key in ("selected_region", "mag_change", "scale_ratio", "nmm_idx"):
        if key not in meta:
            raise InputError(path, "variable missing from DeepSIF metadata", key=key)
    snr_key = "sensor_snr" if "sensor_snr" in meta else "current_snr"
    if snr_key not in meta:
        raise InputError(
            path, "variable missing (neither sensor_snr nor current_snr)", key="sensor_snr"
        )
    region = np.asarray(meta["selected_region"], np.float64)
    if region.ndim == 2:
        region = region[:, None, :]
    n, s, width = region.shape
    weights = np.asarray(meta["mag_change"], np.float64).reshape(n, s, -1)
    ratios = np.asarray(meta["scale_ratio"], np.float64).reshape(n, s, -1)
    nmm_idx = np.asarray(meta["nmm_idx"]).reshape(n, s)
    snr = np.asarray(meta[snr_key], np.float64).reshape(-1)
    if snr.size == 1 and n > 1:
        snr = np.full(n, snr[0])
    if snr.size != n:
        raise InputError(path, f"{snr.size} SNRs for {n} samples", key=snr_key)
    if (
        np.any(nmm_idx != np.round(nmm_idx))
        or nmm_idx.min() < 0
        or nmm_idx.max() >= library.n_clips
    ):
        raise InputError(
            path, f"clip rows must be integers in 0..{library.n_clips - 1}", key="nmm_idx"
        )
    is_pad = (region < 0) | (region >= DEEPSIF_PAD) | ~np.isfinite(region)
    size = (~is_pad).sum(axis=2).astype(np.int32)
    patch = np.full((n, s, PATCH_WIDTH), -1, np.int32)
    mag = np.zeros((n, s, PATCH_WIDTH))
    for i in range(n):
        for k in range(s):
            ids = region[i, k][~is_pad[i, k]].astype(np.int64)
            if ids.size == 0 or ids.max() >= n_regions:
                raise InputError(
                    path, f"sample {i} source {k}: bad region ids", key="selected_region"
                )
            w = weights[i, k][: ids.size]
            patch[i, k, : ids.size] = ids[:PATCH_WIDTH]
            mag[i, k, : ids.size] = w[:PATCH_WIDTH]
    choice = np.array(
        [[seeding.rng(seed, split, i, STREAM_PLAN).integers(ratios.shape[2])] * s for i in range(n)]
    )
    scale = np.take_along_axis(ratios, choice[..., None], axis=2)[..., 0]
    attrs = {
        "seed": seed,
        "split": split,
        "source": str(path),
        "point_05_mm": np.nan,
        "target_snrs_db": np.zeros(0),
        "patch_method": "imported",
    }
    return Plan(
        patch[:, :, 0].copy(),
        patch,
        np.minimum(size, PATCH_WIDTH),
        mag,
        nmm_idx.astype(np.int64),
        ratios,
        scale,
        snr,
        attrs,
    )


def import_deepsif_split(
    metadata_path: str | Path,
    anatomy_path: str | Path,
    library_path: str | Path,
    out_path: str | Path,
    seed: int,
    split: str,
) -> None:
    """The import_deepsif_plan job: a DeepSIF metadata file as the split's plan file."""
    from spikeforge.eeg.anatomy import read_anatomy

    n_regions = read_anatomy(anatomy_path).n_regions
    with Library(library_path) as library:
        plan = import_deepsif_plan(metadata_path, library, n_regions, seed, split)
    write_plan(plan, out_path)

"""DeepSIF's own loader format (docs/eeg-chain.md §7): `{split}_sample_source1.mat` (the plan:
selected_region, nmm_idx, scale_ratio, mag_change, sensor_snr; padding 15213) and
`{split}_sample_nmm.h5` (dataset `data` [clips, 500, R]); and the same metadata read back as a
plan, so an existing DeepSIF dataset can be re-synthesised.

The clip file is the spike library in DeepSIF's orientation and the same for every split: one
job writes it once, under the first split's name, and hard-links the other splits' names to it
(DeepSIF's loader derives the clip file's name from the metadata file's). The splits' names
are outputs of that one job, since Snakemake touches a job's outputs when it ends: a link that
another job made would change its own outputs' times."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from spikeforge.core import seeding
from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_path
from spikeforge.core.seeding import STREAM_PLAN
from spikeforge.eeg.library import Library
from spikeforge.eeg.plan import PATCH_WIDTH, Plan, read_plan_parts, write_plan
from spikeforge.io.mat import load_mat, save_mat

DEEPSIF_PAD = 15213


def write_deepsif_metadata(plan: Plan, path: str | Path, all_scale_ratios: bool = True) -> None:
    """DeepSIF's `{split}_sample_source1.mat`, read unchanged by its SpikeEEGBuild loader.

    scale_ratio [N, S, K]: with `all_scale_ratios`, every target SNR's ratio (as DeepSIF's own
    metadata), so its loader's per-epoch random pick augments the amplitudes; otherwise only
    the ratio this plan chose (K = 1), so the loader's pick is deterministic and its samples
    are spikeforge's.
    """
    in_patch = np.arange(PATCH_WIDTH) < plan.patch_size[..., None]
    selected = np.where(in_patch, plan.patch, DEEPSIF_PAD).astype(np.float64)
    mag = np.where(in_patch, plan.mag_change, DEEPSIF_PAD).astype(np.float64)
    save_mat(
        path,
        {
            "selected_region": selected,
            "nmm_idx": plan.clip.astype(np.int64),
            "scale_ratio": (
                plan.scale_ratios if all_scale_ratios else plan.scale[:, :, None]
            ).astype(np.float64),
            "mag_change": mag,
            "sensor_snr": plan.sensor_snr[:, None].astype(np.float64),
        },
    )


def write_deepsif_clips(library_path: str | Path, path: str | Path) -> None:
    """DeepSIF's clip file, dataset `data` [clips, 500, R], rows = library rows."""
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(library_path, "r") as src, h5py.File(tmp, "w") as out:
            clips = src["clips"]
            n, n_regions, n_time = clips.shape
            data = out.create_dataset(
                "data", (n, n_time, n_regions), np.float32, chunks=(1, n_time, n_regions)
            )
            for row in range(n):
                data[row] = clips[row].T


def link_or_copy(source: str | Path, path: str | Path) -> None:
    """`path` as a hard link to `source` (appearing atomically); a copy where the file system
    has no hard links."""
    with atomic_path(path, suffix=Path(path).suffix) as tmp:
        tmp.unlink()  # the staging name, free for the link
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def export_deepsif(
    library_path: str | Path,
    plan_parts: Mapping[str, Sequence[str | Path]],
    metadata_paths: Mapping[str, str | Path],
    clips_paths: Mapping[str, str | Path],
    all_scale_ratios: bool = True,
) -> None:
    """The export_deepsif job: per split, its plan (the parts, in order) as DeepSIF metadata,
    and the clip file once, linked under every split's name."""
    for split, parts in plan_parts.items():
        write_deepsif_metadata(read_plan_parts(parts), metadata_paths[split], all_scale_ratios)
    first, *others = list(clips_paths.values())
    write_deepsif_clips(library_path, first)
    for other in others:
        link_or_copy(first, other)


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

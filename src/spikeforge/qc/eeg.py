"""QC figures of the EEG chain, each from a bounded read of the run's own outputs: a few
samples of a split's first shard, the `snr` vector of every shard (8 bytes a sample), one
plan part, the library's per-clip provenance and a few clips' centre waveforms.

Each function returns the numbers it plotted, so a test can check where they come from."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spikeforge.qc.figures import pyplot, save

SAMPLES_SHOWN = 3
FS_HZ = 500.0


def _split(index_json: str | Path) -> Any:
    """A split's shards as listed in the index.json the split_index job writes (checked)."""
    from spikeforge.eeg.export.hdf5 import EEGDataset

    return EEGDataset.from_folder(Path(index_json).parent)


def _topomap(ax: Any, values: np.ndarray, channel_names: Sequence[str] | None) -> None:
    """Sensor values as MNE's topography where the electrodes are known (the demo head model
    names them), else as a bar per channel."""
    if channel_names:
        import mne

        info = mne.create_info(list(channel_names), FS_HZ, "eeg")
        from spikeforge.eeg.demo_anatomy import standard_montage

        info.set_montage(standard_montage(), verbose=False)
        mne.viz.plot_topomap(values, info, axes=ax, show=False, contours=4, sensors=True)
    else:
        ax.bar(np.arange(values.size), values, width=1.0, color="0.3")
        ax.set_xlabel("channel")


def samples_figure(
    index_json: str | Path, out: str | Path, channel_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """The split's first samples: butterfly plot of the EEG, its topography at the label
    source's peak, the label sources' time courses."""
    plt = pyplot()
    with _split(index_json) as split:
        samples = [split[i] for i in range(min(SAMPLES_SHOWN, len(split)))]
    n = len(samples)
    time_ms = np.arange(samples[0]["eeg_data"].shape[0]) / FS_HZ * 1000.0
    fig, axes = plt.subplots(n, 3, figsize=(10, 2.4 * n), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1.3, 3]})  # fmt: skip
    index, snr, peaks = [], [], []
    for i, sample in enumerate(samples):
        eeg, source = sample["eeg_data"], sample["source_data"]  # [T, C], [T, R]
        regions = np.flatnonzero(np.any(source != 0, axis=0))
        peak = int(np.argmax(np.abs(source[:, regions]).max(axis=1))) if regions.size else 0
        index.append(int(sample["index"][0, 0]))
        snr.append(float(sample["snr"][0, 0]))
        peaks.append(peak)
        ax = axes[i, 0]
        ax.plot(time_ms, eeg, lw=0.4, color="0.2", alpha=0.6)
        ax.axvline(time_ms[peak], color="tab:red", lw=0.8)
        ax.set_title(f"sample {index[-1]}: EEG, {eeg.shape[1]} channels, SNR {snr[-1]:g} dB")
        ax.set_xlabel("ms")
        _topomap(axes[i, 1], eeg[peak], channel_names)
        axes[i, 1].set_title(f"at {time_ms[peak]:.0f} ms")
        for region in regions:
            axes[i, 2].plot(time_ms, source[:, region], lw=0.6, label=f"region {region}")
        axes[i, 2].set_title(f"label sources ({regions.size} regions)")
        axes[i, 2].set_xlabel("ms")
    fig.tight_layout()
    save(fig, out)
    return {"index": index, "snr": snr, "peak_samples": peaks}


def snr_figure(
    index_json: str | Path, configured_db: Sequence[float], out: str | Path
) -> dict[str, Any]:
    """How often each sensor SNR occurs in the split's shards, against the configured SNRs."""
    plt = pyplot()
    with _split(index_json) as split:
        values = np.concatenate([shard.snr() for shard in split.shards])
    levels, counts = np.unique(values, return_counts=True)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(levels, counts, width=1.0, color="tab:blue", label="samples")
    for level in configured_db:
        ax.axvline(level, color="tab:red", lw=0.8, ls="--")
    ax.set_xlabel("sensor SNR (dB); dashed: configured")
    ax.set_ylabel("samples")
    ax.set_title(f"{values.size:,} samples")
    fig.tight_layout()
    save(fig, out)
    return {"levels": levels.tolist(), "counts": counts.tolist(), "n": int(values.size)}


def plan_figure(plan_part: str | Path, centres: np.ndarray, out: str | Path) -> dict[str, Any]:
    """One plan part (at most ~10,000 samples): patch sizes, and how often each region is a
    centre, on the regions' positions seen from above."""
    from spikeforge.eeg.plan import read_plan

    plt = pyplot()
    plan = read_plan(plan_part)
    sizes = np.asarray(plan.patch_size, np.int64).ravel()
    counts = np.bincount(np.asarray(plan.centre, np.int64).ravel(), minlength=centres.shape[0])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].hist(sizes, bins=np.arange(sizes.max() + 2) - 0.5, color="tab:green")
    axes[0].set_xlabel("regions per patch")
    axes[0].set_ylabel("sources")
    axes[0].set_title("patch sizes")
    scatter = axes[1].scatter(centres[:, 0], centres[:, 1], c=counts, s=6, cmap="viridis")
    fig.colorbar(scatter, ax=axes[1], label="times a centre")
    axes[1].set_title("patch centres (regions from above)")
    axes[1].set_aspect("equal")
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    fig.tight_layout()
    save(fig, out)
    return {"sizes": np.bincount(sizes).tolist(), "centre_counts": counts.tolist()}


def clips_figure(library: str | Path, out: str | Path, shown: int = 4) -> dict[str, Any]:
    """The spike library: clips per region, a few regions' centre waveforms, and the scale
    factor alpha of clips extracted from raw recordings."""
    plt = pyplot()
    with h5py.File(library, "r") as f:
        region = f["region"][()]
        alpha = f["alpha"][()] if "alpha" in f else np.zeros(0)
        picks = np.linspace(0, region.size - 1, min(shown, region.size)).astype(int)
        waves = np.stack([f["centre_waveform"][int(i)] for i in picks])
    regions, per_region = np.unique(region, return_counts=True)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    width = max(1.0, (regions.max() - regions.min() + 1) / 80.0)  # visible at any spread
    axes[0].bar(regions, per_region, width=width, color="tab:purple")
    axes[0].set_xlabel("region")
    axes[0].set_ylabel("clips")
    axes[0].set_title(f"{region.size:,} clips in {regions.size} regions")
    time_ms = np.arange(waves.shape[1]) / FS_HZ * 1000.0
    for i, wave in zip(picks, waves, strict=True):
        axes[1].plot(time_ms, wave, lw=0.7, label=f"clip {i} (region {region[i]})")
    axes[1].legend(fontsize=6)
    axes[1].set_xlabel("ms")
    axes[1].set_title("the spiking region's waveform (mV, rescaled)")
    finite = alpha[np.isfinite(alpha)]
    if finite.size:
        axes[2].hist(finite, bins=30, color="tab:orange")
        axes[2].set_title(f"scale factor alpha ({finite.size} clips)")
    else:
        axes[2].text(0.5, 0.5, "no alpha: clips not extracted from raw recordings",
                     ha="center", va="center", transform=axes[2].transAxes)  # fmt: skip
        axes[2].set_title("scale factor alpha")
    fig.tight_layout()
    save(fig, out)
    return {"regions": regions.tolist(), "clips_per_region": per_region.tolist(),
            "alpha_n": int(finite.size)}  # fmt: skip


def split_figures(
    index_json: str | Path,
    plan_part: str | Path,
    anatomy_path: str | Path,
    sensor_snrs_db: Sequence[float],
    channel_names: Sequence[str] | None,
    outputs: dict[str, str],
) -> None:
    """The qc_eeg_split job: a split's samples, SNR and plan figures (outputs keys samples,
    snr, plan)."""
    from spikeforge.eeg.anatomy import read_anatomy

    samples_figure(index_json, outputs["samples"], channel_names)
    snr_figure(index_json, sensor_snrs_db, outputs["snr"])
    plan_figure(plan_part, read_anatomy(anatomy_path).centres, outputs["plan"])

"""QC figure of one converted paired cell, from a bounded read of its outputs: the metadata,
templates.npz, each segment file's spike list (memory-mapped: the traces are not read) and a
100 ms excerpt of one segment's traces around a ground-truth spike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.qc.figures import pyplot, save

EXCERPT_MS = 100.0
EXCERPT_CHANNELS = 12
PROBE_WINDOW_UM = 300.0


def _segment_files(cell_dir: Path) -> list[tuple[str, Path]]:
    return [(split, path) for split in ("train", "test")
            for path in sorted((cell_dir / split).glob("*.arrow"))]  # fmt: skip


def _read_row(path: Path) -> Any:
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_next_batch()


def cell_figure(cell_dir: str | Path, out: str | Path) -> dict[str, Any]:
    """Template on the probe layout (peak channel and bad channels marked), the peak
    channel's template, spikes per segment, and preprocessed traces around a spike."""
    plt = pyplot()
    cell_dir = Path(cell_dir)
    meta = json.loads((cell_dir / "conversion_metadata.json").read_text())
    with np.load(cell_dir / "templates.npz") as npz:
        template = npz["templates"][0]  # [T, C]
        positions = npz["probe_positions"]
        fs = float(npz["sampling_frequency"])
    peak = int(meta["unit_peak_channel"]["0"])
    bad = set(meta.get("bad_channel_ids", []))
    unconnected = set(meta.get("unconnected_channel_ids", []))
    detected = set(meta.get("detector_bad_channel_ids", bad - unconnected))

    counts, splits, excerpt = [], [], None
    for split, path in _segment_files(cell_dir):
        row = _read_row(path)
        times = row.column("ctt").values.values.to_numpy()
        counts.append(int(times.size))
        splits.append(split)
        if excerpt is None and times.size:
            excerpt = (path, row, float(times[0]))
        del row

    fig, axes = plt.subplots(1, 4, figsize=(15, 4.5),
                             gridspec_kw={"width_ratios": [1.2, 1.4, 2, 2]})  # fmt: skip
    ptp = template.max(axis=0) - template.min(axis=0)
    ax = axes[0]
    # the sites within PROBE_WINDOW_UM of the peak, where the footprint is
    near = np.abs(positions[:, 1] - positions[peak, 1]) <= PROBE_WINDOW_UM
    sc = ax.scatter(positions[near, 0], positions[near, 1], c=ptp[near], s=40, cmap="magma",
                    marker="s")  # fmt: skip
    marks = ((detected, "x", "tab:blue", "bad (detector)"),
             (unconnected, "+", "tab:green", "reference site"))  # fmt: skip
    for ids, marker, colour, label in marks:
        ids = sorted(i for i in ids if near[i])
        if ids:
            ax.scatter(positions[ids, 0], positions[ids, 1], marker=marker, c=colour, s=25,
                       label=f"{label}: {len(ids)} here")  # fmt: skip
    ax.scatter(*positions[peak], marker="*", c="tab:red", s=120, label=f"peak channel {peak}")
    ax.legend(fontsize=6, loc="upper right")
    fig.colorbar(sc, ax=ax, label="template peak-to-peak")
    ax.set_title(f"probe near the peak ({len(bad)} bad in all)")
    ax.set_xlabel("µm")
    ax.set_xlim(positions[:, 0].min() - 15, positions[:, 0].max() + 15)
    nearest = np.argsort(np.hypot(*(positions - positions[peak]).T))[:EXCERPT_CHANNELS]
    time_ms = (np.arange(template.shape[0]) - int(np.argmin(template[:, peak]))) / fs * 1000
    for c in nearest:
        axes[1].plot(time_ms, template[:, c], lw=1.2 if c == peak else 0.5,
                     color="tab:red" if c == peak else "0.5")  # fmt: skip
    axes[1].set_title(f"template, {EXCERPT_CHANNELS} nearest channels")
    axes[1].set_xlabel("ms")
    colours = ["tab:blue" if s == "train" else "tab:orange" for s in splits]
    axes[2].bar(np.arange(len(counts)), counts, color=colours, width=1.0)
    axes[2].set_title(f"ground-truth spikes per segment ({sum(counts)}; blue train, orange test)")
    axes[2].set_xlabel("segment")
    axes[2].xaxis.get_major_locator().set_params(integer=True)
    if excerpt is not None:
        path, row, spike_ms = excerpt
        cp = row.column("cp")
        n_channels = len(cp.values)
        flat = cp.values.values.to_numpy()
        length = flat.size // n_channels
        centre = int(round(spike_ms / 1000 * fs))
        half = int(EXCERPT_MS / 2000 * fs)
        lo, hi = max(0, centre - half), min(length, centre + half)
        window_ms = np.arange(lo, hi) / fs * 1000
        shown = sorted(nearest)
        spacing = 0.0
        for c in shown:
            trace = flat[c * length + lo : c * length + hi]
            spacing = max(spacing, float(np.ptp(trace)))
        for k, c in enumerate(shown):
            trace = flat[c * length + lo : c * length + hi]
            axes[3].plot(window_ms, trace + k * spacing, lw=0.5,
                         color="tab:red" if c == peak else "0.3")  # fmt: skip
        axes[3].axvline(spike_ms, color="tab:red", lw=0.6, ls="--")
        axes[3].set_title(f"{path.parent.name}/{path.name}: {EXCERPT_MS:.0f} ms around a spike")
        axes[3].set_xlabel("ms in segment")
        axes[3].set_yticks([])
        del row, cp, flat
    fig.tight_layout()
    save(fig, out)
    return {"peak_channel": peak, "spikes_per_segment": counts, "bad_channels": sorted(bad)}

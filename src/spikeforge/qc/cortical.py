"""QC figure of one cortical sheet: its first exported part (one CSR file, neurons x images x
(blank + image) 1 ms counts), as the mean rate per image and the time course over the blank
and the image, averaged over neurons and images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.qc.figures import pyplot, save

SMOOTH_MS = 10


def sheet_figure(
    spikes: str | Path, image_ids: str | Path, out: str | Path, title: str, bin_ms: float = 1.0
) -> dict[str, Any]:
    import scipy.sparse

    plt = pyplot()
    counts = scipy.sparse.load_npz(spikes).tocsr()
    images = np.load(image_ids)
    n_neurons, n_cols = counts.shape
    per_image = n_cols // max(images.size, 1)
    seconds = per_image * bin_ms / 1000.0
    totals = np.asarray(counts.sum(axis=0)).ravel()[: images.size * per_image]
    by_image = totals.reshape(images.size, per_image)
    rates = by_image.sum(axis=1) / max(n_neurons, 1) / seconds
    course = by_image.mean(axis=0) / max(n_neurons, 1) / (bin_ms / 1000.0)
    kernel = np.ones(SMOOTH_MS) / SMOOTH_MS
    smooth = np.convolve(course, kernel, mode="same")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    axes[0].bar(np.arange(images.size), rates, color="tab:green", width=0.8)
    axes[0].set_xticks(np.arange(images.size), [str(i) for i in images], rotation=90, fontsize=6)
    axes[0].set_xlabel("image id")
    axes[0].set_ylabel("mean rate (spikes/s per neuron)")
    axes[0].set_title(f"{title}: {n_neurons} neurons, {images.size} images")
    axes[1].plot(np.arange(per_image) * bin_ms, smooth, color="0.2", lw=0.8)
    axes[1].set_xlabel("ms from the blank's start (blank, then the image)")
    axes[1].set_ylabel("spikes/s per neuron")
    axes[1].set_title(f"mean over neurons and images ({SMOOTH_MS} ms smoothing)")
    fig.tight_layout()
    save(fig, out)
    return {"rates": rates.tolist(), "neurons": int(n_neurons)}

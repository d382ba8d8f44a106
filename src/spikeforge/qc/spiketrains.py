"""QC figure of one exported spike-train item (a paired cell's ground-truth unit, a mock
session's units, a named file): a raster excerpt and the units' firing rates, read back from
the item's HDF5 export with the project's own loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.qc.figures import pyplot, save

EXCERPT_S = 10.0
UNITS_SHOWN = 60


def item_figure(export: str | Path, out: str | Path, title: str) -> dict[str, Any]:
    from spikeforge.spiketrains.hdf5 import read_hdf5

    plt = pyplot()
    trains = read_hdf5(export)
    start = float(trains.start_time)
    end = float(trains.end_time())
    duration = max(end - start, 1e-9)
    n_units = trains.n_units
    counts = np.array([trains.train(u).size for u in range(n_units)])
    rates = counts / duration
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), gridspec_kw={"width_ratios": [2.5, 1]})
    shown = range(min(n_units, UNITS_SHOWN))
    for row in shown:
        times = trains.train(row)
        times = times[times < start + EXCERPT_S]
        axes[0].vlines(times, row + 0.6, row + 1.4, lw=0.6, color="0.15")
    axes[0].set_xlim(start, start + min(EXCERPT_S, duration))
    axes[0].set_ylim(0.4, len(shown) + 0.6)
    axes[0].set_xlabel("s")
    axes[0].set_ylabel("unit")
    axes[0].set_title(f"{title}: first {min(EXCERPT_S, duration):g} s of "
                      f"{len(shown)} of {n_units} units")  # fmt: skip
    axes[1].hist(rates, bins=max(5, min(30, n_units)), color="tab:blue")
    axes[1].set_xlabel("firing rate (spikes/s)")
    axes[1].set_ylabel("units")
    axes[1].set_title(f"{counts.sum():,} spikes in {duration:.1f} s")
    fig.tight_layout()
    save(fig, out)
    return {"n_units": int(n_units), "rates": rates.tolist()}

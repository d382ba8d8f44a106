"""Shared figure plumbing of the QC rules: matplotlib without a display, files written under a
temporary name and renamed, and bytes that depend only on the figure (no timestamp, no
software version in the PNG), so a rebuilt figure is byte-identical."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spikeforge.core.files import atomic_path

DPI = 80


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported here: the workflow's start-up never
    needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "svg.hashsalt": "spikeforge"})
    return plt


def save(fig: Any, path: str | Path) -> None:
    """The figure as a PNG at `path`, atomically; the figure is closed."""
    plt = pyplot()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)

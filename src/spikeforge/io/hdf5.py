"""HDF5 helpers shared by the chains."""

from __future__ import annotations

from typing import Any


def compression_args(compression: str, level: int) -> dict[str, Any]:
    """h5py create_dataset keywords of a compression setting (none, gzip at `level`, lzf)."""
    if compression == "none":
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": level, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    raise ValueError(f"unknown compression {compression!r}")

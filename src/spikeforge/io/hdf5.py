"""HDF5 helpers shared by the chains."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py

from spikeforge.core.errors import InputError


def compression_args(compression: str, level: int) -> dict[str, Any]:
    """h5py create_dataset keywords of a compression setting (none, gzip at `level`, lzf)."""
    if compression == "none":
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": level, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    raise ValueError(f"unknown compression {compression!r}")


def _not_this_file(error: BaseException) -> bool:
    """An OS error with an errno is the system's (disk full while writing elsewhere), not a
    sign that the file being read is damaged."""
    return isinstance(error, OSError) and error.errno is not None


@contextlib.contextmanager
def open_hdf5(path: str | Path, what: str) -> Iterator[h5py.File]:
    """Open an HDF5 file for reading; a missing, truncated or incomplete file (also one whose
    datasets fail to read inside the block) becomes one InputError naming it, since h5py's
    own messages do not."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise InputError(path, f"cannot be opened as {what}: {error}") from None
    try:
        yield handle
    except (KeyError, OSError) as error:
        if _not_this_file(error):
            raise
        raise InputError(path, f"is not a complete {what}: {error}") from None
    finally:
        handle.close()

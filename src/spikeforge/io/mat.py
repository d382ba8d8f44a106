"""MATLAB files: v5 through scipy.io, v7.3 through h5py; writes are atomic and byte-stable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_path


def _scipy_io() -> Any:
    """scipy.io, imported when first needed: jobs that never touch MATLAB files (synthesis)
    start 0.2 s sooner."""
    import scipy.io

    return scipy.io


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(1024)
    # v7.3 files carry a 512-byte MATLAB header before the HDF5 superblock.
    return head[:8] == _HDF5_SIGNATURE or head[512:520] == _HDF5_SIGNATURE


def _h5_to_numpy(node: Any, handle: h5py.File) -> Any:
    if isinstance(node, h5py.Group):
        return {name: _h5_to_numpy(node[name], handle) for name in node}
    value = node[()]
    if node.dtype == h5py.ref_dtype:
        # Cell arrays: an array of references, each to one cell's content.
        cells = np.empty(value.shape, dtype=object)
        for index, ref in np.ndenumerate(value):
            cells[index] = _h5_to_numpy(handle[ref], handle)
        return cells.T
    if isinstance(value, np.ndarray):
        # MATLAB writes column-major; h5py reads the transposed shape.
        return value.T
    return value


def _read_mat(path: str | Path, read: Callable[[Path], Any]) -> Any:
    """Run `read` on a .mat file; a missing or corrupt file becomes one InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return read(path)
    except Exception as exc:  # scipy/h5py raise many types for a corrupt file
        raise InputError(path, f"not a readable MATLAB file ({type(exc).__name__}: {exc})") from exc


def load_mat(path: str | Path, keys: list[str] | None = None) -> dict[str, Any]:
    """Read variables of a .mat file (v5 or v7.3) as numpy arrays.

    Cell arrays become object arrays of numpy arrays in both formats.
    Raises InputError naming the file when it is missing or unreadable.
    """

    def read(path: Path) -> dict[str, Any]:
        if _is_hdf5(path):
            with h5py.File(path, "r") as handle:
                names = [k for k in handle if not k.startswith("#")]
                wanted = [k for k in names if keys is None or k in keys]
                return {k: _h5_to_numpy(handle[k], handle) for k in wanted}
        data = _scipy_io().loadmat(path, variable_names=keys)
        return {k: v for k, v in data.items() if not k.startswith("__")}

    return _read_mat(path, read)


def list_mat_keys(path: str | Path) -> list[str]:
    """Variable names in a .mat file, without reading the data."""

    def read(path: Path) -> list[str]:
        if _is_hdf5(path):
            with h5py.File(path, "r") as handle:
                return [k for k in handle if not k.startswith("#")]
        return [name for name, _, _ in _scipy_io().whosmat(path)]

    return _read_mat(path, read)


def mat_variable_shape(path: str | Path, names: list[str]) -> tuple[int, ...]:
    """Shape of the first of `names` in a .mat file, read from its header only."""

    def read(path: Path) -> dict[str, tuple[int, ...]]:
        if _is_hdf5(path):
            with h5py.File(path, "r") as handle:
                # MATLAB writes column-major: HDF5 shows the dimensions reversed.
                return {k: tuple(reversed(handle[k].shape)) for k in handle if k[0] != "#"}
        return {name: tuple(shape) for name, shape, _ in _scipy_io().whosmat(path)}

    shapes = _read_mat(path, read)
    for name in names:
        if name in shapes:
            return shapes[name]
    raise InputError(
        path, f"none of the variables {', '.join(names)}; file has {', '.join(shapes) or 'none'}"
    )


# scipy stamps the creation time into the 116-byte text header; a fixed header keeps
# rebuilt files byte-identical.
_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by spikeforge".ljust(116, b" ")


def save_mat(path: str | Path, variables: Mapping[str, Any]) -> None:
    """Write a MATLAB v5 file atomically (readable by MATLAB, Octave and scipy)."""
    with atomic_path(path, suffix=".mat") as tmp:
        _scipy_io().savemat(tmp, dict(variables), do_compression=False, oned_as="column")
        with open(tmp, "r+b") as handle:
            handle.write(_MAT_HEADER)

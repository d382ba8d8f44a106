"""Each output format's own reader, run over a whole file with bounded memory: a file that
matches its checksum but no longer opens is as damaged as one that does not. One table maps
a file name's suffix to its reader; Arrow dataset folders are read through `datasets`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

BLOCK_BYTES = 64 << 20
# datasets' loader is not thread-safe (its progress bars share a class-level lock).
_DATASETS_LOCK = threading.Lock()


def read_hdf5(path: Path) -> None:
    """Open the file and read every dataset, a block of rows at a time."""
    import h5py

    def read(name: str, node: object) -> None:
        if not isinstance(node, h5py.Dataset) or node.shape is None:
            return
        if node.ndim == 0:
            node[()]
            return
        row_bytes = max(1, node.dtype.itemsize * int(np.prod(node.shape[1:], dtype=np.int64)))
        step = max(1, BLOCK_BYTES // row_bytes)
        for start in range(0, node.shape[0], step):
            node[start : start + step]

    with h5py.File(path, "r") as handle:
        handle.visititems(read)


def read_mat(path: Path) -> None:
    """MATLAB v7.3 files are HDF5; older ones are read by scipy."""
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):
        read_hdf5(path)
    else:
        scipy.io.loadmat(path)


def read_npz(path: Path) -> None:
    with np.load(path, allow_pickle=False) as archive:
        for name in archive.files:
            archive[name]


def read_npy(path: Path) -> None:
    """Plain arrays through a memory map; dict-valued files (the sessions' epiphyte layout)
    through the arrays-only unpickler."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:
        from spikeforge.io.pickled_npy import load_dict

        load_dict(path)
        return
    flat = array.reshape(-1) if array.size else array
    step = max(1, BLOCK_BYTES // max(1, array.itemsize))
    for start in range(0, flat.size, step):
        np.asarray(flat[start : start + step]).copy()


def read_json(path: Path) -> None:
    json.loads(path.read_text())


def read_nwb(path: Path) -> None:
    import pynwb

    read_hdf5(path)
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        io.read()


def read_arrow_dataset(folder: Path) -> None:
    """A saved Hugging Face dataset folder, through `datasets.load_from_disk`, every column
    of every record batch touched."""
    import datasets

    with _DATASETS_LOCK:
        datasets.disable_progress_bars()
        dataset = datasets.load_from_disk(str(folder))
        parts = dataset.values() if isinstance(dataset, datasets.DatasetDict) else [dataset]
        for part in parts:
            for batch in part.data.table.to_batches():
                batch.validate(full=True)


READERS: dict[str, Callable[[Path], None]] = {
    ".h5": read_hdf5,
    ".hdf5": read_hdf5,
    ".mat": read_mat,
    ".npz": read_npz,
    ".npy": read_npy,
    ".json": read_json,
    ".nwb": read_nwb,
}


def reader_for(path: Path) -> Callable[[Path], None] | None:
    return READERS.get(path.suffix.lower())


def is_arrow_dataset(folder: Path) -> bool:
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()

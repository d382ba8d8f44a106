"""Sharded HDF5, the main layout of synthesised EEG, and its loader (docs/eeg-chain.md §7).

Shard layout (n samples, T = 500, C channels, S sources, nnz labelled region time courses):
  eeg                 [n, T, C] float32  normalised EEG (the MAT layout's eeg_data)
  labels              [n, S, 70] int32   patch regions, centre first, padded (attribute label_pad)
  snr                 [n] float64        sensor SNR (dB)
  index               [n] int64          sample index within the split
  source_ptr          [n + 1] int64      sample i's sources are rows source_ptr[i]:source_ptr[i+1]
  source_regions      [nnz] int32        region of each stored time course
  source_timecourses  [nnz, T] float32   normalised source; every other region is zero
Attributes: n_regions, n_channels, split, seed, noise, label_pad, first_index.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_path
from spikeforge.core.progress import Progress
from spikeforge.eeg.anatomy import read_anatomy
from spikeforge.eeg.library import Library
from spikeforge.eeg.plan import PATCH_WIDTH, Plan, read_plan
from spikeforge.eeg.synthesis import SampleBlock, synthesize
from spikeforge.io.hdf5 import compression_args, open_hdf5

log = logging.getLogger(__name__)


def write_hdf5_shard(
    path: str | Path,
    blocks: Iterable[SampleBlock],
    n_samples: int,
    n_time: int,
    n_channels: int,
    n_sources: int,
    attrs: dict[str, Any],
    compression: str = "none",
    level: int = 1,
) -> None:
    """Stream blocks into one shard file; it appears under its name only when complete."""
    comp = compression_args(compression, level)
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as out:
        chunk = max(1, min(n_samples, 32))
        eeg = out.create_dataset(
            "eeg",
            (n_samples, n_time, n_channels),
            np.float32,
            chunks=(chunk, n_time, n_channels),
            **comp,
        )
        labels = out.create_dataset("labels", (n_samples, n_sources, PATCH_WIDTH), np.int32)
        snr = out.create_dataset("snr", (n_samples,), np.float64)
        index = out.create_dataset("index", (n_samples,), np.int64)
        ptr = out.create_dataset("source_ptr", (n_samples + 1,), np.int64)
        regions = out.create_dataset(
            "source_regions", (0,), np.int32, maxshape=(None,), chunks=(4096,)
        )
        courses = out.create_dataset(
            "source_timecourses",
            (0, n_time),
            np.float32,
            maxshape=(None, n_time),
            chunks=(64, n_time),
            **comp,
        )
        ptr[0] = 0
        done = 0
        progress = Progress(n_samples, f"{Path(path).name}", " samples")
        for block in blocks:
            n = block.index.size
            progress.update(done + n)
            sl = slice(done, done + n)
            eeg[sl] = block.eeg
            labels[sl] = block.labels
            snr[sl] = block.snr
            index[sl] = block.index
            nnz_before = regions.shape[0]
            ptr[done + 1 : done + n + 1] = block.source_ptr[1:] + nnz_before
            added = block.source_regions.size
            regions.resize((nnz_before + added,))
            regions[nnz_before:] = block.source_regions
            courses.resize((nnz_before + added, n_time))
            courses[nnz_before:] = block.source_timecourses
            done += n
            del block  # let the block go before the generator builds the next one
        if done != n_samples:
            raise RuntimeError(f"shard expected {n_samples} samples, got {done}")
        for key, value in attrs.items():
            out.attrs[key] = value


def synthesize_shard(
    path: str | Path,
    fwd: np.ndarray,
    library: Library,
    plan: Plan,
    first_index: int,
    seed: int,
    split: str,
    add_noise: bool = True,
    label_pad: int = -1,
    compression: str = "none",
    level: int = 1,
) -> None:
    """Synthesise plan rows 0..N-1 as samples first_index.. and stream them into one HDF5
    shard, with the attributes that describe how it was made."""
    blocks = synthesize(
        fwd, library, plan, first_index, seed, split, add_noise=add_noise, label_pad=label_pad
    )
    attrs = {
        "n_regions": fwd.shape[1],
        "n_channels": fwd.shape[0],
        "split": split,
        "seed": seed,
        "noise": add_noise,
        "label_pad": label_pad,
        "first_index": first_index,
    }
    write_hdf5_shard(
        path,
        blocks,
        plan.n_samples,
        library.n_time,
        fwd.shape[0],
        plan.n_sources,
        attrs=attrs,
        compression=compression,
        level=level,
    )


def synthesize_shard_file(
    path: str | Path,
    anatomy_path: str | Path,
    library_path: str | Path,
    plan_path: str | Path,
    sample_range: tuple[int, int],
    seed: int,
    split: str,
    **options: Any,
) -> None:
    """The synthesize_shard job: samples [first, stop) of the split's plan into one shard
    (`options`: synthesize_shard's add_noise, label_pad, compression, level)."""
    first, stop = sample_range
    fwd = read_anatomy(anatomy_path).leadfield
    plan = read_plan(plan_path, first, stop)
    with Library(library_path) as library:
        synthesize_shard(path, fwd, library, plan, first, seed, split, **options)
    log.info("%s samples %d..%d written", split, first, stop - 1)


class EEGShard:
    """One HDF5 shard; `sample(i)` returns exactly the arrays of the MAT layout."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as error:  # h5py's messages do not name the file
            raise InputError(self.path, f"cannot be opened as an HDF5 shard: {error}") from None
        try:
            self.n_regions = int(self._file.attrs["n_regions"])
            self.index = self._file["index"][()]
            self._ptr = self._file["source_ptr"][()]
        except (KeyError, OSError) as error:
            self._file.close()
            raise InputError(self.path, f"is not a complete shard: {error}") from None

    def __len__(self) -> int:
        return int(self.index.size)

    def sample(self, i: int) -> dict[str, np.ndarray]:
        f = self._file
        eeg = f["eeg"][i]
        a, b = int(self._ptr[i]), int(self._ptr[i + 1])
        source = np.zeros((eeg.shape[0], self.n_regions), np.float32)
        source[:, f["source_regions"][a:b]] = f["source_timecourses"][a:b].T
        return {
            "eeg_data": eeg,
            "source_data": source,
            "labels": f["labels"][i],
            "snr": np.array([[f["snr"][i]]]),
            "index": np.array([[self.index[i]]], dtype=np.int64),
        }

    def snr(self) -> np.ndarray:
        """Every sample's sensor SNR (dB), without reading the samples."""
        return self._file["snr"][()]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EEGShard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SPLIT_INDEX = "index.json"


def write_split_index(path: str | Path, shard_paths: Sequence[str | Path]) -> dict[str, Any]:
    """The split_index job: `index.json` beside a split's shards, listing them in sample order
    with their sample ranges, so a loader reads exactly the shards this run made (never a
    leftover of another run in the same folder). Shards must continue each other's indices."""
    entries = []
    for shard_path in shard_paths:
        with open_hdf5(shard_path, "HDF5 shard") as shard:
            first = int(shard.attrs["first_index"])
            entries.append(
                {
                    "file": Path(shard_path).name,
                    "first_index": first,
                    "n_samples": int(shard["index"].shape[0]),
                    "split": str(shard.attrs["split"]),
                    "n_regions": int(shard.attrs["n_regions"]),
                    "n_channels": int(shard.attrs["n_channels"]),
                }
            )
    entries.sort(key=lambda e: e["first_index"])
    _check_continuous(entries, str(path))
    index = {
        "split": entries[0]["split"] if entries else None,
        "first_index": entries[0]["first_index"] if entries else 0,
        "n_samples": sum(e["n_samples"] for e in entries),
        "shards": [{k: e[k] for k in ("file", "first_index", "n_samples")} for e in entries],
    }
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(index, indent=1))
    return index


def _check_continuous(entries: list[dict[str, Any]], where: str) -> None:
    for before, after in zip(entries, entries[1:], strict=False):
        if after["first_index"] != before["first_index"] + before["n_samples"]:
            raise ValueError(
                f"{where}: {after['file']} starts at sample {after['first_index']}, "
                f"{before['file']} ends at {before['first_index'] + before['n_samples']}"
            )
        for key in ("split", "n_regions", "n_channels"):
            if key in before and before[key] != after[key]:
                raise ValueError(
                    f"{where}: {after['file']} has {key} {after[key]}, "
                    f"{before['file']} {before[key]}: shards of different runs"
                )


class EEGDataset:
    """All shards of a split as one indexable dataset; position 0 is the split's first exported
    sample (`sample["index"]` gives its index within the split's plan)."""

    def __init__(self, shard_paths: Sequence[str | Path]) -> None:
        self.shards = [EEGShard(p) for p in shard_paths]
        sizes = [len(s) for s in self.shards]
        self._offsets = np.cumsum([0] + sizes)

    @classmethod
    def from_folder(cls, folder: str | Path) -> EEGDataset:
        """The shards a split's index.json lists (the workflow writes it); a listed shard that
        is missing or a shard that is not listed is an error. A folder without an index (shards
        copied by hand) is read in name order, and its shards must continue each other's
        sample indices. Every error names the file."""
        folder = Path(folder)
        index_path = folder / SPLIT_INDEX
        if index_path.is_file():
            index = json.loads(index_path.read_text())
            paths = [folder / entry["file"] for entry in index["shards"]]
            missing = [p.name for p in paths if not p.is_file()]
            if missing:
                raise FileNotFoundError(f"{index_path}: listed shards missing: {missing}")
            listed = {p.name for p in paths}
            extra = sorted(p.name for p in folder.glob("shard_*.h5") if p.name not in listed)
            if extra:
                raise InputError(
                    index_path, f"shards in the folder but not listed (another run's?): {extra}"
                )
            return cls(paths)
        paths = sorted(folder.glob("shard_*.h5"))
        if not paths:
            raise FileNotFoundError(f"{folder}: no {SPLIT_INDEX} and no shard_*.h5")
        dataset = cls(paths)
        entries = [
            {"file": s.path.name, "first_index": int(s.index[0]) if len(s) else 0,
             "n_samples": len(s), "n_regions": s.n_regions}
            for s in dataset.shards
        ]  # fmt: skip
        try:
            _check_continuous(entries, str(folder))
        except ValueError:
            dataset.close()
            raise
        return dataset

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, position: int) -> dict[str, np.ndarray]:
        if not 0 <= position < len(self):
            raise IndexError(position)
        shard = int(np.searchsorted(self._offsets, position, side="right") - 1)
        return self.shards[shard].sample(position - int(self._offsets[shard]))

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for position in range(len(self)):
            yield self[position]

    def close(self) -> None:
        for shard in self.shards:
            shard.close()

    def __enter__(self) -> EEGDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

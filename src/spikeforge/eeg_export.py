"""Exports of synthesised EEG: sharded HDF5 (default), per-sample MAT, DeepSIF's loader format.

HDF5 shard layout (n samples, T = 500, C channels, S sources, nnz labelled region time courses):
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

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spikeforge.matio import atomic_path, save_mat
from spikeforge.plan import DEEPSIF_PAD, PATCH_WIDTH, Plan
from spikeforge.spike_library import Library
from spikeforge.synthesis import SampleBlock, synthesize


def _compression_args(compression: str, level: int) -> dict[str, Any]:
    if compression == "none":
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": level, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    raise ValueError(f"unknown compression {compression!r}")


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
    comp = _compression_args(compression, level)
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
        for block in blocks:
            n = block.index.size
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


class EEGShard:
    """One HDF5 shard; `sample(i)` returns exactly the arrays of the MAT layout."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = h5py.File(self.path, "r")
        self.n_regions = int(self._file.attrs["n_regions"])
        self.index = self._file["index"][()]
        self._ptr = self._file["source_ptr"][()]

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

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EEGShard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EEGDataset:
    """All shards of a split as one indexable dataset (index = position in the split export)."""

    def __init__(self, shard_paths: Sequence[str | Path]) -> None:
        self.shards = [EEGShard(p) for p in sorted(map(str, shard_paths))]
        sizes = [len(s) for s in self.shards]
        self._offsets = np.cumsum([0] + sizes)

    @classmethod
    def from_folder(cls, folder: str | Path) -> EEGDataset:
        return cls(sorted(Path(folder).glob("shard_*.h5")))

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


def write_mat_samples(shard_path: str | Path, folder: str | Path) -> list[Path]:
    """The per-sample MAT layout (`sample_{index:05d}.mat`) for every sample of one shard."""
    folder = Path(folder)
    written = []
    with EEGShard(shard_path) as shard:
        for i in range(len(shard)):
            sample = shard.sample(i)
            path = folder / f"sample_{int(sample['index'][0, 0]):05d}.mat"
            save_mat(path, sample)
            written.append(path)
    return written


def write_extraction_metadata(
    path: str | Path,
    n_extracted: int,
    n_failed: int,
    start_index: int,
    dataset_path: str,
    forward_model_path: str,
    forward_shape: tuple[int, int],
) -> None:
    save_mat(
        path,
        {
            "total_samples": np.array([[n_extracted]], np.int64),
            "failed_samples": np.array([[n_failed]], np.int64),
            "start_idx": np.array([[start_index]], np.int64),
            "dataset_path": dataset_path,
            "forward_model_path": forward_model_path,
            "forward_shape": np.array([forward_shape], np.int64),
        },
    )


def write_deepsif_metadata(plan: Plan, path: str | Path) -> None:
    """DeepSIF's `{split}_sample_source1.mat`, read unchanged by its SpikeEEGBuild loader.

    scale_ratio holds the one ratio this plan chose, so DeepSIF's random pick is deterministic.
    """
    n, s = plan.centre.shape
    selected = np.full((n, s, PATCH_WIDTH), DEEPSIF_PAD, np.float64)
    mag = np.full((n, s, PATCH_WIDTH), DEEPSIF_PAD, np.float64)
    for i in range(n):
        for k in range(s):
            size = plan.patch_size[i, k]
            selected[i, k, :size] = plan.patch[i, k, :size]
            mag[i, k, :size] = plan.mag_change[i, k, :size]
    save_mat(
        path,
        {
            "selected_region": selected,
            "nmm_idx": plan.clip.astype(np.int64),
            "scale_ratio": plan.scale[:, :, None].astype(np.float64),
            "mag_change": mag,
            "sensor_snr": plan.sensor_snr[:, None].astype(np.float64),
        },
    )


def write_deepsif_clips(library_path: str | Path, path: str | Path) -> None:
    """DeepSIF's `{split}_sample_nmm.h5`: dataset `data` [clips, 500, R], rows = library rows."""
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(library_path, "r") as src, h5py.File(tmp, "w") as out:
            clips = src["clips"]
            n, n_regions, n_time = clips.shape
            data = out.create_dataset(
                "data", (n, n_time, n_regions), np.float32, chunks=(1, n_time, n_regions)
            )
            for row in range(n):
                data[row] = clips[row].T

"""The per-sample MAT layout of DeepSIF's extraction script (docs/eeg-chain.md §7): one
`sample_{index:05d}.mat` per sample (eeg_data, source_data, labels, snr, index), one folder
per shard, and `extraction_metadata.mat` per split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spikeforge.core.files import atomic_directory
from spikeforge.eeg.export.hdf5 import EEGShard
from spikeforge.io.hdf5 import open_hdf5
from spikeforge.io.mat import save_mat


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


def export_mat_shard(shard_path: str | Path, folder: str | Path) -> None:
    """The export_mat_shard job: one shard's samples as MAT files in a folder that appears
    only when complete."""
    with atomic_directory(folder) as staging:
        write_mat_samples(shard_path, staging)


def export_mat_metadata(
    path: str | Path,
    shard_folders: Sequence[str | Path],
    anatomy_path: str | Path,
    plan_path: str | Path,
    start_index: int,
    leadfield_path: str | Path,
) -> None:
    """The export_mat_metadata job: the split's extraction_metadata.mat, counting the samples
    of its (named) shard folders."""
    n_extracted = sum(len(list(Path(f).glob("sample_*.mat"))) for f in shard_folders)
    with open_hdf5(anatomy_path, "head model (anatomy.h5)") as anatomy:
        shape = anatomy["leadfield"].shape
    write_extraction_metadata(
        path,
        n_extracted=n_extracted,
        n_failed=0,
        start_index=start_index,
        dataset_path=str(plan_path),
        forward_model_path=str(leadfield_path),
        forward_shape=shape,
    )

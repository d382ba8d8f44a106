"""The on-disk layout of HuggingFace `datasets` (what `save_to_disk` writes and `load_from_disk`
reads), written directly so that workers can write their own Arrow files in parallel and no
HF cache is used:

  <dataset>/dataset_dict.json                 {"splits": {...}}
  <dataset>/<split>/data-XXXXX-of-YYYYY.arrow one Arrow IPC stream file per shard
  <dataset>/<split>/dataset_info.json         the features
  <dataset>/<split>/state.json                the data files and a fingerprint
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any


def dataset_dict_json(splits: Sequence[str]) -> dict[str, Any]:
    return {"splits": {split: {"name": split} for split in splits}}


def segment_file_name(split_dir: str, index: int, count: int) -> str:
    """Shard `index` of `count` in a split folder, named as save_to_disk names its shards."""
    return os.path.join(split_dir, f"data-{index:05d}-of-{count:05d}.arrow")


def split_state(split: str, files: list[str], fingerprint_parts: Sequence[Any]) -> dict[str, Any]:
    """state.json of a split; the fingerprint comes from what the split holds, so rebuilding
    it gives the same file."""
    digest = hashlib.sha256(json.dumps([split, *fingerprint_parts]).encode())
    return {
        "_data_files": [{"filename": name} for name in files],
        "_fingerprint": digest.hexdigest()[:16],
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": None,
    }


def write_split_metadata(
    folder: str | Path, split: str, features: Any, n_files: int, fingerprint_parts: Sequence[Any]
) -> None:
    """state.json and dataset_info.json of a split folder whose n_files Arrow files exist."""
    from datasets import DatasetInfo

    folder = Path(folder)
    names = [os.path.basename(segment_file_name("", i, n_files)) for i in range(n_files)]
    state = split_state(split, names, fingerprint_parts)
    (folder / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
    info = asdict(DatasetInfo(features=features))
    (folder / "dataset_info.json").write_text(
        json.dumps({k: info[k] for k in sorted(info)}, indent=2)
    )

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


def check_split_folder(folder: str | Path) -> list[Path]:
    """The Arrow files a split folder's state.json lists, each checked: present, no Arrow file
    it does not list, and readable to its end (a truncated stream is named; `datasets` would
    only say how many bytes it missed). Raises InputError naming the file."""
    import pyarrow as pa

    from spikeforge.core.errors import InputError
    from spikeforge.core.manifest import manifest_path, mismatch, read_manifest

    folder = Path(folder)
    if manifest_path(folder).exists():
        problem = mismatch(folder, read_manifest(manifest_path(folder)))
        if problem:
            raise InputError(folder, f"{problem} (damaged since it was made)")
    try:
        state = json.loads((folder / "state.json").read_text())
        listed = [entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(folder / "state.json", f"not a dataset split's state ({error})") from None
    for extra in sorted({p.name for p in folder.glob("*.arrow")} - set(listed)):
        raise InputError(folder / extra, "an Arrow file that state.json does not list")
    files = [folder / name for name in listed]
    for path in files:
        if not path.is_file():
            raise InputError(path, "listed in state.json, not on disk")
        try:
            with pa.memory_map(str(path)) as source:
                reader = pa.ipc.open_stream(source)
                while True:
                    try:
                        reader.read_next_batch()
                    except StopIteration:
                        break
        except (pa.ArrowInvalid, OSError) as error:
            raise InputError(path, f"not a complete Arrow stream ({error})") from None
    return files


def load_dataset_dict(folder: str | Path) -> Any:
    """`datasets.load_from_disk` of a dataset folder (dataset_dict.json and split folders)
    after checking every split's files (check_split_folder); errors name the file."""
    import datasets

    from spikeforge.core.errors import InputError

    folder = Path(folder)
    try:
        splits = json.loads((folder / "dataset_dict.json").read_text())["splits"]
    except (OSError, ValueError, KeyError) as error:
        raise InputError(folder / "dataset_dict.json", f"not a dataset folder ({error})") from None
    for split in splits:
        check_split_folder(folder / split)
    return datasets.load_from_disk(str(folder))

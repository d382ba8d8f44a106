"""What a run records about itself: JSON that any tool reads (numpy values converted), written
atomically and without timestamps, so a rebuilt output is byte-identical."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.files import atomic_path


def jsonable(value: Any) -> Any:
    """`value` with numpy scalars and arrays, tuples, sets and paths as plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> None:
    """Write JSON atomically (numpy scalars and arrays converted)."""
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(jsonable(value), indent=indent, ensure_ascii=False))

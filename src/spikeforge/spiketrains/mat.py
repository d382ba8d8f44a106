"""Spike trains as a MATLAB v5 file that MATLAB, Octave and scipy open.

Variables: `units`, a 1 x n struct array with fields `id`, `spike_times` (column, seconds on the
`start_time` axis) and one field per unit property; `sampling_frequency` (NaN when unknown),
`start_time` and `duration` (s, NaN when unknown), `channel_positions` and `channel_ids` when
known. Text unit ids are char arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from spikeforge.core.errors import InputError
from spikeforge.io.mat import save_mat
from spikeforge.spiketrains.model import SpikeTrainError, SpikeTrains, samples_from_seconds

_FIELDS = ("id", "spike_times")


def can_read(path: str | Path) -> bool:
    try:
        return "units" in {name for name, _, _ in scipy.io.whosmat(str(path))}
    except (ValueError, OSError, TypeError, NotImplementedError):
        return False


def write_mat(trains: SpikeTrains, path: str | Path) -> None:
    properties = {k: v for k, v in trains.unit_properties.items() if k not in _FIELDS}
    names = list(_FIELDS) + list(properties)
    units = np.empty((1, trains.n_units), dtype=[(n, object) for n in names])
    seconds = trains.times_in("s")
    starts = trains.starts()
    for position, unit_id in enumerate(trains.unit_ids.tolist()):
        units[0, position]["id"] = unit_id
        stop = int(trains.index[position])
        units[0, position]["spike_times"] = seconds[int(starts[position]) : stop].reshape(-1, 1)
        for name, values in properties.items():
            units[0, position][name] = values[position]
    variables: dict[str, Any] = {
        "units": units,
        "sampling_frequency": float(trains.sampling_frequency or np.nan),
        "start_time": trains.start_time,
        "duration": np.nan if trains.duration is None else trains.duration,
    }
    for name in ("channel_positions", "channel_ids"):
        if name in trains.recording_properties:
            variables[name] = np.asarray(trains.recording_properties[name])
    save_mat(path, variables)


def read_mat(path: str | Path) -> SpikeTrains:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        data = scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=True)
    except (ValueError, OSError, TypeError, NotImplementedError) as error:
        raise InputError(path, f"not a readable MATLAB v5 file: {error}") from None
    if "units" not in data:
        raise InputError(path, "has no 'units' struct array")
    try:
        return _from_variables(data)
    except (SpikeTrainError, ValueError, IndexError, KeyError) as error:
        raise InputError(path, str(error)) from None


def _scalar(value: np.ndarray) -> float | None:
    value = float(np.asarray(value).ravel()[0])
    return None if np.isnan(value) else value


def _from_variables(data: dict[str, Any]) -> SpikeTrains:
    units = np.asarray(data.pop("units")).ravel()
    names = units.dtype.names or ()
    if not all(n in names for n in _FIELDS):
        raise SpikeTrainError("the units struct needs fields 'id' and 'spike_times'")
    ids = []
    for entry in units["id"]:
        value = np.asarray(entry).ravel()
        ids.append(str(value[0]) if value.dtype.kind == "U" else int(value[0]))
    column = units["spike_times"]
    counts = np.array([np.size(t) for t in column], dtype=np.int64)
    seconds = np.empty(int(counts.sum()), np.float64)
    filled = 0
    for position, count in enumerate(counts.tolist()):
        seconds[filled : filled + count] = np.ravel(column[position])
        column[position] = None  # each unit's copy is freed as soon as it is moved
        filled += count
    rate = _scalar(data["sampling_frequency"]) if "sampling_frequency" in data else None
    start = _scalar(data["start_time"]) if "start_time" in data else 0.0
    duration = _scalar(data["duration"]) if "duration" in data else None
    properties = {}
    for name in names:
        if name in _FIELDS:
            continue
        values = [np.asarray(v) for v in units[name]]
        squeezed = [v.squeeze() if v.size == 1 else v for v in values]
        properties[name] = np.stack(squeezed) if squeezed else np.empty(0)
        if properties[name].dtype.kind == "U":
            properties[name] = np.array([str(v) for v in squeezed])
    recording = {
        name: np.asarray(data[name]).squeeze() if name == "channel_ids" else np.asarray(data[name])
        for name in ("channel_positions", "channel_ids")
        if name in data
    }
    times = (
        samples_from_seconds(seconds, start or 0.0, rate, in_place=True)
        if rate is not None
        else None
    )
    if times is None:
        times = seconds
    return SpikeTrains(
        np.array(ids),
        times,
        np.cumsum(counts),
        sampling_frequency=rate,
        start_time=start or 0.0,
        duration=duration,
        unit_properties=properties,
        recording_properties=recording,
    )

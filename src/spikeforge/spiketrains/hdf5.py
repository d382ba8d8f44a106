"""Spike trains in generic HDF5, four styles (the layouts spikelab's exporters write):

- `raster`: `raster` [units, bins] of spike counts; attributes `bin_size` (in `time_unit`),
  `bin_size_ms`, `time_origin` and `bin_edges` ("left-closed": bin k holds
  time_origin + k*bin_size <= t < time_origin + (k+1)*bin_size);
- `ragged`: `spike_times` (flat, unit after unit) + `spike_times_index` (cumulative end of each
  unit's spikes, one entry per unit);
- `group`: one dataset per unit under `units/<unit id>`;
- `paired`: `idces` (the unit's position) + `times`, each spike once.

Every file also holds `unit_ids` and, as file attributes, `n_units`, `time_unit` ("s", "ms" or
"samples"), `sampling_frequency`, `start_time` and `length_ms` (milliseconds, as spikelab reads
them), `start_time_s`, `duration_s`, so no layout is ambiguous: a leading or trailing unit
without spikes survives. Unit properties go under `unit_properties/`, recording properties
under `recording_properties/`.

Files spikelab wrote with its defaults load too: the style follows from the dataset names,
times are seconds except the paired style's milliseconds (its exporter's defaults),
`spike_times_index` is cumulative-end, and a raster's bins are spikelab's right-closed ones,
read from its `bin_size_ms` attribute. Samples need `sampling_frequency=`; a paired file's
trailing units without spikes cannot be known without `n_units=`.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_path
from spikeforge.spiketrains.model import TIME_UNITS, SpikeTrainError, SpikeTrains

FORMAT_TAG = "spikeforge.spiketrains"
STYLES = ("raster", "ragged", "group", "paired")
# Datasets that name a style in files without our attributes (spikelab's default names).
_STYLE_SIGNATURES = {
    "raster": ("raster",),
    "ragged": ("spike_times", "spike_times_index"),
    "group": ("units",),
    "paired": ("idces", "times"),
}
_FOREIGN_UNITS = {"raster": "ms", "ragged": "s", "group": "s", "paired": "ms"}
_RASTER_BLOCK_BYTES = 32 << 20


@contextlib.contextmanager
def open_hdf5(path: str | Path) -> Iterator[h5py.File]:
    """Open for reading; a missing, truncated or non-HDF5 file is an InputError naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise InputError(
            path, f"not a readable HDF5 file (truncated or another format): {error}"
        ) from None
    with handle:
        yield handle


def is_hdf5(path: str | Path) -> bool:
    try:
        return Path(path).is_file() and h5py.is_hdf5(path)
    except OSError:
        return False


def detect_style(handle: h5py.File) -> str | None:
    """The style a file was written in: our attribute, else the datasets present."""
    style = handle.attrs.get("style")
    if handle.attrs.get("format") == FORMAT_TAG and style in STYLES:
        return str(style)
    if "nwb_version" in handle.attrs or "general" in handle:
        return None  # an NWB file's units/ group is not the group style
    for name, datasets in _STYLE_SIGNATURES.items():
        if all(d in handle for d in datasets):
            return name
    return None


def can_read(path: str | Path, style: str) -> bool:
    if not is_hdf5(path):
        return False
    try:
        with h5py.File(path, "r") as handle:
            return detect_style(handle) == style
    except OSError:
        return False


# --- writing --------------------------------------------------------------------------


def _string_or_number(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "U":
        return values.astype(object)
    return values


def _write_properties(group: h5py.Group, properties: Mapping[str, Any]) -> None:
    for name, value in properties.items():
        value = np.asarray(value)
        if value.dtype.kind == "U":
            group.create_dataset(name, data=value.astype(object), dtype=h5py.string_dtype())
        else:
            group.create_dataset(name, data=value)


def _write_header(handle: h5py.File, trains: SpikeTrains, style: str, time_unit: str) -> None:
    attrs = handle.attrs
    attrs["format"] = FORMAT_TAG
    attrs["format_version"] = 1
    attrs["style"] = style
    attrs["n_units"] = trains.n_units
    attrs["time_unit"] = time_unit
    attrs["time_base"] = "samples" if trains.in_samples else "s"
    attrs["sampling_frequency"] = trains.sampling_frequency or math.nan
    attrs["start_time_s"] = trains.start_time
    attrs["start_time"] = trains.start_time * 1e3
    if trains.duration is not None:
        attrs["duration_s"] = trains.duration
        attrs["length_ms"] = trains.duration * 1e3
    ids = trains.unit_ids
    if ids.dtype.kind == "U":
        handle.create_dataset("unit_ids", data=ids.astype(object), dtype=h5py.string_dtype())
    else:
        handle.create_dataset("unit_ids", data=ids.astype(np.int64))
    if trains.unit_properties:
        _write_properties(handle.create_group("unit_properties"), trains.unit_properties)
    if trains.recording_properties:
        _write_properties(handle.create_group("recording_properties"), trains.recording_properties)


def _file_times(trains: SpikeTrains, time_unit: str) -> np.ndarray:
    if time_unit == "samples" and trains.sampling_frequency is None:
        raise SpikeTrainError("time unit 'samples' needs a sampling rate")
    return trains.times_in(time_unit)


def raster_bins(trains: SpikeTrains, bin_size_s: float) -> tuple[np.ndarray, int, int | None]:
    """Bin index of every spike (left-closed bins from start_time), the number of bins, and
    the bin size in samples when it is a whole number of samples (then exact in integers)."""
    if not bin_size_s > 0:
        raise SpikeTrainError(f"raster bin size must be positive, not {bin_size_s:g} s")
    rate = trains.sampling_frequency
    bin_samples = None
    if trains.in_samples and rate is not None:
        candidate = bin_size_s * rate
        if abs(candidate - round(candidate)) < 1e-9 and round(candidate) >= 1:
            bin_samples = int(round(candidate))
    if bin_samples is not None:
        bins = trains.times // bin_samples
        span = (trains.end_time() - trains.start_time) * rate / bin_samples
    else:
        # Rounding to 1e-9 bins first keeps a spike that sits on an edge in the bin it opens.
        relative = (trains.times_in("s") - trains.start_time) / bin_size_s
        bins = np.floor(np.round(relative, 9)).astype(np.int64)
        span = (trains.end_time() - trains.start_time) / bin_size_s
    if bins.size and bins.min() < 0:
        raise SpikeTrainError("spikes before start_time cannot be binned")
    n_bins = max(int(math.ceil(round(span, 9))), int(bins.max()) + 1 if bins.size else 0)
    return bins, n_bins, bin_samples


def _write_raster(
    handle: h5py.File, trains: SpikeTrains, time_unit: str, bin_size_ms: float
) -> None:
    bin_size_s = bin_size_ms / 1e3
    bins, n_bins, bin_samples = raster_bins(trains, bin_size_s)
    # The smallest unsigned type that holds the fullest bin: bins rise within a unit, so the
    # fullest bin is the longest run of equal values.
    fullest = 0
    if bins.size:
        change = np.flatnonzero(np.diff(bins) != 0) + 1
        edges = np.union1d(np.concatenate(([0], change, [bins.size])), trains.index)
        edges = edges[(edges >= 0) & (edges <= bins.size)]
        fullest = int(np.diff(edges).max(initial=0))
    dtype = np.min_scalar_type(max(fullest, 1))
    units = trains.n_units
    dataset = handle.create_dataset(
        "raster",
        shape=(units, n_bins),
        dtype=dtype,
        chunks=(min(units, 64), min(n_bins, 65536)) if units and n_bins else None,
    )
    rows = max(1, _RASTER_BLOCK_BYTES // max(1, n_bins * dtype.itemsize))
    starts = trains.starts()
    for first in range(0, units, rows):
        last = min(units, first + rows)
        lo, hi = int(starts[first]), int(trains.index[last - 1])
        row = np.repeat(np.arange(last - first), trains.counts()[first:last])
        block = np.bincount(row * n_bins + bins[lo:hi], minlength=(last - first) * n_bins)
        dataset[first:last] = block.reshape(last - first, n_bins).astype(dtype)
    if time_unit == "samples":
        bin_size = float(bin_samples) if bin_samples else bin_size_s * trains.sampling_frequency
        origin = 0.0
    else:
        scale = 1e3 if time_unit == "ms" else 1.0
        bin_size, origin = bin_size_s * scale, trains.start_time * scale
    dataset.attrs["bin_size"] = bin_size
    dataset.attrs["bin_size_ms"] = float(bin_size_ms)
    dataset.attrs["time_origin"] = origin
    dataset.attrs["bin_edges"] = "left-closed"


def write_hdf5(
    trains: SpikeTrains,
    path: str | Path,
    style: str = "ragged",
    time_unit: str = "s",
    raster_bin_ms: float | None = None,
) -> None:
    """Write `trains` in one of STYLES; the file appears only when complete."""
    if style not in STYLES:
        raise SpikeTrainError(f"HDF5 style must be one of {', '.join(STYLES)}, not {style!r}")
    if time_unit not in TIME_UNITS:
        raise SpikeTrainError(f"time unit must be one of {', '.join(TIME_UNITS)}")
    if style == "raster" and not (raster_bin_ms and raster_bin_ms > 0):
        raise SpikeTrainError("the raster style needs a positive bin size (ms)")
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as handle:
        _write_header(handle, trains, style, time_unit)
        if style == "raster":
            _write_raster(handle, trains, time_unit, float(raster_bin_ms))
            return
        times = _file_times(trains, time_unit)
        if style == "ragged":
            handle.create_dataset("spike_times", data=times)
            handle.create_dataset("spike_times_index", data=trains.index)
        elif style == "group":
            units = handle.create_group("units")
            for position, unit_id in enumerate(trains.unit_ids.tolist()):
                stop = int(trains.index[position])
                start = stop - int(trains.counts()[position])
                units.create_dataset(str(unit_id), data=times[start:stop])
        else:
            handle.create_dataset("idces", data=trains.unit_indices())
            handle.create_dataset("times", data=times)
        for name in ("spike_times", "times"):
            if name in handle:
                handle[name].attrs["time_unit"] = time_unit


# --- reading --------------------------------------------------------------------------


def _read_properties(group: h5py.Group) -> dict[str, np.ndarray]:
    properties = {}
    for name, dataset in group.items():
        value = dataset[()]
        if dataset.dtype.kind == "O" or h5py.check_string_dtype(dataset.dtype):
            value = dataset.asstr()[()]
            value = np.asarray(value, dtype=str)
        properties[name] = np.asarray(value)
    return properties


def _natural_key(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _times_to_model(
    values: np.ndarray, unit: str, rate: float | None, start: float, time_base: str
) -> np.ndarray:
    """File times in `unit` to the model's base (samples when the source was in samples)."""
    if unit == "samples":
        if rate is None:
            raise SpikeTrainError("times in samples need a sampling rate (sampling_frequency=)")
        if values.dtype.kind == "f" and not np.all(values == np.rint(values)):
            raise SpikeTrainError("times in samples must be whole numbers")
        if time_base == "s":
            return start + values.astype(np.float64) / rate
        return values.astype(np.int64)
    seconds = values.astype(np.float64) / (1e3 if unit == "ms" else 1.0)
    if time_base == "samples" and rate is not None:
        return np.rint((seconds - start) * rate).astype(np.int64)
    return seconds


def _raster_times(
    dataset: h5py.Dataset, *, ours: bool, unit: str, rate: float | None, start: float
) -> tuple[np.ndarray, np.ndarray, str]:
    """Spike times a raster implies: the closed edge of each spike's bin, in file units."""
    if ours:
        bin_size = float(dataset.attrs["bin_size"])
        origin = float(dataset.attrs["time_origin"])
        closed_right = dataset.attrs.get("bin_edges", "left-closed") == "right-closed"
    else:
        if "bin_size_ms" not in dataset.attrs:
            raise SpikeTrainError("the raster has no bin_size_ms attribute")
        unit = "ms"
        bin_size, origin = float(dataset.attrs["bin_size_ms"]), start * 1e3
        closed_right = True  # spikelab's raster bins are left-open, right-closed
    if dataset.ndim != 2:
        raise SpikeTrainError(f"the raster must be 2-D (units, bins), not {dataset.ndim}-D")
    units, n_bins = dataset.shape
    counts = np.zeros(units, np.int64)
    pieces: list[np.ndarray] = []
    rows = max(1, _RASTER_BLOCK_BYTES // max(1, n_bins * dataset.dtype.itemsize))
    for first in range(0, units, rows):
        block = dataset[first : first + rows]
        if block.dtype.kind == "f" and not np.all(block == np.rint(block)):
            raise SpikeTrainError("raster counts must be whole numbers")
        if block.size and block.min() < 0:
            raise SpikeTrainError("raster counts must not be negative")
        block = block.astype(np.int64)
        row, column = np.nonzero(block)
        repeats = block[row, column]
        counts[first : first + block.shape[0]] = block.sum(axis=1)
        pieces.append(np.repeat(column, repeats))
    bins = np.concatenate(pieces) if pieces else np.empty(0, np.int64)
    edge = bins + 1 if closed_right else bins
    if unit == "samples" and float(bin_size).is_integer():
        return edge * int(bin_size) + int(origin), counts, unit
    return origin + edge * bin_size, counts, unit


def read_hdf5(
    path: str | Path,
    style: str | None = None,
    time_unit: str | None = None,
    sampling_frequency: float | None = None,
    n_units: int | None = None,
) -> SpikeTrains:
    """Load an HDF5 file of any style (ours or spikelab's); errors name the file."""
    path = Path(path)
    with open_hdf5(path) as handle:
        found = detect_style(handle)
        if found is None:
            raise InputError(path, "holds no spike trains in a known HDF5 style")
        if style is not None and style != found:
            raise InputError(path, f"is a {found}-style spike-train file, not {style}")
        try:
            return _read(handle, found, time_unit, sampling_frequency, n_units)
        except (SpikeTrainError, KeyError, ValueError) as error:
            raise InputError(path, str(error)) from None


def _read(
    handle: h5py.File,
    style: str,
    time_unit: str | None,
    sampling_frequency: float | None,
    n_units: int | None,
) -> SpikeTrains:
    attrs = handle.attrs
    ours = attrs.get("format") == FORMAT_TAG
    rate = sampling_frequency
    if rate is None and ours and np.isfinite(attrs["sampling_frequency"]):
        rate = float(attrs["sampling_frequency"])
    if ours:
        unit = str(attrs["time_unit"])
        start = float(attrs["start_time_s"])
        duration = float(attrs["duration_s"]) if "duration_s" in attrs else None
        time_base = str(attrs["time_base"])
    else:
        unit = time_unit or _FOREIGN_UNITS[style]
        start = float(attrs.get("start_time", 0.0)) / 1e3
        duration = float(attrs["length_ms"]) / 1e3 if "length_ms" in attrs else None
        time_base = "samples" if unit == "samples" else "s"
    if unit not in TIME_UNITS:
        raise SpikeTrainError(f"time unit {unit!r} is not one of {', '.join(TIME_UNITS)}")
    extra: dict[str, Any] = {
        "sampling_frequency": rate,
        "start_time": start,
        "duration": duration,
    }
    if "unit_properties" in handle:
        extra["unit_properties"] = _read_properties(handle["unit_properties"])
    if "recording_properties" in handle:
        extra["recording_properties"] = _read_properties(handle["recording_properties"])
    unit_ids = None
    if "unit_ids" in handle:
        dataset = handle["unit_ids"]
        unit_ids = (
            np.asarray(dataset.asstr()[()], dtype=str)
            if h5py.check_string_dtype(dataset.dtype)
            else dataset[()].astype(np.int64)
        )
        if ours and unit_ids.size != int(attrs["n_units"]):
            raise SpikeTrainError(
                f"unit_ids has {unit_ids.size} entries but n_units is {int(attrs['n_units'])}"
            )

    def to_model(values: np.ndarray, file_unit: str = unit) -> np.ndarray:
        return _times_to_model(values, file_unit, rate, start, time_base)

    if style == "raster":
        raw, counts, file_unit = _raster_times(
            handle["raster"], ours=ours, unit=unit, rate=rate, start=start
        )
        ids = unit_ids if unit_ids is not None else np.arange(counts.size)
        base = time_base if ours else "s"
        times = _times_to_model(raw, file_unit, rate, start, base)
        return SpikeTrains(ids, times, np.cumsum(counts), **extra)
    if style == "ragged":
        index = handle["spike_times_index"][()]
        if index.dtype.kind not in "iu":
            raise SpikeTrainError(f"spike_times_index must hold integers, not {index.dtype}")
        ids = unit_ids if unit_ids is not None else np.arange(index.size)
        return SpikeTrains(ids, to_model(handle["spike_times"][()]), index, **extra)
    if style == "group":
        group = handle["units"]
        names = (
            [str(u) for u in unit_ids.tolist()]
            if unit_ids is not None
            else sorted(group.keys(), key=_natural_key)
        )
        missing = [n for n in names if n not in group]
        if missing:
            raise SpikeTrainError(f"units/ has no dataset for unit(s) {', '.join(missing[:5])}")
        trains = [group[n][()] for n in names]
        if unit_ids is None:
            unit_ids = np.array(
                [int(n) for n in names] if all(n.isdigit() for n in names) else names
            )
        counts = np.array([t.size for t in trains], dtype=np.int64)
        flat = np.concatenate(trains) if trains else np.empty(0)
        return SpikeTrains(unit_ids, to_model(flat), np.cumsum(counts), **extra)
    idces = handle["idces"][()]
    times = handle["times"][()]
    if idces.dtype.kind not in "iu":
        raise SpikeTrainError(f"idces must hold integers, not {idces.dtype}")
    if unit_ids is None:
        count = n_units if n_units is not None else int(idces.max()) + 1 if idces.size else 0
        unit_ids = np.arange(count)
    return SpikeTrains.from_unit_indices(idces, to_model(times), unit_ids, **extra)

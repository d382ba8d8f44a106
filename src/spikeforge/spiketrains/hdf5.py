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
from spikeforge.spiketrains.model import CHUNK, TIME_UNITS, SpikeTrainError, SpikeTrains

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
_RASTER_BLOCK_BYTES = 8 << 20


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


def _check_samples_unit(trains: SpikeTrains, time_unit: str) -> None:
    if time_unit == "samples" and trains.sampling_frequency is None:
        raise SpikeTrainError("time unit 'samples' needs a sampling rate")


def _write_times(group: h5py.Group, name: str, trains: SpikeTrains, time_unit: str) -> None:
    """All spike times converted to `time_unit`, written piece by piece."""
    _check_samples_unit(trains, time_unit)
    dtype = np.int64 if time_unit == "samples" else np.float64
    dataset = group.create_dataset(name, shape=(trains.n_spikes,), dtype=dtype)
    for first, piece in trains.pieces_in(time_unit):
        dataset[first : first + piece.size] = piece
    dataset.attrs["time_unit"] = time_unit


class RasterBins:
    """Left-closed bins of `bin_size_s` from start_time: bin k holds
    start + k*bin <= t < start + (k+1)*bin. In integers when the bin is a whole number of
    samples (exact), else in seconds, rounded to 1e-9 bins so a spike on an edge opens it."""

    def __init__(self, trains: SpikeTrains, bin_size_s: float) -> None:
        if not bin_size_s > 0:
            raise SpikeTrainError(f"raster bin size must be positive, not {bin_size_s:g} s")
        self.trains = trains
        self.bin_size_s = bin_size_s
        rate = trains.sampling_frequency
        self.bin_samples: int | None = None
        if trains.in_samples and rate is not None:
            candidate = bin_size_s * rate
            if abs(candidate - round(candidate)) < 1e-9 and round(candidate) >= 1:
                self.bin_samples = int(round(candidate))
        # One pass finds the last bin and the fullest one (bins rise within a unit, so the
        # fullest bin is the longest run of one value inside a unit).
        last = self.fullest = 0
        for lo, hi in self.unit_blocks():
            bins = self.of(lo, hi)
            key = bins + trains.unit_positions(lo, hi) * (int(bins.max()) + 1)
            runs = np.diff(np.flatnonzero(np.diff(key, prepend=-1, append=key[-1] + 1)))
            last = max(last, int(bins.max()) + 1)
            self.fullest = max(self.fullest, int(runs.max(initial=0)))
        span = (trains.end_time() - trains.start_time) / bin_size_s
        self.n_bins = max(int(math.ceil(round(span, 9))), last)

    def of(self, lo: int, hi: int) -> np.ndarray:
        """Bin of each spike in [lo, hi)."""
        times = self.trains.times[lo:hi]
        if self.bin_samples is not None:
            bins = times // self.bin_samples
        else:
            relative = (self.trains._convert(times, "s") - self.trains.start_time) / self.bin_size_s
            bins = np.floor(np.round(relative, 9)).astype(np.int64)
        if bins.size and bins.min() < 0:
            raise SpikeTrainError("spikes before start_time cannot be binned")
        return bins

    def unit_blocks(self, spikes: int = 1 << 20) -> list[tuple[int, int]]:
        """[lo, hi) spike ranges of whole units, about `spikes` each."""
        index = self.trains.index
        blocks, lo = [], 0
        while lo < self.trains.n_spikes:
            hi = int(index[min(np.searchsorted(index, lo + spikes, side="left"), index.size - 1)])
            hi = max(hi, int(index[np.searchsorted(index, lo, side="right")]))
            blocks.append((lo, hi))
            lo = hi
        return blocks


def _write_raster(
    handle: h5py.File, trains: SpikeTrains, time_unit: str, bin_size_ms: float
) -> None:
    binning = RasterBins(trains, bin_size_ms / 1e3)
    n_bins, units = binning.n_bins, trains.n_units
    dtype = np.min_scalar_type(max(binning.fullest, 1))  # the smallest that holds every count
    dataset = handle.create_dataset("raster", shape=(units, n_bins), dtype=dtype)
    # Rows are filled a few at a time: a block of int64 counts stays under _RASTER_BLOCK_BYTES.
    rows = max(1, _RASTER_BLOCK_BYTES // max(1, n_bins * 8))
    starts = trains.starts()
    for first in range(0, units, rows):
        last = min(units, first + rows)
        lo, hi = int(starts[first]), int(trains.index[last - 1])
        block = np.zeros((last - first, n_bins), dtype=dtype)
        if hi > lo:
            key = trains.unit_positions(lo, hi) - first
            flat = np.bincount(key * n_bins + binning.of(lo, hi), minlength=block.size)
            block = flat.reshape(block.shape).astype(dtype)
        dataset[first:last] = block
    if time_unit == "samples":
        bin_size = (
            float(binning.bin_samples)
            if binning.bin_samples
            else binning.bin_size_s * trains.sampling_frequency
        )
        origin = 0.0
    else:
        scale = 1e3 if time_unit == "ms" else 1.0
        bin_size, origin = binning.bin_size_s * scale, trains.start_time * scale
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
        if style == "ragged":
            _write_times(handle, "spike_times", trains, time_unit)
            handle.create_dataset("spike_times_index", data=trains.index)
        elif style == "group":
            _check_samples_unit(trains, time_unit)
            units = handle.create_group("units")
            starts = trains.starts().tolist()
            for position, unit_id in enumerate(trains.unit_ids.tolist()):
                stop = int(trains.index[position])
                times = trains._convert(trains.times[starts[position] : stop], time_unit)
                units.create_dataset(str(unit_id), data=times)
        else:
            idces = handle.create_dataset("idces", shape=(trains.n_spikes,), dtype=np.int64)
            for first in range(0, trains.n_spikes, CHUNK):
                stop = min(trains.n_spikes, first + CHUNK)
                idces[first:stop] = trains.unit_positions(first, stop)
            _write_times(handle, "times", trains, time_unit)


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
    values: Any, unit: str, rate: float | None, start: float, time_base: str, reuse: bool = False
) -> np.ndarray:
    """File times in `unit` (an array or a dataset, converted piece by piece) to the model's
    base: samples when the source was in samples, else seconds. `reuse` writes the result
    into an 8-byte array's own memory."""
    n = len(values)
    if unit == "samples" and rate is None:
        raise SpikeTrainError("times in samples need a sampling rate (sampling_frequency=)")
    to_samples = unit == "samples" or (time_base == "samples" and rate is not None)
    dtype = np.int64 if to_samples and time_base == "samples" else np.float64
    if reuse and isinstance(values, np.ndarray) and values.itemsize == 8 and values.ndim == 1:
        out = values.view(dtype)
    else:
        out = np.empty(n, dtype)
    for first in range(0, n, CHUNK):
        piece = np.asarray(values[first : first + CHUNK])
        if unit == "samples":
            if piece.dtype.kind == "f" and not np.all(piece == np.rint(piece)):
                raise SpikeTrainError("times in samples must be whole numbers")
            converted = piece if time_base == "samples" else start + piece / rate
        else:
            seconds = piece.astype(np.float64) / (1e3 if unit == "ms" else 1.0)
            converted = np.rint((seconds - start) * rate) if to_samples else seconds
        out[first : first + piece.size] = converted
    return out


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
    rows = max(1, _RASTER_BLOCK_BYTES // max(1, n_bins * dataset.dtype.itemsize))
    counts = np.zeros(units, np.int64)
    for first in range(0, units, rows):  # first pass: spikes per unit, and checks
        block = dataset[first : first + rows]
        if block.dtype.kind == "f" and not np.all(block == np.rint(block)):
            raise SpikeTrainError("raster counts must be whole numbers")
        if block.size and block.min() < 0:
            raise SpikeTrainError("raster counts must not be negative")
        counts[first : first + block.shape[0]] = block.sum(axis=1, dtype=np.int64)
    # Bins of a whole number of samples give sample numbers directly (exact, in integers).
    if rate is not None and unit != "samples":
        scale = rate / (1e3 if unit == "ms" else 1.0)
        in_samples = (bin_size * scale, (origin - start * (1e3 if unit == "ms" else 1.0)) * scale)
        if all(abs(v - round(v)) < 1e-9 for v in in_samples):
            unit, bin_size, origin = "samples", round(in_samples[0]), round(in_samples[1])
    integer = unit == "samples" and float(bin_size).is_integer() and float(origin).is_integer()
    edges = np.empty(int(counts.sum()), np.int64)
    filled = 0
    for first in range(0, units, rows):  # second pass: each spike's bin, unit after unit
        block = dataset[first : first + rows]
        row, column = np.nonzero(block)
        bins = np.repeat(column, block[row, column].astype(np.int64))
        edges[filled : filled + bins.size] = bins
        filled += bins.size
    if closed_right:
        edges += 1
    if integer:
        edges *= int(bin_size)
        edges += int(origin)
        return edges, counts, unit
    times = edges.view(np.float64)  # converted in the edges' own memory
    for first in range(0, edges.size, CHUNK):
        times[first : first + CHUNK] = origin + edges[first : first + CHUNK] * bin_size
    return times, counts, unit


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

    def to_model(values: Any, reuse: bool = False) -> np.ndarray:
        return _times_to_model(values, unit, rate, start, time_base, reuse=reuse)

    if style == "raster":
        raw, counts, file_unit = _raster_times(
            handle["raster"], ours=ours, unit=unit, rate=rate, start=start
        )
        ids = unit_ids if unit_ids is not None else np.arange(counts.size)
        base = time_base if ours else "s"
        times = _times_to_model(raw, file_unit, rate, start, base, reuse=True)
        return SpikeTrains(ids, times, np.cumsum(counts), **extra)
    if style == "ragged":
        index = handle["spike_times_index"][()]
        if index.dtype.kind not in "iu":
            raise SpikeTrainError(f"spike_times_index must hold integers, not {index.dtype}")
        ids = unit_ids if unit_ids is not None else np.arange(index.size)
        return SpikeTrains(ids, to_model(handle["spike_times"]), index, **extra)
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
        datasets = [group[n] for n in names]
        if unit_ids is None:
            unit_ids = np.array(
                [int(n) for n in names] if all(n.isdigit() for n in names) else names
            )
        counts = np.array([d.shape[0] if d.ndim else 1 for d in datasets], dtype=np.int64)
        floats = any(d.dtype.kind == "f" for d in datasets)
        flat = np.empty(int(counts.sum()), np.float64 if floats else np.int64)
        filled = 0
        for dataset, count in zip(datasets, counts.tolist(), strict=True):
            flat[filled : filled + count] = np.ravel(dataset[()])
            filled += count
        times = to_model(flat, reuse=True)
        return SpikeTrains(unit_ids, times, np.cumsum(counts), **extra)
    idces, times = handle["idces"], handle["times"]
    if idces.dtype.kind not in "iu":
        raise SpikeTrainError(f"idces must hold integers, not {idces.dtype}")
    if idces.shape != times.shape:
        raise SpikeTrainError(
            f"idces ({idces.shape[0]}) and times ({times.shape[0]}) differ in length"
        )
    # Spikes grouped by unit (how we and spikelab write them) are read piece by piece.
    counts = np.zeros(0, np.int64)
    grouped, previous = True, -1
    for first in range(0, idces.shape[0], CHUNK):
        piece = idces[first : first + CHUNK].astype(np.int64)
        if piece.min() < 0:
            raise SpikeTrainError("idces must not be negative")
        grouped = grouped and piece[0] >= previous and bool(np.all(piece[1:] >= piece[:-1]))
        previous = int(piece[-1])
        more = np.bincount(piece)
        counts = np.pad(counts, (0, max(0, more.size - counts.size)))
        counts[: more.size] += more
    if unit_ids is None:
        unit_ids = np.arange(n_units if n_units is not None else counts.size)
    if counts.size > unit_ids.size:
        raise SpikeTrainError(f"idces name unit {counts.size - 1} of {unit_ids.size}")
    counts = np.pad(counts, (0, unit_ids.size - counts.size))
    if grouped:
        return SpikeTrains(unit_ids, to_model(times), np.cumsum(counts), **extra)
    return SpikeTrains.from_unit_indices(idces[()], to_model(times), unit_ids, **extra)

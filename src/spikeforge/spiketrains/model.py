"""Spike trains of one recording: the model every exporter writes and every loader returns.

Times live in one flat array, unit after unit, with the cumulative end of each unit's spikes
(`index`), so a million spikes are two arrays rather than a million Python objects. Integer
times are samples counted from the recording's first sample (SpikeInterface's and Phy's
convention) and need `sampling_frequency`; float times are seconds on the same axis as
`start_time`. In seconds, a sample is at `start_time + sample / sampling_frequency`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TIME_UNITS = ("s", "ms", "samples")


class SpikeTrainError(ValueError):
    """Spike trains that break the model's rules (order, lengths, sampling rate)."""


def _check_rate(sampling_frequency: float | None) -> float | None:
    if sampling_frequency is None:
        return None
    rate = float(sampling_frequency)
    if not np.isfinite(rate) or rate <= 0:
        raise SpikeTrainError(f"sampling rate must be positive and finite, not {rate:g}")
    return rate


# Long arrays are checked and converted this many spikes at a time, so no full-length
# temporary is made (memory stays near the data's own size).
CHUNK = 1 << 20


def _check_order(times: np.ndarray, index: np.ndarray, unit_ids: np.ndarray) -> None:
    """Finite times, non-decreasing within each unit (a fall between units is allowed)."""
    floats = times.dtype.kind == "f"
    for first in range(0, times.size, CHUNK):
        piece = times[first : first + CHUNK + 1]
        if floats and not np.all(np.isfinite(piece)):
            raise SpikeTrainError("spike times must be finite")
        falls = np.flatnonzero(piece[1:] < piece[:-1]) + first + 1  # where a spike is earlier
        if falls.size:
            # positions that start a unit may fall
            starts = np.isin(falls, index[:-1])
            falls = falls[~starts]
        if falls.size:
            where = int(falls[0])
            unit = int(np.searchsorted(index, where, side="right"))
            raise SpikeTrainError(
                f"spike times of unit {unit_ids[unit]} are out of order "
                f"(spike {where - (index[unit - 1] if unit else 0)})"
            )


def samples_from_seconds(
    seconds: Any, start_time: float, rate: float, in_place: bool = False
) -> np.ndarray | None:
    """Sample numbers of times in seconds (an array, or an h5py dataset read piece by piece)
    when every time lies on the sample grid (within 1 ns), else None. `in_place` reuses a
    float64 array's memory for the result (the array is then no longer seconds)."""
    n = len(seconds)

    def grid_of(first: int) -> tuple[np.ndarray, bool]:
        piece = np.asarray(seconds[first : first + CHUNK], dtype=np.float64)
        grid = np.rint((piece - start_time) * rate)
        return grid, bool(np.all(np.abs(start_time + grid / rate - piece) <= 1e-9))

    if in_place and isinstance(seconds, np.ndarray) and seconds.dtype == np.float64:
        if not all(grid_of(first)[1] for first in range(0, n, CHUNK)):
            return None
        samples = seconds.view(np.int64)
        for first in range(0, n, CHUNK):
            samples[first : first + CHUNK] = grid_of(first)[0]
        return samples
    samples = np.empty(n, np.int64)
    for first in range(0, n, CHUNK):
        grid, on_grid = grid_of(first)
        if not on_grid:
            return None
        samples[first : first + grid.size] = grid
    return samples


def scaled(values: Any, factor: float, offset: float = 0.0) -> np.ndarray:
    """float64 `values * factor + offset`, piece by piece (values may be an h5py dataset)."""
    n = len(values)
    out = np.empty(n, np.float64)
    for first in range(0, n, CHUNK):
        piece = np.asarray(values[first : first + CHUNK], dtype=np.float64)
        out[first : first + piece.size] = piece * factor + offset
    return out


@dataclass(frozen=True, eq=False)
class SpikeTrains:
    """Spike trains of `n_units` units; see the module docstring for the time convention.

    unit_properties: arrays whose first axis is the unit (peak_channel, location,
    waveform_mean [units, samples, channels], waveform_sd, quality, ...).
    recording_properties: arrays describing the recording (channel_ids, channel_positions
    [channels, 2 or 3], channel_groups, ...) and scalars such as `waveform_unit`.
    """

    unit_ids: np.ndarray
    times: np.ndarray
    index: np.ndarray
    sampling_frequency: float | None = None
    start_time: float = 0.0
    duration: float | None = None
    unit_properties: Mapping[str, np.ndarray] = field(default_factory=dict)
    recording_properties: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unit_ids = np.asarray(self.unit_ids)
        if unit_ids.dtype.kind not in "iuU":
            unit_ids = unit_ids.astype(str) if unit_ids.dtype.kind in "OS" else unit_ids
        if unit_ids.dtype.kind not in "iuU" or unit_ids.ndim != 1:
            raise SpikeTrainError("unit ids must be a 1-D array of integers or strings")
        if len(np.unique(unit_ids)) != unit_ids.size:
            raise SpikeTrainError("unit ids must be unique")
        times = np.asarray(self.times)
        if times.dtype.kind in "iu":
            times = times.astype(np.int64, copy=False)
        elif times.dtype.kind == "f":
            times = times.astype(np.float64, copy=False)
        else:
            raise SpikeTrainError(f"spike times must be numbers, not {times.dtype}")
        index = np.asarray(self.index, dtype=np.int64)
        rate = _check_rate(self.sampling_frequency)
        if times.ndim != 1 or index.shape != unit_ids.shape:
            raise SpikeTrainError(
                f"{unit_ids.size} unit(s) need {unit_ids.size} cumulative spike counts, "
                f"not {index.shape[0] if index.ndim else 0}"
            )
        if index.size and (index[0] < 0 or np.any(np.diff(index) < 0) or index[-1] != times.size):
            raise SpikeTrainError(
                f"cumulative spike counts must rise from 0 to {times.size} (the number of "
                "spike times)"
            )
        if not index.size and times.size:
            raise SpikeTrainError(f"{times.size} spike time(s) but no units")
        if times.dtype.kind == "i" and rate is None:
            raise SpikeTrainError("spike times in samples need a sampling rate")
        _check_order(times, index, unit_ids)
        units = unit_ids.size
        properties = {}
        for name, values in self.unit_properties.items():
            values = np.asarray(values)
            if values.ndim == 0 or values.shape[0] != units:
                raise SpikeTrainError(f"unit property {name!r} needs one entry per unit ({units})")
            properties[name] = values
        object.__setattr__(self, "unit_ids", unit_ids)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "sampling_frequency", rate)
        object.__setattr__(self, "start_time", float(self.start_time))
        if self.duration is not None:
            object.__setattr__(self, "duration", float(self.duration))
        object.__setattr__(self, "unit_properties", properties)
        object.__setattr__(self, "recording_properties", dict(self.recording_properties))

    # --- construction ------------------------------------------------------------------

    @classmethod
    def from_trains(
        cls,
        trains: Sequence[Sequence[float] | np.ndarray],
        unit_ids: Sequence[Any] | np.ndarray | None = None,
        **kwargs: Any,
    ) -> SpikeTrains:
        """From one array per unit (integer samples or float seconds)."""
        arrays = [np.asarray(t) for t in trains]
        counts = np.array([a.size for a in arrays], dtype=np.int64)
        # Empty lists carry no type: integers anywhere else mean samples.
        typed = [a for a in arrays if a.size]
        if typed and all(a.dtype.kind in "iu" for a in typed):
            times = np.concatenate([a.astype(np.int64) for a in arrays])
        else:
            times = (
                np.concatenate([a.astype(np.float64) for a in arrays])
                if arrays
                else np.empty(0, np.float64)
            )
        ids = np.arange(len(arrays)) if unit_ids is None else np.asarray(unit_ids)
        return cls(ids, times, np.cumsum(counts), **kwargs)

    @classmethod
    def from_unit_indices(
        cls, unit_index: np.ndarray, times: np.ndarray, unit_ids: np.ndarray, **kwargs: Any
    ) -> SpikeTrains:
        """From parallel arrays (the unit's position in `unit_ids`, the time) in any order."""
        unit_index = np.asarray(unit_index)
        times = np.asarray(times)
        if unit_index.shape != times.shape or unit_index.ndim != 1:
            raise SpikeTrainError(
                f"unit indices ({unit_index.size}) and spike times ({times.size}) differ in length"
            )
        n_units = len(unit_ids)
        if unit_index.size and (unit_index.min() < 0 or unit_index.max() >= n_units):
            raise SpikeTrainError(f"unit indices must lie in 0..{n_units - 1}")
        if unit_index.size and np.all(unit_index[1:] >= unit_index[:-1]):
            order = None  # already grouped by unit (the common case): no copy
        else:
            order = np.lexsort((times, unit_index))
        counts = np.bincount(unit_index, minlength=n_units).astype(np.int64)
        return cls(
            unit_ids,
            times if order is None else times[order],
            np.cumsum(counts),
            **kwargs,
        )

    # --- views -------------------------------------------------------------------------

    @property
    def n_units(self) -> int:
        return int(self.unit_ids.size)

    @property
    def n_spikes(self) -> int:
        return int(self.times.size)

    @property
    def in_samples(self) -> bool:
        return self.times.dtype.kind == "i"

    def counts(self) -> np.ndarray:
        return np.diff(self.index, prepend=0)

    def starts(self) -> np.ndarray:
        return self.index - self.counts()

    def unit_positions(self, lo: int, hi: int) -> np.ndarray:
        """The unit position of each spike in [lo, hi) (a fill, not a search per spike)."""
        if hi <= lo:
            return np.empty(0, np.int64)
        index = self.index
        first = int(np.searchsorted(index, lo, side="right"))
        last = int(np.searchsorted(index, hi - 1, side="right")) + 1
        ends = np.minimum(index[first:last], hi)
        begins = np.maximum(self.starts()[first:last], lo)
        return np.repeat(np.arange(first, last, dtype=np.int64), ends - begins)

    def train(self, unit: int, unit_of_time: str = "s") -> np.ndarray:
        """Spike times of the unit at position `unit`."""
        stop = int(self.index[unit])
        start = stop - int(self.counts()[unit])
        return self._convert(self.times[start:stop], unit_of_time)

    def times_in(self, unit_of_time: str) -> np.ndarray:
        """All spike times (unit after unit) in "s", "ms" (on the start_time axis) or "samples"
        (from the recording's first sample)."""
        if unit_of_time == "samples" and self.in_samples:
            return self.times
        first = self._convert(self.times[:1], unit_of_time)
        out = np.empty(self.n_spikes, first.dtype)
        for start, piece in self.pieces_in(unit_of_time):
            out[start : start + piece.size] = piece
        return out

    def pieces_in(self, unit_of_time: str) -> Iterator[tuple[int, np.ndarray]]:
        """(position, times) of consecutive pieces of all spike times, converted."""
        for first in range(0, self.n_spikes, CHUNK):
            yield first, self._convert(self.times[first : first + CHUNK], unit_of_time)

    def _convert(self, times: np.ndarray, unit_of_time: str) -> np.ndarray:
        if unit_of_time not in TIME_UNITS:
            raise SpikeTrainError(f"time unit must be one of {', '.join(TIME_UNITS)}")
        if unit_of_time == "samples":
            if self.in_samples:
                return times
            if self.sampling_frequency is None:
                raise SpikeTrainError("spike times in seconds need a sampling rate for samples")
            return np.rint((times - self.start_time) * self.sampling_frequency).astype(np.int64)
        seconds = self.start_time + times / self.sampling_frequency if self.in_samples else times
        return seconds * 1e3 if unit_of_time == "ms" else seconds

    def end_time(self) -> float:
        """Where the recording ends (s): start + duration, or just past the last spike."""
        if self.duration is not None:
            return self.start_time + self.duration
        if not self.n_spikes:
            return self.start_time
        last = float(self.times_in("s").max())
        period = 1.0 / self.sampling_frequency if self.sampling_frequency else 0.0
        return last + period

    def with_times(self, times: np.ndarray, **changes: Any) -> SpikeTrains:
        """The same units and properties with other times (e.g. converted to samples)."""
        fields = dict(
            unit_ids=self.unit_ids,
            times=times,
            index=self.index,
            sampling_frequency=self.sampling_frequency,
            start_time=self.start_time,
            duration=self.duration,
            unit_properties=self.unit_properties,
            recording_properties=self.recording_properties,
        )
        fields.update(changes)
        return SpikeTrains(**fields)

    def same_trains(self, other: SpikeTrains, tolerance_s: float = 1e-9) -> bool:
        """Same unit ids and spike times: exact in samples, within `tolerance_s` in seconds."""
        if self.unit_ids.tolist() != other.unit_ids.tolist():
            return False
        if not np.array_equal(self.index, other.index):
            return False
        if self.in_samples and other.in_samples:
            return bool(np.array_equal(self.times, other.times))
        return bool(np.all(np.abs(self.times_in("s") - other.times_in("s")) <= tolerance_s))

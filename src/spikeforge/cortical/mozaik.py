"""Mozaik's PickledDataStore, read without Mozaik or its simulator, and written by a seeded mock.

On disk a datastore is a folder holding
- `datastore.recordings.pickle`: a neo Block whose segments are Mozaik's wrappers
  (`mozaik.storage.neo_neurotools_wrapper.PickledDataStoreNeoWrapper`, a neo Segment
  subclass without data) carrying `identifier` ('Segment<N>'), `null` (True for the blank
  before a stimulus), `rec_datetime` and the annotations `sheet_name` and `stimulus` (the
  stimulus' parameters as a dict literal: name, trial, duration, image_path, ...);
- `Segment<N>.pickle`: the neo Segment of each wrapper, whose spike trains (ms, starting at 0)
  carry `source_id`, `source_index` and `source_population`.

Datastores are pickles, and loading a pickle can run code: read only datastores from a source
you trust. `read_datastore` and `load_trains` use an unpickler that maps Mozaik's wrapper
classes to stand-ins and refuses every class outside neo.core, quantities, numpy, datetime and
plain builtins. By default it also rebuilds neo's spike trains and quantities as light
stand-ins (the times array, the unit, the annotations): twenty times faster than building
neo objects, which matters at 37,500 spike trains a segment. `real_neo=True` builds real neo
objects instead (the tests compare the two).
"""

from __future__ import annotations

import ast
import copyreg
import datetime as dt
import functools
import gc
import io
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.files import pristine_pickle

RECORDINGS = "datastore.recordings.pickle"
WRAPPER_MODULE = "mozaik.storage.neo_neurotools_wrapper"
WRAPPER_CLASSES = ("PickledDataStoreNeoWrapper", "MozaikSegment")
TIME_SCALE_MS = {"millisecond": 1.0, "ms": 1.0, "second": 1000.0, "s": 1000.0, "microsecond": 1e-3}


# ------------------------------------------------------------------------------ stand-ins
class StandIn:
    """Any object the stand-in unpickler rebuilds: its state lands in __dict__."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            self._args = args
        self.__dict__.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict | None):
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self._state = state


class WrapperStandIn(StandIn):
    """Mozaik's PickledDataStoreNeoWrapper / MozaikSegment."""


class Unit(StandIn):
    """A quantities unit (UnitTime('millisecond', ...)): its name is what matters."""

    def __init__(self, name: str = "", *args: Any, **kwargs: Any) -> None:
        self.name = str(name)


class DictStandIn(dict):
    """neo's ArrayDict (a dict with a length and a check function)."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)


class Dimensionality(dict):
    """quantities' Dimensionality: {unit: power}."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


class Quantity:
    """A quantities array: the numbers and their dimensionality."""

    def __setstate__(self, state: tuple) -> None:
        _, shape, dtype, fortran, raw, units = state[:6]
        values = np.frombuffer(raw, dtype=dtype)
        self.value = values.reshape(shape, order="F" if fortran else "C")
        self.units = units

    def scale_to_ms(self) -> float:
        return _unit_scale(self.units)

    def ms(self) -> np.ndarray:
        return self.value * self.scale_to_ms()


def _reconstruct_quantity(subtype: Any, baseclass: Any, baseshape: Any, basetype: Any) -> Quantity:
    return Quantity()


@dataclass
class SpikeTrainStandIn:
    times: np.ndarray
    t_stop: Any
    units: Any
    t_start: Any
    annotations: dict


def _new_spiketrain(cls: Any, signal: Any, t_stop: Any, units: Any = None, dtype: Any = None,
                    copy: Any = None, sampling_rate: Any = None, t_start: Any = None,
                    *rest: Any) -> SpikeTrainStandIn:  # fmt: skip
    annotations = rest[6] if len(rest) > 6 and isinstance(rest[6], dict) else {}
    return SpikeTrainStandIn(np.asarray(signal), t_stop, units, t_start, annotations)


def _normalize_array_annotations(value: Any, length: Any = None) -> Any:
    return value


# What the stand-in unpickler builds, by (module, name); modules of neo.core map every other
# name to StandIn.
_STAND_INS: dict[tuple[str, str], Any] = {
    ("neo.core.spiketrain", "_new_spiketrain"): _new_spiketrain,
    ("neo.core.spiketrain", "SpikeTrain"): StandIn,
    ("neo.core.dataobject", "_normalize_array_annotations"): _normalize_array_annotations,
    ("neo.core.dataobject", "ArrayDict"): DictStandIn,
    ("quantities.quantity", "_reconstruct_quantity"): _reconstruct_quantity,
    ("quantities.quantity", "Quantity"): Quantity,
    ("quantities.dimensionality", "Dimensionality"): Dimensionality,
}
_NUMPY = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}  # fmt: skip
_PLAIN = {
    ("builtins", name)
    for name in ("dict", "list", "set", "frozenset", "tuple", "bytearray", "complex", "object")
} | {
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "timedelta"),
    ("datetime", "timezone"), ("collections", "OrderedDict"), ("copyreg", "_reconstructor"),
    ("_codecs", "encode"), ("codecs", "encode"),
}  # fmt: skip


@functools.lru_cache(maxsize=1)
def neo_wrapper_class() -> type:
    """A neo Segment subclass standing for Mozaik's PickledDataStoreNeoWrapper (real_neo)."""
    from neo.core.segment import Segment

    return type("PickledDataStoreNeoWrapper", (Segment,), {"__module__": __name__})


class _DatastoreUnpickler(pickle.Unpickler):
    def __init__(self, handle: Any, real_neo: bool) -> None:
        super().__init__(handle, encoding="latin1")
        self.real_neo = real_neo

    def find_class(self, module: str, name: str) -> Any:
        if module == WRAPPER_MODULE and name in WRAPPER_CLASSES:
            return neo_wrapper_class() if self.real_neo else WrapperStandIn
        if (module, name) in _NUMPY:
            if module.startswith("numpy.core."):  # numpy 1's path, under numpy 2's name
                module = "numpy._core." + module[len("numpy.core.") :]
            return super().find_class(module, name)
        if (module, name) in _PLAIN:
            return {
                ("copyreg", "_reconstructor"): copyreg._reconstructor,
                ("collections", "OrderedDict"): OrderedDict,
            }.get((module, name)) or super().find_class(module, name)
        neo_or_quantities = module.startswith("neo.core") or module.startswith("quantities.")
        if neo_or_quantities and not name.startswith("__"):
            if self.real_neo:
                return super().find_class(module, name)
            if (module, name) in _STAND_INS:
                return _STAND_INS[(module, name)]
            if module.startswith("quantities.unitquantity"):
                return Unit
            if module.startswith("neo.core"):
                return StandIn
        raise pickle.UnpicklingError(
            f"refused to load {module}.{name}: a datastore may hold only neo, quantities, "
            "numpy and builtin objects (and Mozaik's segment wrappers)"
        )


def load_pickle(path: Path, real_neo: bool = False) -> Any:
    """A datastore pickle through the restricted unpickler; InputError names the file."""
    # The collector would walk every object built so far, again and again, while tens of
    # thousands of spike trains are built: off while loading (3x faster), on again after.
    enabled = gc.isenabled()
    gc.disable()
    try:
        with open(path, "rb") as handle:
            return _DatastoreUnpickler(handle, real_neo).load()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        problem = "truncated" if isinstance(error, EOFError) else str(error)
        raise InputError(path, f"cannot be read as a Mozaik datastore pickle: {problem}") from None
    finally:
        if enabled:
            gc.enable()


# ------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class SegmentRecord:
    """One recorded segment as the datastore's Block lists it."""

    position: int  # in the Block
    identifier: str
    null: bool
    sheet: str
    stimulus: dict[str, Any]
    rec_datetime: dt.datetime | None

    @property
    def image_id(self) -> str:
        """The stimulus file name's part before '_' (the modelling group's image id)."""
        return str(self.stimulus.get("image_path", "")).split("/")[-1].split("_")[0]


def parse_stimulus(text: str) -> dict[str, Any]:
    """A stimulus annotation (a dict literal, as Mozaik's str(stimulus) writes it)."""
    value = ast.literal_eval(text)
    if not isinstance(value, dict):
        raise ValueError("not a dict")
    return value


def read_datastore(folder: str | Path) -> list[SegmentRecord]:
    """The segments of the datastore in `folder` (its recordings pickle only)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "no such datastore folder")
    path = folder / RECORDINGS
    if not path.is_file():
        raise InputError(folder, f"not a Mozaik datastore (no {RECORDINGS})")
    block = load_pickle(path)
    segments = _container_items(getattr(block, "__dict__", {}), "segments")
    records = []
    for position, segment in enumerate(segments):
        state = segment.__dict__
        annotations = state.get("annotations") or {}
        text = annotations.get("stimulus")
        try:
            stimulus = parse_stimulus(text) if text is not None else {}
        except (ValueError, SyntaxError):
            raise InputError(
                path, f"segment {position}: stimulus {str(text)[:60]!r}... does not parse"
            ) from None
        records.append(SegmentRecord(
            position=position,
            identifier=str(state.get("identifier", f"Segment{position}")),
            null=bool(state.get("null", False)),
            sheet=str(annotations.get("sheet_name", "")),
            stimulus=stimulus,
            rec_datetime=state.get("rec_datetime"),
        ))  # fmt: skip
    return records


def _container_items(state: dict, name: str) -> list:
    """A neo container's items (an ObjectList or SpikeTrainList stand-in, or a plain list)."""
    value = state.get("_" + name, state.get(name))
    if value is None:
        return []
    if isinstance(value, list):
        return value
    inner = getattr(value, "__dict__", {})
    items = inner.get("_items")
    if items is None:
        raise ValueError(f"{name} are stored in a form this reader does not know")
    return list(items)


@dataclass(frozen=True)
class SegmentTrains:
    """One segment's spike trains: neuron ids and spike times in ms from the segment start."""

    source_ids: np.ndarray
    times_ms: list[np.ndarray]
    duration_ms: float


def load_trains(folder: str | Path, record: SegmentRecord) -> SegmentTrains:
    """The spike trains of one segment (its Segment<N>.pickle). InputError names the file when
    it is missing, unreadable, or a spike train has no source_id."""
    path = Path(folder) / f"{record.identifier}.pickle"
    segment = load_pickle(path)
    try:
        trains = _container_items(segment.__dict__, "spiketrains")
    except ValueError as error:
        raise InputError(path, str(error)) from None
    ids = np.empty(len(trains), np.int64)
    times = []
    duration = 0.0
    # Trains of one segment share their unit and start and stop objects (pickle's memo):
    # each distinct one is converted once.
    converted: dict[tuple[int, int, int], tuple[float, float, float]] = {}
    for k, train in enumerate(trains):
        source = train.annotations.get("source_id")
        if source is None:
            raise InputError(path, f"spike train {k} has no source_id annotation")
        ids[k] = int(source)
        key = (id(train.units), id(train.t_start), id(train.t_stop))
        if key not in converted:
            try:
                converted[key] = _scale_start_stop(train)
            except (ValueError, AttributeError) as error:
                raise InputError(path, f"spike train {k}: {error}") from None
        scale, start, stop = converted[key]
        values = train.times * scale if scale != 1.0 else train.times
        times.append(values - start if start else values)
        duration = stop - start
    _break_cycles(segment)
    return SegmentTrains(ids, times, duration)


def _break_cycles(obj: Any) -> None:
    """Drop a loaded stand-in's back-references (container <-> parent) so that it is freed
    at once rather than by a later garbage collection: memory stays one segment's."""
    state = getattr(obj, "__dict__", None)
    if not isinstance(state, dict):
        return
    for value in list(state.values()):
        inner = getattr(value, "__dict__", None)
        if isinstance(inner, dict) and not isinstance(value, type):
            inner.clear()
    state.clear()


def _scale_start_stop(train: SpikeTrainStandIn) -> tuple[float, float, float]:
    units = train.units
    scale = units.scale_to_ms() if isinstance(units, Quantity) else _unit_scale(units)
    start = float(train.t_start.ms()[()]) if isinstance(train.t_start, Quantity) else 0.0
    return scale, start, float(train.t_stop.ms()[()])


def _unit_scale(units: Any) -> float:
    names = [getattr(unit, "name", "") for unit in (units or {})]
    if len(names) != 1 or names[0] not in TIME_SCALE_MS:
        raise ValueError(f"not a time unit: {names}")
    return TIME_SCALE_MS[names[0]]


def load_trains_with_neo(folder: str | Path, record: SegmentRecord) -> SegmentTrains:
    """The same through real neo objects (slow; the reference the tests compare against)."""
    segment = load_pickle(Path(folder) / f"{record.identifier}.pickle", real_neo=True)
    trains = list(segment.spiketrains)
    return SegmentTrains(
        np.array([int(t.annotations["source_id"]) for t in trains], np.int64),
        [np.asarray((t - t.t_start).rescale("ms").magnitude, np.float64) for t in trains],
        float((trains[0].t_stop - trains[0].t_start).rescale("ms").magnitude) if trains else 0.0,
    )


def part_id(folder: str | Path) -> str:
    """The dataset part of a datastore folder ('...baseline:50000_trial:0' -> '50000')."""
    name = Path(folder).name
    try:
        return name.split(":")[-2].split("_")[0]
    except IndexError:
        raise InputError(folder, "folder name has no 'baseline:<part>_trial:<t>'") from None


def dumps_like_mozaik(obj: Any, wrapper_class: type) -> bytes:
    """Pickle `obj` with `wrapper_class` written under Mozaik's class path (the mock's wrapper
    class is not importable from there)."""
    buffer = io.BytesIO()

    class _Pickler(pristine_pickle()._Pickler):  # type: ignore[misc]
        def save_global(self, value: Any, name: Any = None) -> None:
            if value is wrapper_class:
                self.save(WRAPPER_MODULE)
                self.save(wrapper_class.__name__)
                self.write(pickle.STACK_GLOBAL)
                self.memoize(value)
                return
            super().save_global(value, name)

    _Pickler(buffer, protocol=4).dump(obj)
    return buffer.getvalue()

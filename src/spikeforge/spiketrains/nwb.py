"""Spike trains as an NWB file, written and read with pynwb.

The file holds a Subject, a Device and its ElectrodeGroup, the electrodes table (one row per
recording channel: `rel_x`/`rel_y` are the probe positions, `channel_name` the channel id) and
the Units table: `spike_times` in seconds from the session start, `obs_intervals` the
recording's [start, end], `electrodes` as row indices of the electrodes table (the channels the
waveform covers, else the peak channel), `waveform_mean`/`waveform_sd` with the table's
`waveform_unit` and `waveform_rate`, `resolution` = 1 / sampling rate, and `unit_name` (the
unit id as text). Other unit properties become columns when they have one value per unit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_path
from spikeforge.spiketrains.model import (
    SpikeTrainError,
    SpikeTrains,
    samples_from_seconds,
    scaled,
)

NWB_DEFAULTS: dict[str, Any] = {
    "session_description": "Spike trains exported by spikeforge",
    "session_start_time": "2000-01-01T00:00:00+00:00",
    "subject_id": "unknown",
    "species": "Mus musculus",
    "sex": "U",
    "age": "P90D",
    "device": "probe",
    "device_description": "extracellular probe",
    # Allen CCF's top term: valid for mice, where nwbinspector wants CCF terms; name the area.
    "location": "root",
    "experimenter": None,
    "institution": None,
    "lab": None,
}
# Unit properties the Units table holds in its own columns.
_OWN_COLUMNS = {"waveform_mean", "waveform_sd", "peak_channel"}


def can_read(path: str | Path) -> bool:
    """An HDF5 file with NWB's root attribute."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return "nwb_version" in handle.attrs
    except (OSError, ValueError):
        return False


def session_start(value: Any) -> dt.datetime:
    start = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if start.tzinfo is None:
        raise SpikeTrainError("NWB's session_start_time needs a timezone (e.g. +00:00)")
    return start


def _identifier(trains: SpikeTrains, metadata: Mapping[str, Any]) -> str:
    """A UUID derived from the content, so a rebuilt file has the same identifier."""
    digest = hashlib.sha256()
    digest.update(repr(sorted((k, str(v)) for k, v in metadata.items())).encode())
    digest.update(np.ascontiguousarray(trains.times).tobytes())
    digest.update(np.ascontiguousarray(trains.index).tobytes())
    digest.update(repr(trains.unit_ids.tolist()).encode())
    return str(uuid.UUID(bytes=digest.digest()[:16]))


@contextlib.contextmanager
def _object_ids_from(identifier: str) -> Iterator[None]:
    """hdmf gives every object a random UUID; derive them from the file's identifier instead
    (in creation order), so a rebuilt file is byte-identical and ids stay unique per file."""
    import hdmf.container

    namespace = (
        uuid.UUID(identifier)
        if _is_uuid(identifier)
        else uuid.uuid5(uuid.NAMESPACE_URL, identifier)
    )
    counter = itertools.count()
    original = hdmf.container.uuid4
    hdmf.container.uuid4 = lambda: uuid.uuid5(namespace, str(next(counter)))
    try:
        yield
    finally:
        hdmf.container.uuid4 = original


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def write_nwb(
    trains: SpikeTrains, path: str | Path, metadata: Mapping[str, Any] | None = None
) -> None:
    """Write an NWB file that pynwb reads back and nwbinspector accepts."""
    meta = {**NWB_DEFAULTS, **(metadata or {})}
    identifier = meta.get("identifier") or _identifier(trains, meta)
    with _object_ids_from(identifier):
        _write_nwb(trains, path, meta, identifier)


def _write_nwb(
    trains: SpikeTrains, path: str | Path, meta: dict[str, Any], identifier: str
) -> None:
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject

    start = session_start(meta["session_start_time"])
    optional = {key: meta[key] for key in ("experimenter", "institution", "lab") if meta.get(key)}
    nwbfile = NWBFile(
        session_description=meta["session_description"],
        identifier=identifier,
        session_start_time=start,
        file_create_date=[start],
        **optional,
    )
    nwbfile.subject = Subject(
        subject_id=str(meta["subject_id"]),
        species=meta["species"],
        sex=meta["sex"],
        age=meta["age"],
    )
    recording = trains.recording_properties
    positions = recording.get("channel_positions")
    channel_ids = recording.get("channel_ids")
    n_channels = (
        len(positions)
        if positions is not None
        else len(channel_ids)
        if channel_ids is not None
        else 0
    )
    peak = trains.unit_properties.get("peak_channel")
    if n_channels == 0 and peak is not None and peak.size:
        n_channels = int(peak.max()) + 1
    if n_channels:
        device = nwbfile.create_device(
            name=meta["device"],
            description=meta["device_description"],
        )
        group = nwbfile.create_electrode_group(
            name=meta["device"],
            description=f"the channels of {meta['device']}",
            location=meta["location"],
            device=device,
        )
        nwbfile.add_electrode_column(name="channel_name", description="the channel's id")
        positions = np.zeros((n_channels, 2)) if positions is None else np.asarray(positions)
        names = np.arange(n_channels) if channel_ids is None else np.asarray(channel_ids)
        locations = recording.get("channel_locations")
        for row in range(n_channels):
            nwbfile.add_electrode(
                group=group,
                location=meta["location"] if locations is None else str(locations[row]),
                rel_x=float(positions[row, 0]),
                rel_y=float(positions[row, 1]),
                channel_name=str(names[row]),
            )
    nwbfile.units = _units_table(trains, nwbfile.electrodes if n_channels else None)
    with atomic_path(path, suffix=".nwb") as tmp:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwbfile)


def _units_table(trains: SpikeTrains, electrodes: Any) -> Any:
    """The Units table built column by column from arrays (adding units one by one turns every
    spike time into a Python float: minutes and gigabytes at 10 million spikes)."""
    from hdmf.common import DynamicTableRegion, ElementIdentifiers, VectorData, VectorIndex
    from pynwb.misc import Units

    n = trains.n_units
    properties = trains.unit_properties
    ids = trains.unit_ids if trains.unit_ids.dtype.kind in "iu" else np.arange(n)
    spike_times = VectorData(
        name="spike_times",
        description="the spike times for each unit in seconds",
        data=trains.times_in("s"),
    )
    interval = [trains.start_time, trains.end_time()]
    obs = VectorData(
        name="obs_intervals",
        description="the observation intervals for each unit",
        data=np.tile(np.array([interval], np.float64), (n, 1)),
    )
    columns: list[Any] = [
        spike_times,
        VectorIndex(name="spike_times_index", data=trains.index, target=spike_times),
        obs,
        VectorIndex(name="obs_intervals_index", data=np.arange(1, n + 1), target=obs),
        VectorData(
            name="unit_name",
            description="the unit's id",
            data=[str(u) for u in trains.unit_ids.tolist()],
        ),
    ]
    mean = properties.get("waveform_mean")
    peak = properties.get("peak_channel")
    if electrodes is not None:
        if mean is not None and mean.ndim == 3:
            per_unit = [np.arange(mean.shape[2])] * n  # the channels the waveform covers
        elif peak is not None:
            per_unit = [np.array([int(p)]) for p in peak]
        else:
            per_unit = []
        if per_unit:
            region = DynamicTableRegion(
                name="electrodes",
                description="the electrodes that each spike unit came from",
                data=np.concatenate(per_unit),
                table=electrodes,
            )
            ends = np.cumsum([len(rows) for rows in per_unit])
            columns += [region, VectorIndex(name="electrodes_index", data=ends, target=region)]
        if peak is not None:
            columns.append(
                VectorData(
                    name="peak_electrode",
                    description="row of the electrodes table at the unit's peak",
                    data=peak.astype(np.int64),
                )
            )
    for name in ("waveform_mean", "waveform_sd"):
        if name in properties:
            columns.append(
                VectorData(
                    name=name,
                    description=f"the spike {name.split('_')[1]} waveform of each unit",
                    data=properties[name],
                )
            )
    for name, values in properties.items():
        if name not in _OWN_COLUMNS and values.ndim == 1 and values.dtype.kind in "iufbU":
            data = values.tolist() if values.dtype.kind == "U" else values
            columns.append(VectorData(name=name, description=f"unit property {name}", data=data))
    kwargs: dict[str, Any] = {
        "name": "units",
        "description": "spike trains; spike_times in seconds from the session start",
        "id": ElementIdentifiers(name="id", data=np.asarray(ids, np.int64)),
        "columns": columns,
        "waveform_unit": str(trains.recording_properties.get("waveform_unit", "microvolts")),
    }
    if trains.sampling_frequency:
        kwargs["resolution"] = 1.0 / trains.sampling_frequency
        kwargs["waveform_rate"] = trains.sampling_frequency
    if electrodes is not None:
        kwargs["electrode_table"] = electrodes
    return Units(**kwargs)


def read_nwb(path: str | Path) -> SpikeTrains:
    """Load the Units table (and the electrodes' positions) of an NWB file."""
    from pynwb import NWBHDF5IO

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    if not can_read(path):
        raise InputError(path, "not an NWB file (no nwb_version attribute, or not HDF5)")
    try:
        with NWBHDF5IO(str(path), "r") as io:
            nwbfile = io.read()
            return _from_nwbfile(nwbfile)
    except InputError:
        raise
    except (SpikeTrainError, KeyError, ValueError, OSError) as error:
        raise InputError(path, f"cannot be read as NWB spike trains: {error}") from None


def _from_nwbfile(nwbfile: Any) -> SpikeTrains:
    units = nwbfile.units
    if units is None:
        raise SpikeTrainError("the file has no Units table")
    columns = set(units.colnames)
    ids = np.asarray(units.id[:])
    if "unit_name" in columns:
        names = [str(n) for n in units["unit_name"][:]]
        ids = (
            np.array([int(n) for n in names])
            if all(n.lstrip("-").isdigit() for n in names)
            else np.array(names)
        )
    index = np.asarray(units["spike_times"].data[:], dtype=np.int64) if len(ids) else np.empty(0)
    seconds = units["spike_times"].target.data  # read piece by piece below
    rate = None
    if units.waveform_rate:
        rate = float(units.waveform_rate)
    elif units.resolution and units.resolution > 0:
        rate = float(np.round(1.0 / units.resolution, 6))
    start, duration = 0.0, None
    if "obs_intervals" in columns and len(ids):
        first = np.asarray(units["obs_intervals"][0])
        if first.size >= 2:
            start, duration = float(first[0, 0]), float(first[-1, 1] - first[0, 0])
    properties: dict[str, np.ndarray] = {}
    for name in ("waveform_mean", "waveform_sd"):
        if name in columns:
            properties[name] = np.asarray(units[name].data[:])
    if "peak_electrode" in columns:
        properties["peak_channel"] = np.asarray(units["peak_electrode"].data[:], dtype=np.int64)
    skip = {
        "spike_times", "obs_intervals", "electrodes", "unit_name", "waveform_mean",
        "waveform_sd", "peak_electrode", "electrode_group", "waveforms",
    }  # fmt: skip
    for name in columns - skip:
        values = np.asarray(units[name].data[:])
        if values.ndim == 1 and values.size == len(ids):
            properties[name] = values
    recording: dict[str, Any] = {"waveform_unit": units.waveform_unit}
    electrodes = nwbfile.electrodes
    if electrodes is not None and len(electrodes):
        table = electrodes.colnames
        if "rel_x" in table and "rel_y" in table:
            recording["channel_positions"] = np.column_stack(
                [electrodes["rel_x"].data[:], electrodes["rel_y"].data[:]]
            ).astype(np.float64)
        if "channel_name" in table:
            names = [str(n) for n in electrodes["channel_name"].data[:]]
            recording["channel_ids"] = (
                np.array([int(n) for n in names])
                if all(n.isdigit() for n in names)
                else np.array(names)
            )
        if "location" in table:
            locations = np.array([str(n) for n in electrodes["location"].data[:]])
            if np.unique(locations).size > 1:
                recording["channel_locations"] = locations
    # Times on the sample grid come back as samples (exact); others stay seconds.
    times = samples_from_seconds(seconds, start, rate) if rate is not None else None
    if times is None:
        times = scaled(seconds, 1.0)
    return SpikeTrains(
        ids,
        times,
        index,
        sampling_frequency=rate,
        start_time=start,
        duration=duration,
        unit_properties=properties,
        recording_properties=recording,
    )

"""Read a session folder of the human single-unit layout (patient_data/<p>/session_<n>/), one
spikeforge wrote or one written by epiphyte's own tools, into arrays.

The spike, LFP and session-info files are .npy files holding a dict, that is, pickles: open
only sessions from a source you trust. The reader loads such files only from inside the
folder it is given (a link pointing outside is refused) and rebuilds them with an unpickler
that accepts numpy arrays and plain values and nothing else.

Bad input raises InputError naming the file and the problem (a missing folder or file, a
spike file without `spike_times`, waveforms that are not 64 samples wide, a log line that
does not parse).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.io.pickled_npy import load_dict
from spikeforge.sessions.spec import SPIKE_RATE_HZ, WAVEFORM_SAMPLES
from spikeforge.spiketrains.model import SpikeTrains, samples_from_seconds

SPIKE_FILE = re.compile(r"^CSC(\d+)_(SU|MU)A?(\d+)\.npy$")
LFP_FILE = re.compile(r"^CSC(\d+)_lfp\.npy$")
# Phy's cluster groups for the layout's unit kinds.
QUALITY = {"SU": "good", "MU": "mua"}


@dataclass(frozen=True)
class WatchLog:
    """Frames shown (pts in movie s, computer time in us), pauses [n, 2] (computer time of the
    frame before and after) and skips [n, 3] (time of the frame after, pts from, pts to)."""

    movie: str
    pts: np.ndarray
    cpu_us: np.ndarray
    pauses: np.ndarray
    skips: np.ndarray


@dataclass(frozen=True)
class DAQLog:
    codes: np.ndarray
    index: np.ndarray
    pre_us: np.ndarray
    post_us: np.ndarray


@dataclass
class Session:
    folder: Path
    info: dict[str, Any]
    channel_names: list[str]
    unit_names: list[str]
    unit_channels: np.ndarray  # CSC number (1-based)
    unit_kinds: list[str]
    spike_times_ms: np.ndarray  # every unit's spikes, unit after unit
    spike_index: np.ndarray  # cumulative end of each unit's spikes
    events: np.ndarray | None
    daq: DAQLog | None
    watchlog: WatchLog | None
    lfp_files: dict[int, Path] = field(default_factory=dict)

    # ----------------------------------------------------------------------- units
    def spike_times(self, unit: int) -> np.ndarray:
        first = int(self.spike_index[unit - 1]) if unit else 0
        return self.spike_times_ms[first : int(self.spike_index[unit])]

    def unit_file(self, unit: int) -> Path:
        return self.folder / "spiking_data" / f"{self.unit_names[unit]}.npy"

    def waveforms(self, unit: int) -> np.ndarray | None:
        """The unit's spike waveforms [spikes, 64] in uV (None when the file has none)."""
        content = _spike_content(self.unit_file(unit))
        return content.get("spike_amps")

    @cached_property
    def waveform_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd waveform of every unit [units, 64] (NaN for a unit without)."""
        mean = np.full((len(self.unit_names), WAVEFORM_SAMPLES), np.nan)
        sd = np.full_like(mean, np.nan)
        for unit in range(len(self.unit_names)):
            amps = self.waveforms(unit)
            if amps is not None and len(amps):
                mean[unit] = amps.mean(axis=0, dtype=np.float64)
                sd[unit] = amps.std(axis=0, dtype=np.float64)
        return mean, sd

    # ----------------------------------------------------------------------- time
    @property
    def start_ms(self) -> float:
        """The recording start session_info names (UTC, to the second), in epoch ms."""
        date, time = str(self.info["date"]), str(self.info["time"])
        try:
            moment = dt.datetime.strptime(f"{date} {time}", "%Y-%m-%d %H-%M-%S")
        except ValueError:
            raise InputError(
                self.folder / "session_info.npy", f"date {date!r} / time {time!r} do not parse"
            ) from None
        return moment.replace(tzinfo=dt.UTC).timestamp() * 1000.0

    def cpu_to_recording(self) -> tuple[float, float]:
        """(m, b) with recording ms = m * computer us + b, fitted through the DAQ log's post
        times and the events' stamps (the pings match one to one)."""
        if self.daq is None or self.events is None:
            raise InputError(self.folder, "needs event_file/Events.npy and a daq_files/ log")
        codes = self.events[:, 1]
        if codes.size != self.daq.codes.size or np.any(codes != self.daq.codes):
            raise InputError(
                self.folder / "event_file" / "Events.npy",
                f"its {codes.size} codes do not match the DAQ log's {self.daq.codes.size}",
            )
        m, b = np.polyfit(self.daq.post_us.astype(np.float64), self.events[:, 0], 1)
        return float(m), float(b)

    # ----------------------------------------------------------------------- LFP
    def lfp(self, channel: int) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps in epoch ms, samples in uV) of one LFP channel."""
        path = self.lfp_files.get(channel)
        if path is None:
            raise InputError(self.folder / "lfp_data", f"no LFP file for channel {channel}")
        content = load_dict(_inside(path, self.folder))
        ts = content.get("ts", content.get("timestamps"))
        samples = content.get("samples")
        if ts is None or samples is None:
            raise InputError(path, "needs 'ts' (or 'timestamps') and 'samples'")
        ts, samples = np.asarray(ts), np.asarray(samples)
        if ts.ndim != 1 or ts.shape != samples.shape:
            raise InputError(path, f"ts {ts.shape} and samples {samples.shape} differ")
        return ts, samples

    # ----------------------------------------------------------------------- exports
    def to_spiketrains(self, sampling_frequency: float = SPIKE_RATE_HZ) -> SpikeTrains:
        """Spike trains in seconds from the recording start (session_info), as 32 kHz samples
        when every spike lies on that grid; the mean and sd waveforms, peak channel, region
        and Phy group (SU good, MU mua) of each unit."""
        start = self.start_ms
        seconds = (self.spike_times_ms - start) / 1000.0
        samples = samples_from_seconds(seconds, 0.0, sampling_frequency)
        duration = None
        if self.lfp_files:
            ts, _ = self.lfp(min(self.lfp_files))
            duration = (float(ts[-1]) - start) / 1000.0 + 0.001 if ts.size else None
        mean, sd = self.waveform_stats
        regions = [_region(name) for name in self.channel_names]
        channels = self.unit_channels - 1
        return SpikeTrains(
            unit_ids=np.array(self.unit_names),
            times=samples if samples is not None else seconds,
            index=self.spike_index,
            sampling_frequency=sampling_frequency,
            duration=duration,
            unit_properties={
                "peak_channel": channels.astype(np.int64),
                "quality": np.array([QUALITY[k] for k in self.unit_kinds]),
                "region": np.array([regions[c] for c in channels.tolist()] or [""])[
                    : channels.size
                ],
                "waveform_mean": mean.astype(np.float32),
                "waveform_sd": sd.astype(np.float32),
            },
            recording_properties={
                "channel_ids": np.array(self.channel_names),
                "channel_locations": np.array(regions),
                "waveform_unit": "microvolts",
            },
        )

    def nwb_metadata(self) -> dict[str, Any]:
        """What an NWB file of this session says of itself: a human patient, its start."""
        start = dt.datetime.fromtimestamp(self.start_ms / 1000.0, dt.UTC)
        return {
            "session_description": (
                f"human single-unit session {self.info.get('session_nr')} of patient "
                f"{self.info.get('patient_id')} (microwires, movie watching)"
            ),
            "session_start_time": start.isoformat(),
            "subject_id": str(self.info.get("patient_id")),
            "species": "Homo sapiens",
            "age": "P18Y/",
            "device": "microwires",
            "location": "medial temporal lobe",
        }


def _region(channel_name: str) -> str:
    return channel_name.rstrip("0123456789") or channel_name


def _inside(path: Path, folder: Path) -> Path:
    """`path` when it lies inside `folder` (links resolved), else InputError: pickled files
    are loaded only from the folder the user named."""
    if not path.resolve().is_relative_to(folder.resolve()):
        raise InputError(path, f"lies outside {folder} (a link?): not loaded")
    return path


def _spike_content(path: Path) -> dict[str, Any]:
    content = load_dict(path)
    if "spike_times" not in content:
        raise InputError(path, f"has no 'spike_times' (keys: {', '.join(map(str, content))})")
    times = np.asarray(content["spike_times"])
    if times.ndim != 1 or times.dtype.kind not in "iuf":
        raise InputError(
            path, f"spike_times must be a 1-D array of numbers, not {times.dtype} {times.shape}"
        )
    amps = content.get("spike_amps")
    if amps is not None:
        amps = np.asarray(amps)
        if amps.ndim != 2 or amps.shape[1] != WAVEFORM_SAMPLES:
            raise InputError(
                path, f"spike_amps must be [spikes, {WAVEFORM_SAMPLES}], not {list(amps.shape)}"
            )
        if amps.shape[0] != times.size:
            raise InputError(path, f"{amps.shape[0]} waveforms for {times.size} spike times")
        content["spike_amps"] = amps
    content["spike_times"] = times
    return content


def read_session(folder: str | Path) -> Session:
    """The session in `folder` (patient_data/<p>/session_<n>/): the folder you name is the
    one trusted source of pickled files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "no such session folder")
    info = load_dict(_inside(folder / "session_info.npy", folder))
    for key in ("patient_id", "session_nr", "date", "time"):
        if key not in info:
            raise InputError(folder / "session_info.npy", f"has no '{key}'")
    channel_names = read_channel_names(folder / "ChannelNames.txt")
    names, channels, kinds, times = [], [], [], []
    spike_dir = folder / "spiking_data"
    files = (
        sorted(spike_dir.glob("*.npy"), key=lambda p: unit_order(p.name))
        if spike_dir.is_dir()
        else []
    )
    for path in files:
        match = SPIKE_FILE.match(path.name)
        if not match:
            raise InputError(path, "not a spike file name (CSC<channel>_<SU|MU><k>.npy)")
        channel = int(match.group(1))
        if not 1 <= channel <= len(channel_names):
            raise InputError(
                path,
                f"channel {channel} is not in ChannelNames.txt ({len(channel_names)} channels)",
            )
        spike_times = _spike_content(_inside(path, folder))["spike_times"].astype(np.float64)
        if np.any(np.diff(spike_times) < 0):
            raise InputError(path, "spike_times are not in order")
        names.append(path.stem)
        channels.append(channel)
        kinds.append(match.group(2))
        times.append(spike_times)
    lfp_files = {}
    if (folder / "lfp_data").is_dir():
        for path in sorted((folder / "lfp_data").glob("*.npy")):
            match = LFP_FILE.match(path.name)
            if match:
                lfp_files[int(match.group(1))] = path
    events_path = folder / "event_file" / "Events.npy"
    events = read_events(events_path) if events_path.is_file() else None
    daq_path = _one(folder / "daq_files", "timedDAQ*")
    watchlog_path = _one(folder / "watchlogs", "ffplay*")
    return Session(
        folder=folder,
        info=info,
        channel_names=channel_names,
        unit_names=names,
        unit_channels=np.array(channels, np.int64),
        unit_kinds=kinds,
        spike_times_ms=np.concatenate(times) if times else np.empty(0),
        spike_index=np.cumsum([t.size for t in times], dtype=np.int64),
        events=events,
        daq=read_daq_log(daq_path) if daq_path else None,
        watchlog=read_watchlog(watchlog_path) if watchlog_path else None,
        lfp_files=lfp_files,
    )


def unit_order(name: str) -> tuple[int, str]:
    """epiphyte's order of a session's units (its unit ids count in it): by channel, then by
    the rest of the name as text (MU1 < MUA1 < SU1 < SU10 < SU2)."""
    match = re.match(r"^CSC(\d+)_(.*?)(?:\.npy)?$", name)
    return (int(match.group(1)), match.group(2)) if match else (1 << 30, name)


def _one(folder: Path, pattern: str) -> Path | None:
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if len(found) > 1:
        raise InputError(folder, f"holds {len(found)} files matching {pattern}; expected one")
    return found[0] if found else None


def read_channel_names(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(path, "no such file")
    names = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        name = line.strip()
        if not name.endswith(".ncs"):
            raise InputError(path, f"line {number}: {name!r} is not a <name>.ncs channel")
        names.append(name[: -len(".ncs")])
    return names


def read_events(path: Path) -> np.ndarray:
    try:
        events = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(path, f"cannot be read as an array of events: {error}") from None
    if events.ndim != 2 or events.shape[1] != 2:
        raise InputError(path, f"events must be [n, 2] (timestamp, code), not {list(events.shape)}")
    return events.astype(np.float64)


def _fields(path: Path, number: int, line: str, kinds: Sequence[type]) -> list[Any]:
    parts = line.split()
    try:
        if len(parts) != len(kinds):
            raise ValueError
        return [kind(part) for kind, part in zip(kinds, parts, strict=True)]
    except ValueError:
        raise InputError(path, f"line {number}: {' '.join(parts)!r} does not parse") from None


def read_daq_log(path: Path) -> DAQLog:
    """The DAQ log's rows (three header lines, then code, index, pre, post)."""
    lines = path.read_text().splitlines()
    if len(lines) < 3 or not lines[0].startswith("Initial signature"):
        raise InputError(path, "line 1: not a DAQ log (no 'Initial signature' header)")
    rows = [
        _fields(path, number, line, (int, int, int, int))
        for number, line in enumerate(lines[3:], start=4)
        if line.strip()
    ]
    table = np.array(rows, np.int64).reshape(-1, 4)
    if np.any(table[:, 3] < table[:, 2]):
        raise InputError(path, "a row's post time is before its pre time")
    return DAQLog(codes=table[:, 0], index=table[:, 1], pre_us=table[:, 2], post_us=table[:, 3])


def read_watchlog(path: Path) -> WatchLog:
    """Frames, pauses and skips of a player's watchlog (pts lines; Pausing / Continuing after
    pause between two frames; a pts jump of more than 1 s between two frames is a skip)."""
    lines = path.read_text().splitlines()
    if not lines:
        raise InputError(path, "is empty")
    pts, cpu, pauses = [], [], []
    pending = None
    for number, line in enumerate(lines[1:], start=2):
        stripped = line.strip()
        if not stripped or stripped.startswith("Properly"):
            continue
        if stripped == "Pausing":
            if not cpu:
                raise InputError(path, f"line {number}: a pause before any frame")
            pending = cpu[-1]
            continue
        if stripped.split() == ["Continuing", "after", "pause"]:
            continue
        label, value, word, time = _fields(path, number, line, (str, float, str, int))
        if (label, word) != ("pts", "time"):
            raise InputError(path, f"line {number}: {' '.join(stripped.split())!r} does not parse")
        pts.append(value)
        cpu.append(time)
        if pending is not None:
            pauses.append((pending, time))
            pending = None
    pts_array, cpu_array = np.array(pts, np.float64), np.array(cpu, np.int64)
    jumps = np.flatnonzero(np.abs(np.diff(pts_array)) > 1.0)
    skips = np.column_stack([cpu_array[jumps + 1], pts_array[jumps], pts_array[jumps + 1]])
    return WatchLog(
        movie=lines[0].strip(),
        pts=pts_array,
        cpu_us=cpu_array,
        pauses=np.array(pauses, np.int64).reshape(-1, 2),
        skips=skips.reshape(-1, 3),
    )


def read_labels(folder: str | Path) -> dict[str, np.ndarray]:
    """The movie's annotation files ([values, start_times, stop_times]) by label name
    (`<k>_<label>_<annotator>_<date>_<category>.npy`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "no such annotation folder")
    labels = {}
    for path in sorted(folder.glob("*.npy")):
        parts = path.stem.split("_")
        if len(parts) != 5:
            raise InputError(
                path, "not a label file name (<k>_<label>_<annotator>_<date>_<category>.npy)"
            )
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise InputError(path, f"cannot be read as a label array: {error}") from None
        if array.ndim != 2 or array.shape[0] != 3:
            raise InputError(
                path, f"must be [3, segments] (values, starts, stops), not {list(array.shape)}"
            )
        labels[parts[1]] = array
    return labels

"""Spike trains as a KiloSort/Phy folder, the layout phylib's TemplateModel and SpikeInterface's
`read_phy`/`read_kilosort` open.

- `spike_times.npy` int64 samples from the recording's first sample, non-decreasing over all
  spikes; `spike_templates.npy` and `spike_clusters.npy` (int32) per spike; `amplitudes.npy`
  (float32 scaling of the template, 1 here);
- `templates.npy` [units, samples, channels] float32: the unit's `waveform_mean` when it has
  one, else a placeholder (a negative unit impulse at the peak channel, channel 0 when unknown);
  `similar_templates.npy` their cosine similarity; identity whitening matrices (a single unit
  gets a second, unused all-zero template: phylib misreads an array of one template);
- `channel_map.npy` (one entry per channel), `channel_positions.npy` [channels, 2];
- `cluster_group.tsv` (every unit, those without spikes too: "good", "mua", "noise" from the
  `quality` property, else "unsorted"), `params.py`, whose `dat_path` names the traces when the
  source has them;
- `spikeforge.json`: unit ids, start time and duration, which Phy does not store.

Reading never executes `params.py`: its assignments are parsed as literals.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_directory
from spikeforge.spiketrains.model import CHUNK, SpikeTrainError, SpikeTrains

_REQUIRED = ("params.py", "spike_times.npy")
_GROUPS = ("good", "mua", "noise", "unsorted")
PLACEHOLDER_SAMPLES = 61
_SIMILARITY_BLOCK = 1024


def can_read(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and all((path / name).is_file() for name in _REQUIRED)


def _template_kind(trains: SpikeTrains, n_channels: int) -> str:
    """What templates.npy holds: the units' waveform_mean over all channels, their
    single-channel waveform_mean [units, samples] on the peak channel, or a placeholder."""
    mean = trains.unit_properties.get("waveform_mean")
    peak = trains.unit_properties.get("peak_channel")
    if mean is not None and mean.ndim == 3 and mean.shape[2] == n_channels:
        return "waveform_mean"
    if mean is not None and mean.ndim == 2 and peak is not None and np.isfinite(mean).all():
        return "waveform_mean_on_peak"
    return "placeholder"


def _templates(trains: SpikeTrains, n_channels: int) -> np.ndarray:
    kind = _template_kind(trains, n_channels)
    mean = trains.unit_properties.get("waveform_mean")
    if kind == "waveform_mean":
        return np.ascontiguousarray(mean, dtype=np.float32)
    peak = trains.unit_properties.get("peak_channel")
    channels = np.zeros(trains.n_units, np.int64) if peak is None else peak.astype(np.int64)
    units = np.arange(trains.n_units)
    if kind == "waveform_mean_on_peak":
        templates = np.zeros((trains.n_units, mean.shape[1], n_channels), np.float32)
        templates[units, :, channels] = mean
        return templates
    templates = np.zeros((trains.n_units, PLACEHOLDER_SAMPLES, n_channels), np.float32)
    templates[units, PLACEHOLDER_SAMPLES // 2, channels] = -1.0
    return templates


def _time_major_keys(samples: np.ndarray, trains: SpikeTrains) -> tuple[np.ndarray, int]:
    """sample * n_units + unit for every spike, sorted: decoding gives the spikes in time
    order (ties in unit order) without an index array the size of the data."""
    n_units = max(trains.n_units, 1)
    top = int(samples.max()) if samples.size else 0
    if (top + 1) * n_units >= np.iinfo(np.int64).max:
        raise SpikeTrainError("spike times too large for a Phy folder's int64 sample numbers")
    keys = np.empty(samples.size, np.int64)
    for first, piece in _unit_pieces(trains):
        np.multiply(
            samples[first : first + piece.size], n_units, out=keys[first : first + piece.size]
        )
        keys[first : first + piece.size] += piece
    keys.sort(kind="stable")  # timsort: the keys are one sorted run per unit, merged
    return keys, n_units


def _unit_pieces(trains: SpikeTrains):
    """(position, unit of each spike) over consecutive pieces of the spikes."""
    for first in range(0, trains.n_spikes, CHUNK):
        stop = min(trains.n_spikes, first + CHUNK)
        yield first, trains.unit_positions(first, stop)


def _save_pieces(
    path: Path,
    shape: int | tuple[int, int],
    dtype: Any,
    piece: Callable[[int, int], np.ndarray],
    step: int = CHUNK,
) -> None:
    """A .npy file written piece by piece (rows [a, b) from `piece(a, b)`): no full-length
    array is ever held."""
    shape = (shape,) if isinstance(shape, int) else shape
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {**header, "shape": shape})
        for first in range(0, shape[0], step):
            stop = min(shape[0], first + step)
            handle.write(np.ascontiguousarray(piece(first, stop), dtype=dtype).tobytes())


def _write_similarity(templates: np.ndarray, path: Path) -> None:
    """Cosine similarity of flattened templates, a block of rows at a time."""
    n = templates.shape[0]
    flat = templates.reshape(n, -1)
    norms = np.linalg.norm(flat, axis=1)
    norms[norms == 0] = 1.0

    def rows(first: int, stop: int) -> np.ndarray:
        return (flat[first:stop] @ flat.T) / np.outer(norms[first:stop], norms)

    _save_pieces(path, (n, n), np.float32, rows, _SIMILARITY_BLOCK)


def _cluster_ids(trains: SpikeTrains) -> np.ndarray:
    ids = trains.unit_ids
    if ids.dtype.kind in "iu" and (ids.size == 0 or ids.min() >= 0):
        return ids.astype(np.int64)
    return np.arange(trains.n_units, dtype=np.int64)


def write_phy(
    trains: SpikeTrains,
    folder: str | Path,
    dat_path: str | Path | None = None,
    n_channels_dat: int | None = None,
    dtype: str = "int16",
    hp_filtered: bool = True,
) -> None:
    """Write a Phy folder; it appears only when complete."""
    rate = trains.sampling_frequency
    if rate is None:
        raise SpikeTrainError("a Phy folder needs a sampling rate")
    samples = trains.times_in("samples")
    if samples.size and samples.min() < 0:
        raise SpikeTrainError("Phy cannot hold spikes before the recording's first sample")
    recording = trains.recording_properties
    positions = recording.get("channel_positions")
    if positions is not None:
        positions = np.asarray(positions, dtype=np.float64)[:, :2]
    mean = trains.unit_properties.get("waveform_mean")
    peak = trains.unit_properties.get("peak_channel")
    if positions is not None:
        n_channels = positions.shape[0]
    elif mean is not None and mean.ndim == 3:
        n_channels = mean.shape[2]
    elif recording.get("channel_ids") is not None:
        n_channels = len(recording["channel_ids"])
    else:
        n_channels = int(peak.max()) + 1 if peak is not None and peak.size else 1
    if positions is None:
        positions = np.column_stack([np.zeros(n_channels), 20.0 * np.arange(n_channels)])
    clusters = _cluster_ids(trains).astype(np.int32)
    quality = trains.unit_properties.get("quality")
    # Spikes in time order (ties in unit order), by sorting one int64 key per spike.
    keys, n_units = _time_major_keys(samples, trains)
    with atomic_directory(folder) as staging:
        n = keys.size
        _save_pieces(staging / "spike_times.npy", n, np.int64, lambda a, b: keys[a:b] // n_units)
        _save_pieces(staging / "spike_templates.npy", n, np.int32, lambda a, b: keys[a:b] % n_units)
        _save_pieces(
            staging / "spike_clusters.npy", n, np.int32, lambda a, b: clusters[keys[a:b] % n_units]
        )
        _save_pieces(
            staging / "amplitudes.npy", n, np.float32, lambda a, b: np.ones(b - a, np.float32)
        )
        templates = _templates(trains, n_channels)
        if templates.shape[0] == 1:
            # phylib squeezes a one-template array into the wrong shape: give a single unit a
            # second, all-zero template that no spike uses.
            templates = np.concatenate([templates, np.zeros_like(templates)])
        np.save(staging / "templates.npy", templates)
        _write_similarity(templates, staging / "similar_templates.npy")
        np.save(staging / "whitening_mat.npy", np.eye(n_channels, dtype=np.float32))
        np.save(staging / "whitening_mat_inv.npy", np.eye(n_channels, dtype=np.float32))
        np.save(staging / "channel_map.npy", np.arange(n_channels, dtype=np.int32))
        np.save(staging / "channel_positions.npy", positions)
        groups = [
            str(q) if str(q) in _GROUPS else "unsorted"
            for q in (quality if quality is not None else ["unsorted"] * trains.n_units)
        ]
        lines = ["cluster_id\tgroup"] + [
            f"{c}\t{g}" for c, g in zip(clusters.tolist(), groups, strict=True)
        ]
        (staging / "cluster_group.tsv").write_text("\n".join(lines) + "\n")
        params = {
            "dat_path": str(dat_path) if dat_path else "",
            "n_channels_dat": int(n_channels_dat or n_channels),
            "dtype": dtype,
            "offset": 0,
            "sample_rate": float(rate),
            "hp_filtered": bool(hp_filtered),
        }
        (staging / "params.py").write_text(
            "".join(f"{key} = {value!r}\n" for key, value in params.items())
        )
        sidecar = {
            "unit_ids": trains.unit_ids.tolist(),
            "cluster_ids": clusters.tolist(),
            "start_time": trains.start_time,
            "duration": trains.duration,
            "templates": _template_kind(trains, n_channels),
        }
        (staging / "spikeforge.json").write_text(json.dumps(sidecar, indent=1) + "\n")


def read_params(path: str | Path) -> dict[str, Any]:
    """The literal assignments of a params.py, without running it."""
    path = Path(path)
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as error:
        raise InputError(path, f"not a Phy params.py: {error.msg} (line {error.lineno})") from None
    params: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    params[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue  # an expression, not a literal: Phy's own readers would run it
    return params


def _read_tsv(path: Path) -> dict[int, str]:
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return {int(r[0]): r[1].strip() for r in rows[1:] if len(r) >= 2 and r[0].strip().isdigit()}


def read_phy(path: str | Path, sampling_frequency: float | None = None) -> SpikeTrains:
    """Load a Phy/KiloSort folder (ours or a sorter's)."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(folder, "no such folder")
    for name in _REQUIRED:
        if not (folder / name).is_file():
            raise InputError(folder, f"not a Phy/KiloSort folder: {name} is missing")
    try:
        return _read(folder, sampling_frequency)
    except (SpikeTrainError, ValueError, OSError, KeyError) as error:
        raise InputError(folder, str(error)) from None


def _load(folder: Path, name: str) -> np.ndarray:
    try:
        return np.load(folder / name, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(folder / name, f"not a readable .npy file: {error}") from None


def _read(folder: Path, sampling_frequency: float | None) -> SpikeTrains:
    params = read_params(folder / "params.py")
    rate = sampling_frequency or params.get("sample_rate")
    if rate is None:
        raise SpikeTrainError("params.py has no sample_rate")
    samples = _load(folder, "spike_times.npy").ravel()
    if samples.dtype.kind not in "iu":
        raise SpikeTrainError(f"spike_times.npy must hold integer samples, not {samples.dtype}")
    cluster_file = "spike_clusters.npy"
    if not (folder / cluster_file).is_file():
        cluster_file = "spike_templates.npy"
    clusters = _load(folder, cluster_file).ravel()
    if clusters.shape != samples.shape:
        raise SpikeTrainError(
            f"{cluster_file} has {clusters.size} entries for {samples.size} spike times"
        )
    if clusters.dtype.kind not in "iu":
        raise SpikeTrainError(f"{cluster_file} must hold integers, not {clusters.dtype}")
    for first in range(0, samples.size, CHUNK):
        piece = samples[first : first + CHUNK + 1]
        if np.any(piece[1:] < piece[:-1]):
            raise SpikeTrainError("spike_times.npy is not in time order")
    groups: dict[int, str] = {}
    if (folder / "cluster_group.tsv").is_file():
        groups = _read_tsv(folder / "cluster_group.tsv")
    sidecar: dict[str, Any] = {}
    if (folder / "spikeforge.json").is_file():
        sidecar = json.loads((folder / "spikeforge.json").read_text())
    if sidecar.get("cluster_ids") is not None:
        cluster_ids = np.asarray(sidecar["cluster_ids"], dtype=np.int64)
        unit_ids = np.asarray(sidecar["unit_ids"])
    else:
        present = np.unique(clusters).astype(np.int64)
        cluster_ids = np.union1d(present, np.fromiter(groups, np.int64, len(groups)))
        unit_ids = cluster_ids
    times, counts = _group_by_unit(samples, clusters, cluster_ids)
    del clusters
    properties: dict[str, np.ndarray] = {}
    if groups:
        properties["quality"] = np.array([groups.get(int(c), "unsorted") for c in cluster_ids])
    kind = sidecar.get("templates")
    if kind in ("waveform_mean", "waveform_mean_on_peak") and (folder / "templates.npy").is_file():
        templates = _load(folder, "templates.npy")
        if templates.shape[0] >= unit_ids.size:
            templates = templates[: unit_ids.size]
            if kind == "waveform_mean_on_peak":
                peak = np.abs(templates).max(axis=1).argmax(axis=1)
                templates = templates[np.arange(unit_ids.size), :, peak]
                properties["peak_channel"] = peak.astype(np.int64)
            properties["waveform_mean"] = templates
    recording: dict[str, Any] = {}
    if (folder / "channel_positions.npy").is_file():
        recording["channel_positions"] = _load(folder, "channel_positions.npy")
    if (folder / "channel_map.npy").is_file():
        recording["channel_ids"] = _load(folder, "channel_map.npy").ravel()
    if params.get("dat_path"):
        recording["dat_path"] = str(params["dat_path"])
    return SpikeTrains(
        unit_ids,
        times,
        np.cumsum(counts),
        sampling_frequency=float(rate),
        start_time=float(sidecar.get("start_time") or 0.0),
        duration=sidecar.get("duration"),
        unit_properties=properties,
        recording_properties=recording,
    )


def _group_by_unit(
    samples: np.ndarray, clusters: np.ndarray, cluster_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Time-ordered spikes regrouped unit after unit (in `cluster_ids` order), each unit's
    still in time order: a counting sort, a piece of the spikes at a time."""
    n_units = cluster_ids.size
    # 16-bit keys sort by radix (stable, linear time)
    small = np.uint16 if n_units <= np.iinfo(np.uint16).max else np.int64
    # cluster id -> position: a table (cluster ids are small numbers), -1 for unknown ids
    top = int(max(cluster_ids.max(initial=0), clusters.max(initial=0)))
    lowest = min(cluster_ids.min(initial=0), clusters.min(initial=0))
    if lowest < 0 or top > 50_000_000:
        raise SpikeTrainError("cluster ids must be numbers from 0 to 50,000,000")
    table = np.full(top + 1, -1, np.int64)
    table[cluster_ids] = np.arange(n_units)

    def positions(first: int) -> np.ndarray:
        found = table[clusters[first : first + CHUNK]]
        if found.size and found.min() < 0:
            raise SpikeTrainError("spike_clusters.npy names clusters spikeforge.json does not list")
        return found.astype(small)

    pieces = range(0, samples.size, CHUNK)
    per_piece = [np.bincount(positions(first), minlength=n_units) for first in pieces]
    counts = np.sum(per_piece, axis=0, dtype=np.int64) if per_piece else np.zeros(n_units, int)
    cursor = np.cumsum(counts) - counts
    times = np.empty(samples.size, np.int64)
    for first, piece_counts in zip(pieces, per_piece, strict=True):
        order = np.argsort(positions(first), kind="stable")
        grouped = samples[first : first + CHUNK][order]
        ends = np.cumsum(piece_counts)
        for unit in np.flatnonzero(piece_counts).tolist():
            size = int(piece_counts[unit])
            times[cursor[unit] : cursor[unit] + size] = grouped[ends[unit] - size : ends[unit]]
            cursor[unit] += size
    return times, counts

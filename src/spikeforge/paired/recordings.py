"""Recordings read through SpikeInterface (Open Ephys, SpikeGLX, NWB, raw binary + probe file),
the analysis window and ground-truth spike-time files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import probeinterface
import spikeinterface.core as sc

from spikeforge.core.errors import InputError

log = logging.getLogger(__name__)

# What a raw binary file cannot say about itself.
BINARY_KEYS = ("sampling_frequency", "num_channels", "dtype")


READERS = {
    "openephys": ("read_openephys", "folder_path"),
    "spikeglx": ("read_spikeglx", "folder_path"),
    "nwb": ("read_nwb", "file_path"),
}


def open_recording(
    reader: Literal["openephys", "spikeglx", "nwb", "binary"],
    path: str | Path,
    stream_id: str | None = None,
    *,
    probe_path: str | Path | None = None,
    **binary_kwargs: Any,
) -> sc.BaseRecording:
    """Open a recording with a SpikeInterface reader.

    "openephys", "spikeglx", "nwb": the folder (file for NWB) and optional stream id.
    "binary": a raw file plus `probe_path` (probeinterface JSON or .prb) and the
    BinaryRecordingExtractor keywords (sampling_frequency, num_channels, dtype, gain_to_uV,
    offset_to_uV, ...). Raises InputError naming the path on a missing path or a reader error.
    """
    import spikeinterface.extractors as se

    path = Path(path)
    if not path.exists():
        raise InputError(path, "recording not found")
    try:
        if reader == "binary":
            if probe_path is None:
                raise InputError(path, "a binary recording needs a probe file (probe_path)")
            probe_path = Path(probe_path)
            if not probe_path.is_file():
                raise InputError(probe_path, "probe file not found")
            _check_binary(path, binary_kwargs)
            recording = se.read_binary(file_paths=[str(path)], **binary_kwargs)
            if probe_path.suffix == ".prb":
                group = probeinterface.read_prb(probe_path)
            else:
                group = probeinterface.read_probeinterface(probe_path)
            recording.set_probegroup(group)  # in place since spikeinterface 0.105
        elif reader in READERS:
            function, argument = READERS[reader]
            kwargs: dict[str, Any] = {argument: str(path)}
            if stream_id is not None:
                kwargs["stream_id"] = stream_id
            recording = getattr(se, function)(**kwargs)
        else:
            raise InputError(
                path, f"unknown reader {reader!r} (openephys, spikeglx, nwb, binary)", key="reader"
            )
    except InputError:
        raise
    except Exception as exc:  # each reader raises its own types for unreadable input
        raise InputError(path, f"{reader} reader failed ({type(exc).__name__}: {exc})") from exc
    return recording


def analysis_window(
    n_samples: int, fs: float, skip_s: float, duration_s: float | None
) -> tuple[int, int]:
    """(start_frame, end_frame): skip `skip_s`, then `duration_s` (None: to the end).

    A window starting at or past the end is an InputError; a window running past the end is cut
    at the end with a warning (the original conversion cut it silently).
    """
    if skip_s < 0 or (duration_s is not None and duration_s <= 0):
        raise InputError(
            "analysis window", f"skip {skip_s} s / duration {duration_s} s must be >= 0 / > 0"
        )
    start = int(skip_s * fs)
    if start >= n_samples:
        raise InputError(
            "analysis window",
            f"starts at {skip_s:g} s (frame {start:,}) but the recording has only "
            f"{n_samples:,} frames ({n_samples / fs:.3f} s)",
        )
    if duration_s is None:
        return start, n_samples
    end = start + int(duration_s * fs)
    if end > n_samples:
        log.warning(
            "analysis window %g s + %g s runs past the end of the recording (%.3f s): using %.3f s",
            skip_s,
            duration_s,
            n_samples / fs,
            (n_samples - start) / fs,
        )
        end = n_samples
    return start, end


def load_spike_samples(
    path: str | Path, fs: float | None = None, units: Literal["samples", "seconds"] = "samples"
) -> np.ndarray:
    """Ground-truth spike times from a .npy, .txt or .csv file (one column), as int64 samples of
    the recording (seconds are multiplied by `fs` and rounded). Sorted."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "spike-times file not found")
    try:
        if path.suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            values = np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=1)
    except Exception as exc:  # numpy raises several types for unreadable text or .npy
        raise InputError(path, f"not readable as spike times ({exc})") from exc
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(values)) or (values.size and values.min() < 0):
        raise InputError(path, "spike times must be finite and >= 0")
    if units == "seconds":
        if fs is None:
            raise InputError(path, "spike times in seconds need the sampling frequency")
        values = np.round(values * fs)
    return np.sort(values.astype(np.int64))


def _check_binary(path: Path, kwargs: dict[str, Any]) -> None:
    """The binary reader's settings are given and the file holds whole frames of them."""
    missing = [key for key in BINARY_KEYS if kwargs.get(key) is None]
    if missing:
        raise InputError(path, f"a binary recording needs {', '.join(missing)}")
    try:
        itemsize = np.dtype(kwargs["dtype"]).itemsize
    except TypeError as exc:
        raise InputError(path, f"dtype {kwargs['dtype']!r} is not a numpy dtype") from exc
    frame = int(kwargs["num_channels"]) * itemsize
    size = path.stat().st_size
    if size == 0 or size % frame:
        raise InputError(
            path,
            f"size {size:,} bytes is not a positive multiple of {kwargs['num_channels']} "
            f"channels x {itemsize} bytes ({kwargs['dtype']})",
        )

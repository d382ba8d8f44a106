"""Segments of a window and their Arrow rows (the columns of the SPE-1 conversion: sample_id,
cit, ctt, cp), written one stream file per segment by the pass's workers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from spikeforge.core.errors import InputError
from spikeforge.io.hf_datasets import segment_file_name
from spikeforge.paired.kernels import write_at
from spikeforge.paired.spe1 import NPX_CHANNELS

# Arrow list offsets are int32.
MAX_LIST_VALUES = 2**31 - 1


def split_segments(
    n_samples: int, seg_len: int, train_fraction: float
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Consecutive segments [s0, s1) of seg_len samples (the last may be shorter); the first
    int(n_segments * train_fraction) are train, the rest test."""
    if seg_len < 1:
        raise ValueError("segment length must be at least one sample")
    segments = [(s, min(s + seg_len, n_samples)) for s in range(0, n_samples, seg_len)]
    n_train = int(len(segments) * train_fraction)
    return segments[:n_train], segments[n_train:]


def plan_segments(
    n_samples: int,
    fs: float,
    segment_s: float,
    train_fraction: float,
    n_channels: int = NPX_CHANNELS,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The (train, test) segments of a window, or InputError when a split would be empty (the
    message gives the longest segment length that works) or a row would not fit an Arrow list.
    Cheap: call it before preprocessing to refuse a too-short window early."""
    if not 0.0 < train_fraction < 1.0:
        raise InputError("paired.train_fraction", f"{train_fraction} must be between 0 and 1")
    seg_len = int(segment_s * fs)
    if seg_len < 1:
        raise InputError("paired.segment_s", f"{segment_s} s is shorter than one sample")
    if n_channels * seg_len > MAX_LIST_VALUES:
        raise InputError(
            "paired.segment_s",
            f"{segment_s} s x {n_channels} channels exceeds an Arrow list's 2^31 values",
        )
    train, test = split_segments(n_samples, seg_len, train_fraction)
    if not train or not test:
        needed = next(
            m
            for m in range(2, 10_000)
            if int(m * train_fraction) >= 1 and m - int(m * train_fraction) >= 1
        )
        longest = math.floor(n_samples / needed) / fs
        raise InputError(
            "paired.segment_s",
            f"the window has {n_samples:,} samples ({n_samples / fs:.4g} s): "
            f"{len(train) + len(test)} segment(s) of {segment_s:g} s leave the "
            f"{'train' if not train else 'test'} split empty (train fraction "
            f"{train_fraction:g}); use segments of at most {longest:.4g} s or a longer window",
        )
    return train, test


def arrow_features() -> Any:
    """The datasets Features of a segment row: sample_id str, cit list[list[int32]], ctt
    list[list[float64]] (ms), cp list[list[float32]] (channels x samples)."""
    from datasets import Features, List, Value

    return Features(
        {
            "sample_id": Value("string"),
            "cit": List(List(Value("int32"))),
            "ctt": List(List(Value("float64"))),
            "cp": List(List(Value("float32"))),
        }
    )


def _nested(values: pa.Array, inner_offsets: np.ndarray) -> pa.Array:
    """One row holding a list of per-channel lists."""
    inner = pa.ListArray.from_arrays(pa.array(inner_offsets, type=pa.int32()), values)
    outer = np.array([0, len(inner_offsets) - 1], dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(outer, type=pa.int32()), inner)


def _channel_offsets(n_channels: int, channel: int, n_spikes: int) -> np.ndarray:
    """List offsets of a row whose spikes all sit on `channel` (the other lists empty)."""
    return np.where(np.arange(n_channels + 1) > channel, n_spikes, 0).astype(np.int32)


def _segment_table(
    traces: np.ndarray,
    s0: int,
    spike_rel: np.ndarray,
    fs: float,
    schema: pa.Schema,
    channel: int,
) -> pa.Table:
    """The row of the segment starting at s0 whose traces are `traces` ([samples, channels])."""
    length, n_channels = traces.shape
    cp = np.empty((n_channels, length), np.float32)
    # Transpose in blocks of samples: a whole-segment transposed copy is cache-hostile.
    step = 4096
    for a in range(0, length, step):
        cp[:, a : a + step] = traces[a : a + step].T
    values = pa.Array.from_buffers(pa.float32(), cp.size, [None, pa.py_buffer(cp)])
    cp_col = _nested(values, np.arange(0, n_channels * length + 1, length, dtype=np.int32))

    lo, hi = np.searchsorted(spike_rel, [s0, s0 + length])
    times_ms = (spike_rel[lo:hi] - s0).astype(np.float64) / fs * 1000.0
    spike_offsets = _channel_offsets(n_channels, channel, times_ms.size)
    cit_col = _nested(pa.array(np.zeros(times_ms.size, np.int32)), spike_offsets)
    ctt_col = _nested(pa.array(times_ms), spike_offsets)
    ids = pa.array([f"{s0:010d}"], type=pa.string())
    return pa.Table.from_arrays([ids, cit_col, ctt_col, cp_col], schema=schema)


def spike_list_positions(path: str) -> list[tuple[int, int]]:
    """(file position, bytes) of the per-channel list offsets of cit and ctt in a one-row Arrow
    stream file: where `place_spikes` rewrites them once the peak channel is known."""
    with pa.memory_map(path) as source:
        base = source.read_buffer(1).address  # the mapping's first byte
        source.seek(0)
        batch = pa.ipc.open_stream(source).read_next_batch()
        positions = []
        for name in ("cit", "ctt"):
            inner = batch.column(name).values
            offsets = inner.buffers()[1]
            positions.append((offsets.address - base + 4 * inner.offset, 4 * (len(inner) + 1)))
        del batch, inner, offsets
    return positions


def place_spikes(
    path: str, positions: list[tuple[int, int]], n_channels: int, channel: int, n_spikes: int
) -> None:
    """Move a segment row's spikes to `channel`: the lists keep their sizes, only their
    offsets change, so the file is rewritten in place (a few kB)."""
    offsets = _channel_offsets(n_channels, channel, n_spikes)
    with open(path, "r+b") as handle:
        for position, size in positions:
            if size != offsets.nbytes:
                raise RuntimeError(f"{path}: unexpected list offsets at byte {position}")
            write_at(handle, position, offsets)


@dataclass(frozen=True)
class ExportSpec:
    """What a pass worker needs to write its segments' Arrow files: the segment length, per
    segment k its (split, index in split, files in split), the split folders, all spikes
    (window-relative frames, sorted) and the rows' schema; and, for the template sums, the
    spikes whose window lies inside the recording and the window (nbefore, nafter)."""

    segment_samples: int
    files: list[tuple[str, int, int]]
    dirs: dict[str, str]
    spikes: np.ndarray
    template_spikes: np.ndarray
    nbefore: int
    nafter: int
    fs: float
    schema: pa.Schema


@dataclass(frozen=True)
class SegmentFile:
    """A written segment: its number k, its file and where its spike lists' offsets are."""

    k: int
    path: str
    positions: list[tuple[int, int]]


def write_segment(traces: np.ndarray, start: int, export: ExportSpec) -> SegmentFile:
    """Write the chunk's segment as a one-row Arrow stream file, spikes on the placeholder
    channel 0 (place_spikes moves them once the peak channel is known)."""
    k, rest = divmod(start, export.segment_samples)
    if rest:
        raise RuntimeError(f"chunk at frame {start} is not a segment start")
    split, index, count = export.files[k]
    path = segment_file_name(export.dirs[split], index, count)
    table = _segment_table(traces, start, export.spikes, export.fs, export.schema, 0)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, export.schema) as writer:
        writer.write_table(table)
    return SegmentFile(k=k, path=path, positions=spike_list_positions(path))

"""The streaming pass's arithmetic, laid out for speed and bit-identical to SpikeInterface's lazy
bandpass_filter + common_reference chain (tests compare them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.signal

# Channels filtered together: few enough that scipy's float64 copies of a group stay in cache.
_FILTER_CHANNELS = 64
# Samples per block of the transposes and of the reference's arithmetic.
BLOCK_ROWS = 4096


def filtfilt_min_samples(freq_min: float, freq_max: float, fs: float) -> int:
    """Shortest trace scipy's sosfiltfilt accepts for SpikeInterface's 5th-order bandpass."""
    sos = scipy.signal.iirfilter(5, [freq_min, freq_max], fs=fs, btype="bandpass", output="sos")
    taps = 2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * taps + 1


@dataclass(frozen=True)
class FilterSpec:
    """SpikeInterface's bandpass filter of one segment, as bandpass_chunk applies it:
    `recording` is the unfiltered one-segment recording, `offset` the window's first frame in
    it, `n_total` its length, `margin` the filter's margin, `sos` its coefficients and `dtype`
    the filtered traces' dtype."""

    recording: Any
    offset: int
    margin: int
    n_total: int
    sos: np.ndarray
    dtype: np.dtype


def bandpass_chunk(spec: FilterSpec, start: int, end: int) -> np.ndarray:
    """Frames [start, end) of the window, bandpassed exactly as spikeinterface's
    FilterRecordingSegment.get_traces computes them (same margins from the recording, the same
    sosfiltfilt on the same dtype per channel, rounded and cast to the filter's dtype), but on
    channels laid out along time, in groups: about 20 % faster than one sosfiltfilt over
    [samples, channels] along axis 0, and bit-identical (tested against the lazy chain)."""
    margin, offset = spec.margin, spec.offset
    a, b = start + offset, end + offset  # frames of the whole segment
    left = min(margin, a)
    right = min(margin, spec.n_total - b)
    raw = spec.recording.get_traces(segment_index=0, start_frame=a - left, end_frame=b + right)
    n_rows, n_channels = raw.shape
    by_channel = np.empty((n_channels, n_rows), dtype=raw.dtype)
    for r0 in range(0, n_rows, BLOCK_ROWS):
        by_channel[:, r0 : r0 + BLOCK_ROWS] = raw[r0 : r0 + BLOCK_ROWS].T
    dtype = spec.dtype
    out = np.empty((end - start, n_channels), dtype=dtype)
    stop = n_rows - right
    for c0 in range(0, n_channels, _FILTER_CHANNELS):
        c1 = min(c0 + _FILTER_CHANNELS, n_channels)
        filtered = scipy.signal.sosfiltfilt(spec.sos, by_channel[c0:c1], axis=-1)
        filtered = filtered[:, left:stop]
        if np.issubdtype(dtype, np.integer):
            filtered = filtered.round()
        out[:, c0:c1] = filtered.T.astype(dtype)
    return out


def median_reference(
    traces: np.ndarray, reference: np.ndarray | None, dtype: np.dtype
) -> np.ndarray:
    """traces minus their median over the reference channels, as spikeinterface's global
    median CommonReferenceRecording computes it: the median in float64, subtracted, rounded
    (half to even) for integer output. For integer traces the subtraction and rounding run in
    float32, which is exact there (the median is a multiple of 0.5 within 2^16) and halves the
    memory traffic."""
    shift = np.median(traces if reference is None else traces[:, reference], axis=1, keepdims=True)
    integer_in = np.issubdtype(traces.dtype, np.integer) and traces.dtype.itemsize <= 2
    if not integer_in:
        referenced = traces - shift
        if np.issubdtype(dtype, np.integer):
            np.round(referenced, out=referenced)
        return referenced.astype(dtype, copy=False)
    shift32 = shift.astype(np.float32)
    out = np.empty(traces.shape, dtype=dtype)
    integer_out = np.issubdtype(dtype, np.integer)
    for r0 in range(0, traces.shape[0], BLOCK_ROWS):
        block = traces[r0 : r0 + BLOCK_ROWS].astype(np.float32)
        block -= shift32[r0 : r0 + BLOCK_ROWS]
        if integer_out:
            np.round(block, out=block)
        out[r0 : r0 + BLOCK_ROWS] = block
    return out


def write_at(handle: Any, offset: int, array: np.ndarray) -> None:
    """Write `array`'s bytes at `offset` of an open file (positioned, no seek)."""
    view = memoryview(np.ascontiguousarray(array)).cast("B")
    while view.nbytes:
        written = os.pwrite(handle.fileno(), view, offset)
        view, offset = view[written:], offset + written

"""The peak-aligned mean template of the ground-truth unit (no per-spike realignment), summed
chunk by chunk in the streaming pass or read from saved traces; and row access to saved
traces that never keeps a long recording mapped."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import spikeinterface.core as sc

if TYPE_CHECKING:
    from spikeforge.paired.arrow import ExportSpec

log = logging.getLogger(__name__)

TEMPLATE_METHOD = "zhao2026_raw_mean_template"


@dataclass(frozen=True)
class TemplateResult:
    """templates: [1, nbefore + nafter, channels] float32 mean waveform; peak_channel: argmax
    over channels of max |template|; metadata: the keys the original conversion writes."""

    templates: np.ndarray
    peak_channel: int
    metadata: dict[str, Any]


def template_window(fs: float, ms_before: float, ms_after: float) -> tuple[int, int]:
    """(nbefore, nafter) in samples, truncated as the original conversion does."""
    return int(ms_before * fs / 1000.0), int(ms_after * fs / 1000.0)


def peak_aligned_template(
    traces: sc.BaseRecording | np.ndarray,
    spike_samples: np.ndarray,
    fs: float,
    ms_before: float = 1.0,
    ms_after: float = 2.0,
    min_spikes: int = 2,
    batch_size: int = 256,
) -> TemplateResult:
    """Mean of the windows [s - nbefore, s + nafter) around each spike (no realignment).

    `traces` is the saved recording (preprocess's result; best for memory) or any
    [samples, channels] array: windows are gathered with one fancy-index read per batch of
    spikes, so no per-spike call goes through a filter chain and memory is bounded by the
    batch. Sums are float64; the template is float32, in the traces' units. Spikes whose
    window leaves the data are counted in n_out_of_bounds_discarded; fewer than `min_spikes`
    usable spikes give an all-zero template (and peak channel 0, with a warning).
    """
    reader = TraceRows(traces)
    n_samples, n_channels = reader.shape
    nbefore, nafter = template_window(fs, ms_before, ms_after)
    width = nbefore + nafter
    spikes = np.asarray(spike_samples, dtype=np.int64).reshape(-1)
    inside = (spikes - nbefore >= 0) & (spikes + nafter <= n_samples)
    used = np.sort(spikes[inside])  # sorted: reads walk the file forwards
    total = np.zeros((width, n_channels), dtype=np.float64)
    offsets = np.arange(-nbefore, nafter, dtype=np.int64)
    for i in range(0, used.size, batch_size):
        rows = (used[i : i + batch_size, None] + offsets[None, :]).reshape(-1)
        windows = reader.gather(rows).reshape(-1, width, n_channels)
        total += windows.sum(axis=0, dtype=np.float64)  # no float64 copy of the batch
    return template_from_sums(
        total, used.size, spikes.size, nbefore, nafter, ms_before, ms_after, min_spikes
    )


def template_from_sums(
    total: np.ndarray,
    n_used: int,
    n_total: int,
    nbefore: int,
    nafter: int,
    ms_before: float,
    ms_after: float,
    min_spikes: int,
) -> TemplateResult:
    """The mean template from the float64 sum of the `n_used` windows."""
    if n_used >= min_spikes and n_used > 0:
        template = (total / n_used).astype(np.float32)
    else:
        template = np.zeros(total.shape, dtype=np.float32)
        log.warning(
            "%d usable spikes (< %d): template is all zeros, peak channel 0", n_used, min_spikes
        )
    peak_channel = int(np.argmax(np.max(np.abs(template), axis=0)))
    metadata = {
        "extraction_method": TEMPLATE_METHOD,
        "ms_before": float(ms_before),
        "ms_after": float(ms_after),
        "nbefore": int(nbefore),
        "nafter": int(nafter),
        "n_spikes_total": int(n_total),
        "n_spikes_used": int(n_used),
        "n_out_of_bounds_discarded": int(n_total - n_used),
    }
    return TemplateResult(
        templates=template[np.newaxis], peak_channel=peak_channel, metadata=metadata
    )


def template_sums(traces: np.ndarray, start: int, export: ExportSpec) -> np.ndarray | None:
    """Sum over the template's spikes of the rows of [s - nbefore, s + nafter) that fall in
    this chunk (float64, so integer traces sum exactly in any order), or None."""
    nbefore, nafter = export.nbefore, export.nafter
    end = start + traces.shape[0]
    spikes = export.template_spikes
    lo = np.searchsorted(spikes, start - nafter, side="right")
    hi = np.searchsorted(spikes, end + nbefore, side="left")
    if hi <= lo:
        return None
    near = spikes[lo:hi]
    width = nbefore + nafter
    total = np.zeros((width, traces.shape[1]), dtype=np.float64)
    whole = (near - nbefore >= start) & (near + nafter <= end)
    offsets = np.arange(-nbefore, nafter, dtype=np.int64)
    local = near[whole] - start
    for i in range(0, local.size, 256):
        rows = (local[i : i + 256, None] + offsets[None, :]).reshape(-1)
        total += traces[rows].reshape(-1, width, traces.shape[1]).sum(axis=0, dtype=np.float64)
    for s in near[~whole]:  # windows that cross into a neighbouring chunk
        a, b = max(s - nbefore, start), min(s + nafter, end)
        total[a - (s - nbefore) : b - (s - nbefore)] += traces[a - start : b - start]
    return total


def _binary_description(traces: sc.BaseRecording) -> dict[str, Any] | None:
    if traces.get_num_segments() != 1 or not traces.is_binary_compatible():
        return None
    description = traces.get_binary_description()
    if (
        len(description["file_paths"]) != 1
        or description["time_axis"] != 0
        or int(description["num_channels"]) != traces.get_num_channels()
    ):
        return None
    return description


def trace_array(traces: sc.BaseRecording | np.ndarray) -> np.ndarray:
    """[samples, channels] array of a recording: a read-only memmap of a one-segment, one-file
    binary recording (e.g. what preprocess returns); arrays pass through. Other recordings are
    refused: save them first, so later stages never re-run the lazy filter chain."""
    if isinstance(traces, np.ndarray):
        if traces.ndim != 2:
            raise ValueError(f"traces must be [samples, channels], got shape {traces.shape}")
        return traces
    description = _binary_description(traces)
    if description is None:
        raise ValueError(
            f"{type(traces).__name__} is not a one-segment, one-file binary recording: save it "
            "first (preprocess returns one)"
        )
    return np.memmap(
        description["file_paths"][0],
        dtype=np.dtype(description["dtype"]),
        mode="r",
        offset=int(description["file_offset"]),
        shape=(traces.get_num_samples(), traces.get_num_channels()),
    )


class TraceRows:
    """Row gathers from [samples, channels] traces. Arrays (memmaps included) are indexed
    directly; a binary recording's file is mapped per gather and never kept mapped, so resident
    memory does not accumulate the pages of a long recording."""

    def __init__(self, traces: sc.BaseRecording | np.ndarray) -> None:
        self.array: np.ndarray | None = None
        if isinstance(traces, np.ndarray):
            self.array = trace_array(traces)
            self.shape = self.array.shape
            self.dtype = self.array.dtype
            return
        mapped = trace_array(traces)
        self.shape, self.dtype = mapped.shape, mapped.dtype
        self.path = str(mapped.filename)
        self.offset = int(mapped.offset)
        del mapped

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Copy of the given rows."""
        if self.array is not None:
            return self.array[rows]
        mapped = np.memmap(self.path, self.dtype, "r", offset=self.offset, shape=self.shape)
        try:
            return np.array(mapped[rows])
        finally:
            del mapped

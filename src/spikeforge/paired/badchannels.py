"""Bad channels as SpikeInterface's detect_bad_channels finds them ("coherence+psd": IBL's
detector on random chunks of the bandpassed traces, majority vote), but labelled inside the
streaming pass that filters those chunks anyway, so detection costs no extra filtering."""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats
import spikeinterface.core as sc
import spikeinterface.preprocessing as spre
from spikeinterface.core.time_series_tools import get_random_sample_slices
from spikeinterface.preprocessing.detect_bad_channels import detect_bad_channels_ibl

from spikeforge.core.errors import InputError

log = logging.getLogger(__name__)

# Bad-channel detection defaults: SpikeInterface's own (coherence+psd, 100 random chunks of
# 0.3 s), with a fixed seed so that reruns give the same channels.
DEFAULT_BAD_CHANNEL_KWARGS: dict[str, Any] = {"method": "coherence+psd", "seed": 0}

_IBL_ARGUMENTS = {
    "psd_hf_threshold": "psd_hf_threshold",
    "dead_channel_threshold": "dead_channel_thr",
    "noisy_channel_threshold": "noisy_channel_thr",
    "outside_channel_threshold": "outside_channel_thr",
    "n_neighbors": "n_neighbors",
    "nyquist_threshold": "nyquist_threshold",
    "welch_window_ms": "welch_window_ms",
    "outside_channels_location": "outside_channels_location",
}
_LABEL_NAMES = np.array(["good", "dead", "noise", "out"])


def bad_channel_settings(bad_channel_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """SpikeInterface's detect_bad_channels defaults updated with ours and the caller's."""
    params = inspect.signature(spre.detect_bad_channels).parameters
    settings = {k: p.default for k, p in params.items() if k not in ("recording", "job_kwargs")}
    settings.update(DEFAULT_BAD_CHANNEL_KWARGS)
    for key, value in (bad_channel_kwargs or {}).items():
        if key not in settings:
            raise InputError(
                "bad_channel_kwargs",
                f"unknown option {key!r}; spikeinterface.preprocessing.detect_bad_channels "
                f"takes {', '.join(sorted(settings))}",
                key=key,
            )
        settings[key] = value
    return settings


@dataclass(frozen=True)
class IblPlan:
    """The random slices (k, first frame, end frame) of the window that spikeinterface's
    detect_bad_channels would draw for "coherence+psd", and what labelling them needs: the
    sampling rate, the traces' gains and offsets to uV, the depth order IBL's filters assume
    (None when the channels are already in it) and the IBL detector's keywords."""

    slices: list[tuple[int, int, int]]
    fs: float
    gains: np.ndarray
    offsets: np.ndarray
    order_f: np.ndarray | None
    order_r: np.ndarray | None
    kwargs: dict[str, Any]


def ibl_plan(bandpassed: sc.BaseRecording, settings: Mapping[str, Any]) -> IblPlan:
    """The chunks spikeinterface's detect_bad_channels would draw ("coherence+psd"), and what
    the pass needs to label them as it does."""
    if int(settings["num_random_chunks"]) < 1:
        raise InputError("bad_channel_kwargs", "num_random_chunks must be >= 1")
    fs = float(bandpassed.get_sampling_frequency())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # spikeinterface's own draw (same seed, same chunks); it shortens chunks longer than
        # the window, with a warning passed on to the log.
        drawn = get_random_sample_slices(
            bandpassed,
            num_chunks_per_segment=int(settings["num_random_chunks"]),
            chunk_size=int(settings["chunk_duration_s"] * fs),
            seed=settings["seed"],
        )
    for w in caught:
        log.warning("bad-channel detection: %s", w.message)
    slices = [(k, int(a), int(b)) for k, (_, a, b) in enumerate(drawn)]
    locations = bandpassed.get_channel_locations()
    if ["x", "y", "z"].index(settings["direction"]) >= locations.shape[1]:
        raise InputError("bad_channel_kwargs", f"direction {settings['direction']!r}")
    # IBL's neighbour filters assume channels ordered by depth, as spikeinterface orders them.
    order_f, order_r = sc.order_channels_by_depth(recording=bandpassed, dimensions=("x", "y"))
    if np.all(np.diff(order_f) == 1):
        order_f = order_r = None
    return IblPlan(
        slices=slices,
        fs=fs,
        gains=bandpassed.get_channel_gains().astype(np.float32),
        offsets=bandpassed.get_channel_offsets().astype(np.float32),
        order_f=order_f,
        order_r=order_r,
        kwargs={ibl_key: settings[key] for key, ibl_key in _IBL_ARGUMENTS.items()},
    )


def label_slices(
    source: sc.BaseRecording,
    segment_index: int,
    start: int,
    end: int,
    chunk: np.ndarray,
    ibl: IblPlan,
) -> list[tuple[int, np.ndarray]]:
    """IBL labels of the bad-channel slices that start in [start, end)."""
    labels = []
    for k, a, b in ibl.slices:
        if not start <= a < end:
            continue
        if b <= end:
            piece = chunk[a - start : b - start]
        else:
            # The slice runs into the next chunk: filter it on its own, as detect_bad_channels
            # would (the chunk's own traces must stay as spikeinterface computes them).
            piece = source.get_traces(segment_index=segment_index, start_frame=a, end_frame=b)
        # Microvolts as spikeinterface's detect_bad_channels reads them (return_in_uV).
        raw = piece.astype(np.float32) * ibl.gains + ibl.offsets
        order_f, order_r = ibl.order_f, ibl.order_r
        if order_f is not None:
            raw = raw[:, order_f]
        chunk_labels = detect_bad_channels_ibl(raw=raw, fs=ibl.fs, **ibl.kwargs)
        labels.append((k, chunk_labels[order_r] if order_r is not None else chunk_labels))
    return labels


def labels_from_chunks(
    chunk_labels: np.ndarray, channel_ids: np.ndarray, channel_filters: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Mode of the per-chunk IBL labels -> (bad channel ids, label names), as spikeinterface."""
    mode_labels, _ = scipy.stats.mode(chunk_labels, axis=1, keepdims=False)
    names = _LABEL_NAMES[mode_labels.astype(int)]
    if np.count_nonzero(mode_labels) > len(channel_ids) / 3:
        log.warning(
            "over 1/3 of the channels are labelled bad (%d of %d): bad-channel detection may "
            "fail on such recordings",
            np.count_nonzero(mode_labels),
            len(channel_ids),
        )
    allowed = {"dead", "noise", "out"}
    filters = allowed if channel_filters is None else set(channel_filters)
    if not filters <= allowed:
        raise InputError("bad_channel_kwargs", f"channel_filters must be within {allowed}")
    return channel_ids[np.isin(names, list(filters))], names

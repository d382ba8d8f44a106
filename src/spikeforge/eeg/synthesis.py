"""Per-sample EEG synthesis (docs/eeg-chain.md §6), vectorised through per-clip projections.

The reference builds a dense T x R source and projects it (O(C R T) a sample). Only the patch
columns of each clip change, so
    eeg = sum_k [fwd @ clip_k.T + fwd[:, p_k] @ (w_k m_k - clip_k[:, p_k]).T],
and fwd @ clip_k.T is computed once per clip in the library: a sample costs O(C T |patch|).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from spikeforge.core.seeding import STREAM_NOISE, fast_rng
from spikeforge.eeg.library import Library
from spikeforge.eeg.plan import PATCH_WIDTH, Plan

BLOCK_SAMPLES = 256


@dataclass
class SampleBlock:
    """Synthesised samples, sources stored sparsely (only the labelled regions)."""

    index: np.ndarray  # [n] int64, sample index within the split
    eeg: np.ndarray  # [n, T, C] float32, normalised
    labels: np.ndarray  # [n, S, PATCH_WIDTH] int32, padded
    snr: np.ndarray  # [n] float64 (dB)
    source_ptr: np.ndarray  # [n + 1] int64 into source_regions / source_timecourses
    source_regions: np.ndarray  # [nnz] int32
    source_timecourses: np.ndarray  # [nnz, T] float32, normalised label source


def noise_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The sample's own noise stream."""
    return fast_rng(seed, split, index, STREAM_NOISE)


def noise_sigma(eeg: np.ndarray, snr_db: np.ndarray | float) -> np.ndarray:
    """Per channel: sigma_c^2 = 10^(-snr/10) * P_c / 2, P_c = ||eeg_c||^2 / T (uncentred).

    The factor 1/2 follows DeepSIF: the realised per-channel SNR is snr + 3.01 dB.
    Works on one C x T sample or a stack [n, C, T] with one SNR per sample.
    """
    power = np.einsum("...t,...t->...", eeg, eeg) / eeg.shape[-1]
    snr = np.asarray(snr_db, np.float64)[..., None]
    return np.sqrt(10.0 ** (-snr / 10.0) * power / 2.0)


def add_white_noise(eeg: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """eeg (C x T) plus white noise at `snr_db`, drawn from `rng` as float32 normals."""
    sigma = noise_sigma(eeg, snr_db)
    return eeg + sigma[:, None] * rng.standard_normal(eeg.shape, dtype=np.float32)


def normalise_eeg(eeg: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """C x T -> T x C float32: remove each channel's time mean, then the mean over channels at
    each time point, then divide by max |x|.

    After the time means are removed, the channel mean at time t is col_t - grand, so both
    centrings are one pass: x = eeg - row - (col - grand).
    """
    row = eeg.mean(axis=1, keepdims=True)
    col = eeg.mean(axis=0, keepdims=True)
    x = eeg - row
    x -= col - row.mean()
    scale = 1.0 / max(x.max(), -x.min())
    if out is None:
        out = np.empty(x.shape[::-1], np.float32)
    np.multiply(x.T, scale, out=out, casting="unsafe")
    return out


def synthesize(
    fwd: np.ndarray,
    library: Library,
    plan: Plan,
    first_index: int,
    seed: int,
    split: str,
    add_noise: bool = True,
    label_pad: int = -1,
) -> Iterator[SampleBlock]:
    """Synthesise plan rows 0..N-1 as samples first_index.. in blocks of bounded memory."""
    for start in range(0, plan.n_samples, BLOCK_SAMPLES):
        stop = min(start + BLOCK_SAMPLES, plan.n_samples)
        yield _synthesize_block(
            fwd, library, plan, start, stop, first_index, seed, split, add_noise, label_pad
        )


def _synthesize_block(
    fwd, library, plan, start, stop, first_index, seed, split, add_noise, label_pad
) -> SampleBlock:
    # Per-sample arithmetic on C x T arrays that stay in cache: stacking the whole block was
    # slower, dominated by page faults on fresh 100 MB temporaries.
    n = stop - start
    rows, inverse = np.unique(plan.clip[start:stop], return_inverse=True)
    clip_of = inverse.reshape(n, plan.n_sources)
    unions = [
        np.unique(np.concatenate([plan.patch_of(i, k) for k in range(plan.n_sources)]))
        for i in range(start, stop)
    ]
    # Each clip used by the block is read once, and only in the regions its samples label.
    needed = [[] for _ in rows]
    for b in range(n):
        for k in range(plan.n_sources):
            needed[clip_of[b, k]].append(unions[b])
    regions_of = [np.unique(np.concatenate(parts)) for parts in needed]
    courses_of = [library.regions(int(r), regs) for r, regs in zip(rows, regions_of, strict=True)]
    projections = [library.projection[int(r)] for r in rows]
    n_channels, n_regions = fwd.shape
    n_time = library.n_time
    eeg_out = np.empty((n, n_time, n_channels), np.float32)
    labels = np.full((n, plan.n_sources, PATCH_WIDTH), label_pad, np.int32)
    snr = plan.sensor_snr[start:stop].astype(np.float64)
    ptr = [0]
    regions_out, courses_out = [], []
    fwd_by_region = np.ascontiguousarray(fwd.T)  # row gathers are contiguous
    for b, i in enumerate(range(start, stop)):
        patches = [plan.patch_of(i, k) for k in range(plan.n_sources)]
        union = unions[b]
        source = np.zeros((union.size, n_time))
        eeg = np.zeros((n_channels, n_time))
        for k, patch in enumerate(patches):
            # One gather of the clip's labelled regions serves the waveform, the background
            # to replace and the label source.
            c = clip_of[b, k]
            courses = courses_of[c][np.searchsorted(regions_of[c], union)].astype(np.float64)
            in_union = np.searchsorted(union, patch)
            centre = courses[in_union[0]]
            waveform = centre * (plan.scale[i, k] / centre.max())
            patch_signal = np.outer(plan.weights_of(i, k), waveform)
            replaced = patch_signal - courses[in_union]
            courses[in_union] = patch_signal
            source += courses
            eeg += projections[c]
            eeg += fwd_by_region[patch].T @ replaced
            labels[b, k, : patch.size] = patch
        if add_noise:
            eeg = add_white_noise(eeg, snr[b], noise_rng(seed, split, first_index + i))
        normalise_eeg(eeg, out=eeg_out[b])
        # The reference divides the dense source (zeros outside the patches) by its plain max.
        peak = source.max() if union.size == n_regions else max(source.max(), 0.0)
        regions_out.append(union.astype(np.int32))
        courses_out.append((source * (1.0 / peak)).astype(np.float32))
        ptr.append(ptr[-1] + union.size)
    return SampleBlock(
        index=np.arange(first_index + start, first_index + stop, dtype=np.int64),
        eeg=eeg_out,
        labels=labels,
        snr=snr,
        source_ptr=np.asarray(ptr, np.int64),
        source_regions=np.concatenate(regions_out),
        source_timecourses=np.concatenate(courses_out),
    )

"""The random processes of a mock session, each a function of one numpy Generator so that a
unit, a channel or a movie draws from its own seeded stream.

- `dead_time_train`: a Poisson process with dead time (after each spike nothing for tau, then
  a constant hazard), with a piecewise-constant rate. Its intervals are tau + Exp(lambda)
  with lambda = r / (1 - r tau), so the rate is r, the CV of the intervals 1 - r tau and the
  Fano factor of long counts (1 - r tau)^2. Within a constant-rate piece the spikes are one
  cumulative sum; at a piece's end the exponential clock restarts (memorylessness makes this
  exact).
- `table_normals`: standard normal draws by an inverse-CDF table of 65,536 equiprobable
  quantiles, four per 64-bit random word (tails end at 4.3 sd; variance normalised to 1).
  Five times faster than numpy's ziggurat for the per-spike waveform noise, which is the
  bulk of a session's random numbers.
- `pink_lfp`: a 1/f background (white noise through a cascade of pole-zero pairs spaced
  evenly in log frequency, whose gain falls 10 dB a decade between the first pole and the
  last zero) plus a sine oscillation, produced chunk by chunk with the filter's state
  carried over.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np
from scipy.signal import sosfilt

TABLE_BITS = 16


@lru_cache(maxsize=1)
def normal_table() -> np.ndarray:
    from scipy.special import ndtri

    quantiles = ndtri((np.arange(1 << TABLE_BITS) + 0.5) / (1 << TABLE_BITS))
    return (quantiles / np.sqrt(np.mean(quantiles**2))).astype(np.float32)


def table_normals(rng: np.random.Generator, n: int) -> np.ndarray:
    """n float32 standard normal draws (see the module docstring); drawing n in pieces gives
    the same numbers as drawing them at once when every piece but the last is a multiple
    of 4."""
    words = rng.integers(0, np.iinfo(np.uint64).max, -(-n // 4), dtype=np.uint64, endpoint=True)
    return normal_table()[words.view(np.uint16)[:n]]


def dead_time_train(
    rng: np.random.Generator,
    breaks: np.ndarray,
    rates: np.ndarray,
    dead_time: float,
) -> np.ndarray:
    """Spike times (s) on [breaks[0], breaks[-1]) of a Poisson process with dead time whose
    rate is rates[j] on [breaks[j], breaks[j+1]). Needs rates * dead_time < 1."""
    breaks = np.asarray(breaks, np.float64)
    rates = np.asarray(rates, np.float64)
    if np.any(rates * dead_time >= 1):
        raise ValueError("every rate times the dead time must be below 1")
    pieces = []
    free = breaks[0]  # when the last spike's dead time ends
    for j, rate in enumerate(rates):
        end = breaks[j + 1]
        start = max(breaks[j], free)
        if rate <= 0 or start >= end:
            continue
        hazard = rate / (1.0 - rate * dead_time)
        while start < end:
            expected = (end - start) * rate
            n = int(expected + 5.0 * np.sqrt(expected) + 10)
            gaps = rng.standard_exponential(n) / hazard
            gaps[1:] += dead_time
            times = start + np.cumsum(gaps)
            inside = times[times < end]
            pieces.append(inside)
            if inside.size < n:
                free = inside[-1] + dead_time if inside.size else free
                break
            start = inside[-1] + dead_time
            free = start
    return np.concatenate(pieces) if pieces else np.empty(0)


def spike_shape(width: float = 1.0) -> np.ndarray:
    """A mean extracellular spike of 64 samples at 32 kHz with its trough (-1) at sample 19
    and a slower positive after-potential; `width` stretches it."""
    t = np.arange(64, dtype=np.float64)
    trough = -np.exp(-0.5 * ((t - 19.0) / (2.5 * width)) ** 2)
    after = 0.3 * np.exp(-0.5 * ((t - 19.0 - 12.0 * width) / (7.0 * width)) ** 2)
    shape = trough + after
    return shape / -shape.min()


def waveform_chunks(
    rng: np.random.Generator, n_spikes: int, mean: np.ndarray, noise_sd: float, chunk: int
) -> Iterator[np.ndarray]:
    """float32 waveforms [spikes, 64]: `mean` plus independent N(0, noise_sd) per sample,
    `chunk` spikes at a time (the same numbers whatever the chunk)."""
    mean32 = np.asarray(mean, np.float32)
    for first in range(0, n_spikes, chunk):
        count = min(chunk, n_spikes - first)
        block = table_normals(rng, count * mean32.size).reshape(count, mean32.size)
        block *= np.float32(noise_sd)
        block += mean32
        yield block


def pink_filter(rate_hz: float, lowest_hz: float = 0.5) -> tuple[np.ndarray, float]:
    """Second-order sections of a 1/f shaping filter and the sd of its output for unit white
    input. Pole-zero pairs a factor 4 apart, each zero half-way (in log frequency) above its
    pole, make the power fall by 10 dB a decade from `lowest_hz` to a fifth of the rate."""
    poles_hz = lowest_hz * 4.0 ** np.arange(int(np.log(rate_hz / 5 / lowest_hz) / np.log(4)) + 1)
    poles = np.exp(-2 * np.pi * poles_hz / rate_hz)
    zeros = np.exp(-2 * np.pi * 2 * poles_hz / rate_hz)
    if poles.size % 2:  # the last section then has one pole-zero pair
        poles, zeros = np.append(poles, 0.0), np.append(zeros, 0.0)
    sos = np.zeros((poles.size // 2, 6))
    sos[:, 0] = 1.0
    sos[:, 1] = -(zeros[0::2] + zeros[1::2])
    sos[:, 2] = zeros[0::2] * zeros[1::2]
    sos[:, 3] = 1.0
    sos[:, 4] = -(poles[0::2] + poles[1::2])
    sos[:, 5] = poles[0::2] * poles[1::2]
    impulse = np.zeros(int(40 * rate_hz / lowest_hz))
    impulse[0] = 1.0
    return sos, float(np.sqrt(np.sum(sosfilt(sos, impulse) ** 2)))


def pink_lfp(
    rng: np.random.Generator,
    n_samples: int,
    rate_hz: float,
    oscillation_hz: float,
    oscillation_uv: float,
    noise_uv: float,
    chunk: int,
) -> Iterator[np.ndarray]:
    """float32 LFP in uV, `chunk` samples at a time (a multiple of 4): a sine at
    `oscillation_hz` (amplitude `oscillation_uv`, random phase) plus 1/f noise of sd
    `noise_uv`. The filter is warmed up on discarded noise first, so the signal has no onset
    transient."""
    sos, sd = pink_filter(rate_hz)
    phase = rng.uniform(0, 2 * np.pi)
    warm_up = 4 * int(10 * rate_hz)
    _, state = sosfilt(sos, table_normals(rng, warm_up), zi=np.zeros((sos.shape[0], 2)))
    for first in range(0, n_samples, chunk):
        count = min(chunk, n_samples - first)
        noise, state = sosfilt(sos, table_normals(rng, count), zi=state)
        t = (first + np.arange(count)) / rate_hz
        signal = oscillation_uv * np.sin(2 * np.pi * oscillation_hz * t + phase)
        signal += (noise_uv / sd) * noise
        yield signal.astype(np.float32)


def lognormal(rng: np.random.Generator, median: float, sigma: float, size: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(size))


def piecewise_rates(
    duration: float, base: float, on: Sequence[tuple[float, float]], gain: float
) -> tuple[np.ndarray, np.ndarray]:
    """(breaks, rates) of a rate `base` that is `base * gain` inside the `on` intervals
    (sorted, disjoint, within [0, duration))."""
    breaks = [0.0]
    rates = []
    for start, stop in on:
        if start > breaks[-1]:
            rates.append(base)
            breaks.append(start)
        rates.append(base * gain)
        breaks.append(stop)
    if breaks[-1] < duration:
        rates.append(base)
        breaks.append(duration)
    return np.array(breaks), np.array(rates)

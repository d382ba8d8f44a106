"""A mock session's specification: the `sessions` config block, typed and checked.

Fixed facts of the layout (not settings): spikes lie on a 32 kHz sample grid (a Neuralynx
rate) and each waveform is 64 samples (2 ms) long; the LFP is sampled at 1 kHz; the movie is
played at 25 frames per second (0.04 s a frame); TTL pings cycle through 1, 2, 4, ..., 128.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SPIKE_RATE_HZ = 32_000
WAVEFORM_SAMPLES = 64
LFP_RATE_HZ = 1_000
FRAME_S = 0.04
PING_CODES = (1, 2, 4, 8, 16, 32, 64, 128)
MOVIE_FILE = "movie_stimulus.avi"


@dataclass(frozen=True)
class MovieSpec:
    duration_s: float = 5000.0
    onset_s: float = 150.0
    pauses: int = 2
    max_pause_s: float = 120.0
    skips: int = 2
    max_skip_s: float = 20.0
    ping_interval_s: float = 1.0

    @property
    def n_frames(self) -> int:
        return int(round(self.duration_s / FRAME_S))


@dataclass(frozen=True)
class LabelSpec:
    names: tuple[str, ...] = ("character1", "character2", "location1")
    mean_on_s: float = 20.0
    mean_off_s: float = 40.0
    annotator: str = "ann01"
    responsive_fraction: float = 0.2
    gain: float = 3.0


@dataclass(frozen=True)
class LFPSpec:
    channels: tuple[int, ...] = (1,)
    oscillation_hz: float = 8.0
    oscillation_uv: float = 40.0
    noise_uv: float = 30.0


@dataclass(frozen=True)
class SessionSpec:
    """One session of one patient; every draw is seeded by (seed, patient, session)."""

    patient: int
    session: int
    seed: int
    duration_s: float = 5400.0
    regions: tuple[str, ...] = (
        "LA",
        "LAH",
        "LEC",
        "LMH",
        "LPHC",
        "RA",
        "RAH",
        "REC",
        "RMH",
        "RPHC",
    )
    channels_per_region: int = 8
    units_per_channel: tuple[int, int] = (0, 2)
    single_unit_fraction: float = 0.5
    rate_median_hz: float = 1.5
    rate_sigma: float = 1.0
    dead_time_ms: float = 2.0
    spike_amplitude_uv: float = 60.0
    spike_noise_uv: float = 10.0
    movie: MovieSpec = field(default_factory=MovieSpec)
    labels: LabelSpec = field(default_factory=LabelSpec)
    lfp: LFPSpec = field(default_factory=LFPSpec)

    @property
    def n_channels(self) -> int:
        return len(self.regions) * self.channels_per_region

    @property
    def channel_names(self) -> list[str]:
        """LA1 ... LA8, LAH1 ...: channel k (1-based CSC number) is the k-th name."""
        return [f"{r}{i + 1}" for r in self.regions for i in range(self.channels_per_region)]

    @property
    def dead_time_samples(self) -> int:
        """The dead time on the spike grid (rounded up, so no interval is shorter)."""
        return max(1, math.ceil(round(self.dead_time_ms * SPIKE_RATE_HZ / 1000, 9)))

    @property
    def max_rate_hz(self) -> float:
        """Rates are capped where the dead time would take half of every interval."""
        return 0.5 * SPIKE_RATE_HZ / self.dead_time_samples

    def problems(self) -> list[tuple[str, str]]:
        """(config key, problem) for settings no session can satisfy."""
        found = []
        movie = self.movie
        longest = (
            movie.onset_s
            + 1.0
            + movie.duration_s
            + movie.max_pause_s
            + movie.skips * movie.max_skip_s
            + 2 * movie.ping_interval_s
        )
        if longest > self.duration_s:
            found.append((
                "sessions.duration_s",
                f"{self.duration_s:g} s cannot hold the movie's playback: onset "
                f"{movie.onset_s:g} s + movie {movie.duration_s:g} s + pauses "
                f"{movie.max_pause_s:g} s + replays {movie.skips} x {movie.max_skip_s:g} s "
                f"need up to {longest:g} s",
            ))  # fmt: skip
        if movie.n_frames < 200 + 50 * (movie.pauses + movie.skips):
            found.append(("sessions.movie.duration_s", "too short for its pauses and skips"))
        if movie.skips and movie.max_skip_s <= 2.0:
            found.append(("sessions.movie.max_skip_s", "a skip must jump more than 2 s"))
        if movie.pauses and movie.max_pause_s < movie.pauses:
            found.append(("sessions.movie.max_pause_s", "each pause needs at least 1 s"))
        low, high = self.units_per_channel
        if low > high:
            found.append(("sessions.units_per_channel", f"[{low}, {high}] is not a range"))
        for channel in self.lfp.channels:
            if not 1 <= channel <= self.n_channels:
                found.append((
                    "sessions.lfp.channels",
                    f"channel {channel} is not one of the {self.n_channels} channels",
                ))  # fmt: skip
        if self.lfp.oscillation_hz >= LFP_RATE_HZ / 2:
            found.append(("sessions.lfp.oscillation_hz", "must be below 500 Hz (Nyquist)"))
        return found


def spec_from_config(cfg: Mapping[str, Any], patient: int, session: int, seed: int) -> SessionSpec:
    """The SessionSpec of one (patient, session) of a filled-in `sessions` config block."""
    movie, labels, lfp = cfg["movie"], cfg["labels"], cfg["lfp"]
    return SessionSpec(
        patient=int(patient),
        session=int(session),
        seed=int(seed),
        duration_s=float(cfg["duration_s"]),
        regions=tuple(cfg["regions"]),
        channels_per_region=int(cfg["channels_per_region"]),
        units_per_channel=_pair(cfg["units_per_channel"]),
        single_unit_fraction=float(cfg["single_unit_fraction"]),
        rate_median_hz=float(cfg["rate_median_hz"]),
        rate_sigma=float(cfg["rate_sigma"]),
        dead_time_ms=float(cfg["dead_time_ms"]),
        spike_amplitude_uv=float(cfg["spike_amplitude_uv"]),
        spike_noise_uv=float(cfg["spike_noise_uv"]),
        movie=MovieSpec(**{k: movie[k] for k in MovieSpec.__dataclass_fields__}),
        labels=LabelSpec(
            names=tuple(labels["names"]),
            **{k: labels[k] for k in LabelSpec.__dataclass_fields__ if k != "names"},
        ),
        lfp=LFPSpec(
            channels=tuple(int(c) for c in lfp["channels"]),
            **{k: float(lfp[k]) for k in LFPSpec.__dataclass_fields__ if k != "channels"},
        ),
    )


def _pair(values: Sequence[int]) -> tuple[int, int]:
    low, high = (int(v) for v in values)
    return low, high

"""The movie a patient watches and the logs that tie it to the neural recording.

Two clocks run during a session: the recording system's (ms since the Unix epoch; spikes,
LFP and TTL events carry it) and the stimulus computer's (us since the epoch; the DAQ log
and the player's watchlog carry it). The stimulus computer's clock is off by a few seconds
and runs a few ppm fast or slow: cpu_us = (rec_ms + offset_ms) * 1000 * (1 + drift).

While the movie plays, the stimulus computer sends a TTL ping every `ping_interval_s`
(codes 1, 2, 4, ..., 128 in turn). The DAQ log records the computer's time just before and
after it set the pins (pre < post); the recording system stamps the ping when it arrives,
just after `post`. A line fitted through (post, event time) converts every watchlog time to
recording time: that is how a pipeline finds which frame was on screen at each spike.

The player (an ffplay wrapper) logs one line per frame shown: `pts <movie s> time <cpu us>`,
25 frames a second. A pause writes `Pausing` and `Continuing after pause` between two frames;
a skip (the patient seeks) makes the movie time jump forwards or back between two frames.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from spikeforge.sessions.spec import FRAME_S, MOVIE_FILE, PING_CODES, MovieSpec

# Recording dates are drawn from this range (whole seconds, UTC).
FIRST_DATE = int(dt.datetime(2015, 1, 1, tzinfo=dt.UTC).timestamp())
LAST_DATE = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp())


@dataclass(frozen=True)
class Clock:
    """The stimulus computer's clock against the recording system's."""

    offset_ms: float
    drift: float

    def cpu_us(self, rec_ms: np.ndarray | float) -> np.ndarray:
        return np.rint(
            (np.asarray(rec_ms, np.float64) + self.offset_ms) * 1000.0 * (1 + self.drift)
        )

    def rec_ms(self, cpu_us: np.ndarray | float) -> np.ndarray:
        return np.asarray(cpu_us, np.float64) / (1000.0 * (1 + self.drift)) - self.offset_ms


def draw_clock(rng: np.random.Generator) -> Clock:
    return Clock(offset_ms=float(rng.uniform(-3000, 3000)), drift=float(rng.uniform(-30e-6, 30e-6)))


@dataclass(frozen=True)
class Playback:
    """What the player showed: frame k (0-based) of the display showed movie frame
    `frames[k]` (1-based; its pts is frames[k] * 0.04 s) at computer time `cpu_us[k]`."""

    frames: np.ndarray
    cpu_us: np.ndarray
    pauses: np.ndarray  # [n, 2] computer time of the frame before and the frame after
    pause_after: np.ndarray  # display index of the frame each pause follows
    skips: np.ndarray  # [n, 3] computer time of the first frame after, pts from, pts to

    @property
    def pts(self) -> np.ndarray:
        return np.round(self.frames * FRAME_S, 2)


def draw_playback(rng: np.random.Generator, movie: MovieSpec, start_cpu_us: float) -> Playback:
    """The frames shown from `start_cpu_us` on, with the movie's pauses and skips at random
    movie positions (at least 50 frames apart and from either end)."""
    n_frames = movie.n_frames
    n_events = movie.pauses + movie.skips
    slots = rng.choice(np.arange(50, n_frames - 50, 50), size=n_events, replace=False)
    positions = np.sort(slots + rng.integers(0, 25, n_events))
    kinds = rng.permutation(np.array(["pause"] * movie.pauses + ["skip"] * movie.skips))
    pause_lengths = _split_budget(rng, movie.pauses, movie.max_pause_s)
    frame_us = FRAME_S * 1e6
    frames, times, pauses, pause_after, skips = [], [], [], [], []
    current, clock, shown = 1, float(start_cpu_us), 0
    pause_index = 0
    for position, kind in zip(positions.tolist(), kinds.tolist(), strict=True):
        run = np.arange(current, position + 1)
        frames.append(run)
        times.append(clock + frame_us * np.arange(run.size))
        shown += run.size
        clock += frame_us * run.size
        last_time = clock - frame_us
        if kind == "pause":
            length_us = round(pause_lengths[pause_index] * 1e6)
            pause_index += 1
            clock += length_us
            pauses.append((last_time, clock))
            pause_after.append(shown - 1)
            current = position + 1
        else:
            current = _skip_target(rng, movie, position)
            skips.append((clock, position * FRAME_S, current * FRAME_S))
    run = np.arange(current, n_frames + 1)
    frames.append(run)
    times.append(clock + frame_us * np.arange(run.size))
    return Playback(
        frames=np.concatenate(frames),
        cpu_us=np.rint(np.concatenate(times)).astype(np.int64),
        pauses=np.rint(np.array(pauses, np.float64).reshape(-1, 2)).astype(np.int64),
        pause_after=np.array(pause_after, np.int64),
        skips=np.array(skips, np.float64).reshape(-1, 3),
    )


def _split_budget(rng: np.random.Generator, count: int, budget_s: float) -> np.ndarray:
    """`count` pause lengths of at least 1 s whose sum is at most `budget_s`."""
    if count == 0:
        return np.empty(0)
    share = rng.dirichlet(np.ones(count)) * (budget_s - count) * rng.uniform(0.3, 1.0)
    return np.round(1.0 + share, 3)


def _skip_target(rng: np.random.Generator, movie: MovieSpec, position: int) -> int:
    """The movie frame a seek lands on: more than 2 s and at most max_skip_s away, inside
    the movie (no frame is clamped or shown twice in a row)."""
    most = int(movie.max_skip_s / FRAME_S)
    least = int(2.0 / FRAME_S) + 1
    while True:
        jump = int(rng.integers(least, most + 1)) * (1 if rng.random() < 0.5 else -1)
        target = position + 1 + jump
        if 1 <= target <= movie.n_frames - 25:
            return target


@dataclass(frozen=True)
class Pings:
    """TTL pings: code, DAQ pre and post (computer us), event time (recording ms)."""

    codes: np.ndarray
    pre_us: np.ndarray
    post_us: np.ndarray
    event_ms: np.ndarray


def draw_pings(
    rng: np.random.Generator,
    clock: Clock,
    first_cpu_us: float,
    last_cpu_us: float,
    interval_s: float,
) -> Pings:
    """Pings from one interval before the first frame to one after the last."""
    interval_us = interval_s * 1e6
    count = int(np.ceil((last_cpu_us - first_cpu_us) / interval_us)) + 3
    pre = np.rint(first_cpu_us - interval_us + interval_us * np.arange(count)).astype(np.int64)
    # Setting the pins takes 0.2 ms and more; the recording stamps the ping 10-60 us later.
    post = pre + np.rint(200 + rng.exponential(300, count)).astype(np.int64)
    arrival_us = post + rng.uniform(10, 60, count)
    event_ms = np.round(clock.rec_ms(arrival_us), 3)
    codes = np.array(PING_CODES, np.int64)[np.arange(count) % len(PING_CODES)]
    return Pings(codes=codes, pre_us=pre, post_us=post, event_ms=event_ms)


def stamp(cpu_or_epoch_us: float) -> str:
    """'YYYY-mm-dd_HH-MM-SS' (UTC) of a time in us since the epoch, as log names carry it."""
    moment = dt.datetime.fromtimestamp(int(cpu_or_epoch_us // 1_000_000), dt.UTC)
    return moment.strftime("%Y-%m-%d_%H-%M-%S")


def daq_log_text(pings: Pings) -> str:
    header = "Initial signature: 255\t255\n255\t255\t\ndata\tStamp\tpre\tpost\n"
    rows = np.column_stack([pings.codes, np.arange(pings.codes.size), pings.pre_us, pings.post_us])
    return header + "".join(f"{a}\t{b}\t{c}\t{d}\n" for a, b, c, d in rows.tolist())


def watchlog_blocks(playback: Playback, frames_per_block: int = 16_384) -> Iterator[str]:
    """The watchlog's text, a block of frames at a time (the movie file's name first; a
    pause's two lines after the frame it follows)."""
    yield MOVIE_FILE + "\n"
    pauses = set(playback.pause_after.tolist())
    pts, cpu = playback.pts, playback.cpu_us
    for first in range(0, pts.size, frames_per_block):
        stop = min(pts.size, first + frames_per_block)
        lines = []
        for k, (p, t) in enumerate(
            zip(pts[first:stop].tolist(), cpu[first:stop].tolist(), strict=True), first
        ):
            lines.append(f"pts\t{p:.2f}\ttime\t{t}\n")
            if k in pauses:
                lines.append("Pausing\nContinuing\tafter\tpause\n")
        yield "".join(lines)


# --------------------------------------------------------------------------------- labels
@dataclass(frozen=True)
class Label:
    """An annotation of the movie: alternating off/on segments in movie seconds, as the
    annotation files hold them ([values, start_times, stop_times])."""

    name: str
    values: np.ndarray
    starts: np.ndarray
    stops: np.ndarray

    def array(self) -> np.ndarray:
        return np.array([self.values, self.starts, self.stops], np.float64)

    def on_frames(self, frames: np.ndarray) -> np.ndarray:
        """Whether the label is on for each movie frame (1-based)."""
        pts = frames * FRAME_S
        segment = np.searchsorted(self.starts, pts + 1e-9, side="right") - 1
        return self.values[np.clip(segment, 0, None)] == 1


def draw_label(
    rng: np.random.Generator, name: str, movie: MovieSpec, mean_on_s: float, mean_off_s: float
) -> Label:
    """Segments of the whole movie: frames [a, b] make a segment from a*0.04 to b*0.04 s;
    the next starts one frame later."""
    n_frames = movie.n_frames
    values, firsts, lasts = [], [], []
    first, on = 1, bool(rng.random() < mean_on_s / (mean_on_s + mean_off_s))
    while first <= n_frames:
        mean = mean_on_s if on else mean_off_s
        length = max(1, int(round(rng.exponential(mean) / FRAME_S)))
        last = min(n_frames, first + length - 1)
        values.append(int(on))
        firsts.append(first)
        lasts.append(last)
        first, on = last + 1, not on
    return Label(
        name=name,
        values=np.array(values, np.float64),
        starts=np.round(np.array(firsts) * FRAME_S, 2),
        stops=np.round(np.array(lasts) * FRAME_S, 2),
    )


def label_category(name: str) -> str:
    """'character1' -> 'character': the annotation file's last field."""
    return name.rstrip("0123456789") or name


def on_intervals(playback: Playback, label: Label, clock: Clock) -> np.ndarray:
    """[n, 2] recording times (ms) during which frames showing the label were on screen
    (a frame is on screen for 40 ms; a pause ends the interval)."""
    on = label.on_frames(playback.frames)
    starts_ms = clock.rec_ms(playback.cpu_us)
    stops_ms = clock.rec_ms(playback.cpu_us + FRAME_S * 1e6)
    intervals = []
    begin = None
    for k in np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))).tolist():
        if begin is None:
            begin = k
        else:
            intervals.append((begin, k - 1))
            begin = None
    out = []
    paused = set(playback.pause_after.tolist())
    for a, b in intervals:
        piece_start = a
        for k in range(a, b + 1):
            if k in paused or k == b:
                out.append((starts_ms[piece_start], stops_ms[k]))
                piece_start = k + 1
    return np.array(out, np.float64).reshape(-1, 2)

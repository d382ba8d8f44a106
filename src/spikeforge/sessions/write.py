"""One mock session written in the human single-unit layout:

    patient_data/<patient>/session_<n>/
        session_info.npy           {patient_id, session_nr, date, time}: recording start, UTC
        ChannelNames.txt           <region><k>.ncs, one line per channel (CSC number = line)
        spiking_data/CSC<ch>_<SU|MU><k>.npy   {spike_times: epoch ms, spike_amps: [n, 64] uV}
        lfp_data/CSC<ch>_lfp.npy   {ts, timestamps: epoch ms; samples: uV; sample_rate: Hz}
        event_file/Events.npy      [n, 2] (recording ms, TTL code)
        daq_files/timedDAQ-log-<stamp>.log       code, index, pre, post (computer us)
        watchlogs/ffplay-watchlog-<stamp>.log    pts (s) and computer time (us) per frame shown
        session_truth.json         what the draws were (rates, clock, pauses, skips, ...)
    movie_annotation/<k>_<label>_<annotator>_<YYYYMMDD>_<category>.npy   [values, starts, stops]

Every draw comes from (seed, patient, session, what, item) (the movie's labels from (seed,
movie, label)), so a rebuilt session is byte-identical and no file holds the time of the run.
Units are drawn and written in parallel threads (each from its own stream); waveforms and the
LFP are streamed to disk in chunks, so memory does not grow with the session's length beyond
one unit's spike times.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.files import atomic_directory
from spikeforge.core.seeding import rng
from spikeforge.io.pickled_npy import StreamedArray, save_dict
from spikeforge.sessions import draws, stimulus
from spikeforge.sessions.read import unit_order
from spikeforge.sessions.spec import (
    FRAME_S,
    LFP_RATE_HZ,
    SPIKE_RATE_HZ,
    WAVEFORM_SAMPLES,
    SessionSpec,
)

log = logging.getLogger(__name__)

WAVEFORM_CHUNK = 16_384  # spikes
LFP_CHUNK = 1 << 18  # samples
TRUTH_FILE = "session_truth.json"
# Multi-unit clusters mix several small neurons: smaller and noisier mean waveforms.
MULTI_UNIT_AMPLITUDE = 0.5
MULTI_UNIT_NOISE = 1.5


def session_folder(root: str | Path, patient: int, session: int) -> Path:
    return Path(root) / "patient_data" / str(patient) / f"session_{session}"


def _rng(spec: SessionSpec, *keys: str | int) -> np.random.Generator:
    return rng(spec.seed, "sessions", spec.patient, spec.session, *keys)


@dataclass(frozen=True)
class Unit:
    name: str
    channel: int  # CSC number (1-based)
    kind: str  # "SU" or "MU"
    rate_hz: float
    amplitude_uv: float
    width: float
    noise_uv: float
    label: str | None  # the movie label the unit responds to
    gain: float

    def mean_waveform(self) -> np.ndarray:
        return self.amplitude_uv * draws.spike_shape(self.width)


def draw_units(spec: SessionSpec) -> list[Unit]:
    """The session's units: how many on each channel, single or multi, their rates (lognormal,
    capped where the dead time would take half the interval), waveforms and responses."""
    r = _rng(spec, "units")
    low, high = spec.units_per_channel
    counts = r.integers(low, high + 1, spec.n_channels)
    units = []
    cap = spec.max_rate_hz
    for channel, count in enumerate(counts.tolist(), start=1):
        numbers = {"SU": 0, "MU": 0}
        for _ in range(count):
            kind = "SU" if r.random() < spec.single_unit_fraction else "MU"
            numbers[kind] += 1
            rate = float(draws.lognormal(r, spec.rate_median_hz, spec.rate_sigma, 1)[0])
            amplitude = float(draws.lognormal(r, spec.spike_amplitude_uv, 0.35, 1)[0])
            width = float(draws.lognormal(r, 1.0, 0.15, 1)[0])
            responds = spec.labels.names and r.random() < spec.labels.responsive_fraction
            label = spec.labels.names[int(r.integers(len(spec.labels.names)))] if responds else None
            gain = spec.labels.gain if label else 1.0
            units.append(Unit(
                name=f"CSC{channel}_{kind}{numbers[kind]}",
                channel=channel,
                kind=kind,
                rate_hz=round(min(rate, cap / gain), 6),
                amplitude_uv=round(amplitude * (1.0 if kind == "SU" else MULTI_UNIT_AMPLITUDE), 4),
                width=round(width, 4),
                noise_uv=spec.spike_noise_uv * (1.0 if kind == "SU" else MULTI_UNIT_NOISE),
                label=label,
                gain=gain,
            ))  # fmt: skip
    return sorted(units, key=lambda u: unit_order(u.name))


def draw_labels(spec: SessionSpec) -> list[stimulus.Label]:
    """The movie's annotations: the same for every patient and session of a seed."""
    return [
        stimulus.draw_label(
            rng(spec.seed, "sessions", "movie", "label", name),
            name,
            spec.movie,
            spec.labels.mean_on_s,
            spec.labels.mean_off_s,
        )
        for name in spec.labels.names
    ]


def annotation_date(seed: int) -> str:
    """YYYYMMDD of the annotation files, from the seed (never today's date)."""
    second = int(
        rng(seed, "sessions", "movie", "date").integers(stimulus.FIRST_DATE, stimulus.LAST_DATE)
    )
    return stimulus.stamp(second * 1e6)[:10].replace("-", "")


def annotation_names(spec: SessionSpec) -> list[str]:
    date = annotation_date(spec.seed)
    return [
        f"{k}_{name}_{spec.labels.annotator}_{date}_{stimulus.label_category(name)}.npy"
        for k, name in enumerate(spec.labels.names, start=1)
    ]


def write_annotations(spec: SessionSpec, folder: str | Path) -> list[Path]:
    """The movie's label files ([values, start_times, stop_times] in movie seconds)."""
    written = []
    with atomic_directory(folder) as staging:
        for label, name in zip(draw_labels(spec), annotation_names(spec), strict=True):
            np.save(staging / name, label.array())
            written.append(Path(folder) / name)
    return written


@dataclass(frozen=True)
class Timeline:
    start_ms: int  # recording start, a whole second (session_info holds it to the second)
    clock: stimulus.Clock
    playback: stimulus.Playback
    pings: stimulus.Pings


def draw_timeline(spec: SessionSpec) -> Timeline:
    r = _rng(spec, "session")
    start_ms = int(r.integers(stimulus.FIRST_DATE, stimulus.LAST_DATE)) * 1000
    clock = stimulus.draw_clock(r)
    onset_ms = start_ms + 1000.0 * (spec.movie.onset_s + r.uniform(0, 1))
    playback = stimulus.draw_playback(
        _rng(spec, "playback"), spec.movie, float(clock.cpu_us(onset_ms))
    )
    pings = stimulus.draw_pings(
        _rng(spec, "pings"),
        clock,
        float(playback.cpu_us[0]),
        float(playback.cpu_us[-1]),
        spec.movie.ping_interval_s,
    )
    return Timeline(start_ms, clock, playback, pings)


def unit_spike_samples(
    spec: SessionSpec, unit: Unit, index: int, responses: dict[str, np.ndarray]
) -> np.ndarray:
    """The unit's spikes as 32 kHz samples from the recording start."""
    tau = spec.dead_time_samples / SPIKE_RATE_HZ
    on = responses[unit.label] / 1000.0 if unit.label else np.empty((0, 2))
    breaks, rates = draws.piecewise_rates(spec.duration_s, unit.rate_hz, on.tolist(), unit.gain)
    seconds = draws.dead_time_train(_rng(spec, "spikes", index), breaks, rates, tau)
    # floor keeps every interval >= tau: tau is a whole number of samples.
    return np.floor(seconds * SPIKE_RATE_HZ).astype(np.int64)


def write_session(spec: SessionSpec, root: str | Path, threads: int = 1) -> Path:
    """Write the session under root/patient_data/...; returns its folder."""
    folder = session_folder(root, spec.patient, spec.session)
    timeline = draw_timeline(spec)
    units = draw_units(spec)
    labels = {label.name: label for label in draw_labels(spec)}
    responses = {
        name: stimulus.on_intervals(timeline.playback, label, timeline.clock) - timeline.start_ms
        for name, label in labels.items()
    }
    with atomic_directory(folder) as staging:
        _write_info(spec, timeline, staging)
        (staging / "spiking_data").mkdir()
        (staging / "lfp_data").mkdir()

        def write_unit(index: int) -> int:
            unit = units[index]
            samples = unit_spike_samples(spec, unit, index, responses)
            times_ms = timeline.start_ms + samples / (SPIKE_RATE_HZ / 1000)
            mean = unit.mean_waveform()
            amps = StreamedArray(
                (samples.size, WAVEFORM_SAMPLES),
                np.dtype(np.float32),
                lambda: draws.waveform_chunks(
                    _rng(spec, "waveforms", index),
                    samples.size,
                    mean,
                    unit.noise_uv,
                    WAVEFORM_CHUNK,
                ),
            )
            save_dict(
                staging / "spiking_data" / f"{unit.name}.npy",
                {"spike_times": times_ms, "spike_amps": amps},
            )
            return int(samples.size)

        def write_lfp(channel: int) -> None:
            n = int(round(spec.duration_s * LFP_RATE_HZ))
            lfp = spec.lfp
            ts = StreamedArray(
                (n,),
                np.dtype(np.float64),
                lambda: (
                    timeline.start_ms
                    + np.arange(a, min(n, a + LFP_CHUNK), dtype=np.float64) * (1000 / LFP_RATE_HZ)
                    for a in range(0, n, LFP_CHUNK)
                ),
            )
            samples = StreamedArray(
                (n,),
                np.dtype(np.float32),
                lambda: draws.pink_lfp(
                    _rng(spec, "lfp", channel),
                    n,
                    LFP_RATE_HZ,
                    lfp.oscillation_hz,
                    lfp.oscillation_uv,
                    lfp.noise_uv,
                    LFP_CHUNK,
                ),
            )
            # `timestamps` and `sample_rate` are the keys epiphyte's LFP table reads; `ts`
            # the key its generator wrote. Both names hold one array, stored once.
            content = {
                "ts": ts,
                "timestamps": ts,
                "samples": samples,
                "sample_rate": np.array([LFP_RATE_HZ]),
            }
            save_dict(staging / "lfp_data" / f"CSC{channel}_lfp.npy", content)

        with ThreadPoolExecutor(max(1, threads)) as pool:
            lfp_jobs = [pool.submit(write_lfp, c) for c in spec.lfp.channels]
            counts = list(pool.map(write_unit, range(len(units))))
            for job in lfp_jobs:
                job.result()
        _write_logs(spec, timeline, staging)
        truth = _truth(spec, timeline, units, counts, responses)
        (staging / TRUTH_FILE).write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    log.info(
        "patient %d session %d: %d units, %d spikes, %d frames shown, %d pings -> %s",
        spec.patient, spec.session, len(units), sum(counts), timeline.playback.frames.size,
        timeline.pings.codes.size, folder,
    )  # fmt: skip
    return folder


def _write_info(spec: SessionSpec, timeline: Timeline, staging: Path) -> None:
    date, time = stimulus.stamp(timeline.start_ms * 1000).split("_")
    np.save(
        staging / "session_info.npy",
        {"patient_id": spec.patient, "session_nr": spec.session, "date": date, "time": time},
    )
    (staging / "ChannelNames.txt").write_text(
        "".join(f"{name}.ncs\n" for name in spec.channel_names)
    )


def _write_logs(spec: SessionSpec, timeline: Timeline, staging: Path) -> None:
    pings, playback = timeline.pings, timeline.playback
    events = np.column_stack([pings.event_ms, pings.codes.astype(np.float64)])
    (staging / "event_file").mkdir()
    np.save(staging / "event_file" / "Events.npy", events)
    (staging / "daq_files").mkdir()
    daq = staging / "daq_files" / f"timedDAQ-log-{stimulus.stamp(pings.pre_us[0])}.log"
    daq.write_text(stimulus.daq_log_text(pings))
    (staging / "watchlogs").mkdir()
    watchlog = staging / "watchlogs" / f"ffplay-watchlog-{stimulus.stamp(playback.cpu_us[0])}.log"
    with open(watchlog, "w") as handle:
        handle.writelines(stimulus.watchlog_blocks(playback))


def _truth(
    spec: SessionSpec,
    timeline: Timeline,
    units: list[Unit],
    counts: list[int],
    responses: dict[str, np.ndarray],
) -> dict[str, Any]:
    playback, clock = timeline.playback, timeline.clock
    return {
        "spec": asdict(spec),
        "recording_start_ms": timeline.start_ms,
        "recording_stop_ms": timeline.start_ms + round(spec.duration_s * 1000),
        "clock": asdict(clock),
        "stimulus_on_us": int(playback.cpu_us[0]),
        "stimulus_off_us": int(playback.cpu_us[-1] + FRAME_S * 1e6),
        "stimulus_on_ms": float(clock.rec_ms(playback.cpu_us[0])),
        "stimulus_off_ms": float(clock.rec_ms(playback.cpu_us[-1] + FRAME_S * 1e6)),
        "pauses_us": playback.pauses.tolist(),
        "skips": [
            {"time_us": int(t), "pts_from": round(a, 2), "pts_to": round(b, 2)}
            for t, a, b in playback.skips.tolist()
        ],
        "frames_shown": int(playback.frames.size),
        "pings": int(timeline.pings.codes.size),
        "label_on_ms": {name: (on + timeline.start_ms).tolist() for name, on in responses.items()},
        "dead_time_samples": spec.dead_time_samples,
        "spike_rate_hz": SPIKE_RATE_HZ,
        "units": [
            {
                **asdict(unit),
                "n_spikes": count,
                "mean_waveform_uv": np.round(unit.mean_waveform(), 6).tolist(),
            }
            for unit, count in zip(units, counts, strict=True)
        ],
    }

"""Mock human single-unit sessions: the trains, waveforms and LFP against their specification,
the logs against the playback that made them, byte-identical rebuilds, and the reader against
numpy's own loader and against a session written the way epiphyte writes one."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.signal import welch

from spikeforge.core.errors import InputError
from spikeforge.core.seeding import rng
from spikeforge.io.pickled_npy import StreamedArray, chunked, load_dict, save_dict
from spikeforge.sessions import draws
from spikeforge.sessions.read import read_labels, read_session
from spikeforge.sessions.spec import FRAME_S, LabelSpec, LFPSpec, MovieSpec, SessionSpec
from spikeforge.sessions.write import (
    TRUTH_FILE,
    annotation_names,
    draw_labels,
    write_annotations,
    write_session,
)

SPEC = SessionSpec(
    patient=3,
    session=2,
    seed=11,
    duration_s=900.0,
    regions=("LA", "RAH"),
    units_per_channel=(1, 2),
    rate_median_hz=5.0,
    rate_sigma=0.5,
    movie=MovieSpec(duration_s=600.0, onset_s=60.0, pauses=2, max_pause_s=60.0, skips=2),
    labels=LabelSpec(responsive_fraction=0.5, gain=4.0),
    lfp=LFPSpec(channels=(1, 9), oscillation_hz=7.0),
)


def sha256_files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("sessions")
    folder = write_session(SPEC, root, threads=2)
    truth = json.loads((folder / TRUTH_FILE).read_text())
    return folder, truth


@pytest.fixture(scope="module")
def session(written):
    return read_session(written[0])


# ------------------------------------------------------------------------------ spike trains
@pytest.mark.parametrize(("rate", "dead_ms"), [(2.0, 2.0), (40.0, 3.0), (120.0, 4.0)])
def test_dead_time_train_has_its_rate_dead_time_cv_and_fano_factor(rate, dead_ms):
    duration, tau = 4000.0, dead_ms / 1000
    times = draws.dead_time_train(rng(1, "train", int(rate)), np.array([0.0, duration]),
                                  np.array([rate]), tau)  # fmt: skip
    intervals = np.diff(times)
    assert abs(times.size / duration - rate) < 0.05 * rate
    assert intervals.min() >= tau - 1e-12
    # Poisson with dead time: intervals tau + Exp(lambda), lambda = r / (1 - r tau)
    expected_cv = 1 - rate * tau
    assert intervals.std() / intervals.mean() == pytest.approx(expected_cv, rel=0.03)
    counts = np.histogram(times, bins=np.arange(0, duration + 1e-9, 20.0))[0]
    assert counts.var() / counts.mean() == pytest.approx(expected_cv**2, rel=0.2)
    # the excess intervals are exponential
    excess = intervals - tau
    assert stats.kstest(excess, "expon", args=(0, excess.mean())).pvalue > 1e-3


def test_piecewise_rate_switches_with_the_stimulus():
    on = [(100.0 * k, 100.0 * k + 30.0) for k in range(30)]
    breaks, rates = draws.piecewise_rates(3000.0, 4.0, on, 5.0)
    times = draws.dead_time_train(rng(2, "piecewise"), breaks, rates, 0.002)
    inside = sum(np.count_nonzero((times >= a) & (times < b)) for a, b in on)
    assert inside / 900.0 == pytest.approx(20.0, rel=0.05)
    assert (times.size - inside) / 2100.0 == pytest.approx(4.0, rel=0.05)
    assert np.diff(times).min() >= 0.002 - 1e-12


def test_table_normals_are_standard_normal_and_independent_of_chunking():
    values = draws.table_normals(rng(3, "n"), 400_000)
    assert values.dtype == np.float32
    assert abs(values.mean()) < 0.01 and values.std() == pytest.approx(1.0, abs=0.005)
    assert stats.kstest(values, "norm").pvalue > 1e-3
    r = rng(3, "n")
    pieces = np.concatenate([draws.table_normals(r, 100_000) for _ in range(4)])
    assert np.array_equal(pieces, values)


def test_generated_units_keep_their_rates_and_dead_time(written, session):
    _, truth = written
    tau_ms = truth["dead_time_samples"] / truth["spike_rate_hz"] * 1000
    assert len(session.unit_names) == len(truth["units"]) >= 2 * len(SPEC.channel_names) * 0.5
    responsive = 0
    for k, unit in enumerate(truth["units"]):
        assert session.unit_names[k] == unit["name"]
        times = session.spike_times(k)
        assert times.size == unit["n_spikes"]
        if times.size > 1:
            assert np.diff(times).min() >= tau_ms - 1e-6
        if unit["label"] is None and unit["rate_hz"] * SPEC.duration_s > 2000:
            assert times.size / SPEC.duration_s == pytest.approx(unit["rate_hz"], rel=0.1)
        if unit["label"] is not None and unit["rate_hz"] * SPEC.duration_s > 2000:
            on = np.array(truth["label_on_ms"][unit["label"]])
            inside = sum(np.count_nonzero((times >= a) & (times < b)) for a, b in on)
            on_s = float(np.sum(on[:, 1] - on[:, 0])) / 1000
            rate_on = inside / on_s
            rate_off = (times.size - inside) / (SPEC.duration_s - on_s)
            assert rate_on / rate_off == pytest.approx(SPEC.labels.gain, rel=0.25)
            responsive += 1
    assert responsive >= 1


def test_waveforms_have_each_units_mean_and_noise(written, session):
    _, truth = written
    mean, sd = session.waveform_stats
    for k, unit in enumerate(truth["units"]):
        n = unit["n_spikes"]
        if n < 200:
            continue
        expected = np.array(unit["mean_waveform_uv"])
        assert np.abs(mean[k] - expected).max() < 5 * unit["noise_uv"] / np.sqrt(n)
        assert sd[k] == pytest.approx(np.full(64, unit["noise_uv"]), rel=0.05 + 3 / np.sqrt(n))
        assert expected.argmin() == 19 and expected.min() == pytest.approx(-unit["amplitude_uv"])


# ------------------------------------------------------------------------------ LFP
def test_lfp_is_a_1khz_signal_with_its_oscillation_over_1_over_f_noise(written, session):
    _, truth = written
    for channel in SPEC.lfp.channels:
        ts, samples = session.lfp(channel)
        assert samples.size == SPEC.duration_s * 1000
        assert np.array_equal(
            ts, truth["recording_start_ms"] + np.arange(samples.size, dtype=float)
        )
        freqs, power = welch(samples.astype(np.float64), fs=1000, nperseg=8192)
        above = freqs > 2
        assert freqs[above][np.argmax(power[above])] == pytest.approx(7.0, abs=0.15)
        background = (freqs >= 1) & (freqs <= 100) & (np.abs(freqs - 7.0) > 2)
        slope = np.polyfit(np.log10(freqs[background]), np.log10(power[background]), 1)[0]
        assert slope == pytest.approx(-1.0, abs=0.15)
        # sine of 40 uV amplitude (variance 800) plus noise of sd 30 (variance 900)
        assert samples.var() == pytest.approx(800 + 900, rel=0.15)


def test_lfp_memory_does_not_grow_with_the_session(tmp_path):
    def peak_bytes(duration: float) -> int:
        spec = replace(SPEC, duration_s=duration, units_per_channel=(0, 0),
                       movie=replace(SPEC.movie, duration_s=duration / 2))  # fmt: skip
        tracemalloc.start()
        write_session(spec, tmp_path / str(duration))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    short, long = peak_bytes(1000.0), peak_bytes(4000.0)
    lfp_bytes_long = 4000 * 1000 * 12 * len(SPEC.lfp.channels)
    assert long < 1.5 * short + (2 << 20)
    assert long < lfp_bytes_long / 4


# ------------------------------------------------------------------------------ logs
def test_watchlog_pauses_and_skips_parse_back_to_the_playback(written, session):
    _, truth = written
    log = session.watchlog
    assert log.pauses.tolist() == truth["pauses_us"]
    assert len(truth["pauses_us"]) == SPEC.movie.pauses
    lengths = np.diff(np.array(truth["pauses_us"]), axis=1).ravel() - FRAME_S * 1e6
    assert np.all(lengths >= 1e6) and lengths.sum() <= SPEC.movie.max_pause_s * 1e6
    skips = [{"time_us": int(t), "pts_from": a, "pts_to": b} for t, a, b in log.skips.tolist()]
    assert skips == truth["skips"] and len(skips) == SPEC.movie.skips
    for skip in skips:
        assert 2.0 < abs(skip["pts_to"] - skip["pts_from"]) - FRAME_S <= SPEC.movie.max_skip_s
    # 25 frames a second between pauses; the movie is played to its last frame
    steps = np.diff(log.cpu_us)
    assert np.count_nonzero(steps != 40_000) == SPEC.movie.pauses
    assert log.pts[-1] == pytest.approx(SPEC.movie.duration_s)
    assert np.all((log.pts > 0) & (log.pts <= SPEC.movie.duration_s))
    assert np.count_nonzero(np.diff(log.pts) == 0) == 0  # no frame logged twice


def test_events_daq_and_watchlog_agree_on_stimulus_timing(written, session):
    _, truth = written
    daq, events, log = session.daq, session.events, session.watchlog
    assert np.all(daq.post_us > daq.pre_us)
    assert np.array_equal(daq.codes, events[:, 1])
    assert set(daq.codes.tolist()) == {1, 2, 4, 8, 16, 32, 64, 128}
    cycle = np.log2(daq.codes).astype(int)
    assert np.all((np.diff(cycle) - 1) % 8 == 0)  # 1, 2, 4, ..., 128, 1, ...
    # pings bracket the playback
    assert daq.pre_us[0] < log.cpu_us[0] and daq.post_us[-1] > log.cpu_us[-1]
    # one line through (post, event) maps the computer's clock onto the recording's
    m, b = session.cpu_to_recording()
    assert np.abs(m * daq.post_us + b - events[:, 0]).max() < 0.1
    clock = truth["clock"]
    assert m == pytest.approx(1 / (1000 * (1 + clock["drift"])), rel=1e-6)
    assert m * log.cpu_us[0] + b == pytest.approx(truth["stimulus_on_ms"], abs=0.1)
    assert m * (log.cpu_us[-1] + 40_000) + b == pytest.approx(truth["stimulus_off_ms"], abs=0.1)
    onset = truth["stimulus_on_ms"] - truth["recording_start_ms"]
    assert SPEC.movie.onset_s * 1000 <= onset <= (SPEC.movie.onset_s + 1) * 1000
    assert truth["stimulus_off_ms"] < truth["recording_stop_ms"]


def test_labels_are_contiguous_frame_segments_of_the_movie(tmp_path):
    folder = tmp_path / "movie_annotation"
    write_annotations(SPEC, folder)
    labels = read_labels(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(annotation_names(SPEC))
    assert list(labels) == list(SPEC.labels.names)
    for label, drawn in zip(labels.values(), draw_labels(SPEC), strict=True):
        values, starts, stops = label
        assert np.array_equal(label, drawn.array())
        assert starts[0] == pytest.approx(FRAME_S) and stops[-1] == pytest.approx(600.0)
        assert np.allclose(starts[1:] - stops[:-1], FRAME_S)
        assert set(values.tolist()) <= {0.0, 1.0} and np.all(values[1:] != values[:-1])


# ------------------------------------------------------------------------------ determinism
def test_same_seed_rebuilds_byte_identical_files_another_seed_does_not(written, tmp_path):
    folder, truth = written
    started = time.time()
    time.sleep(max(0.0, 1.05 - (started % 1)))  # the wall clock's second has changed
    again = write_session(SPEC, tmp_path / "again", threads=1)
    assert sha256_files(again) == sha256_files(folder)
    other = write_session(replace(SPEC, seed=12), tmp_path / "other")
    differing = set(sha256_files(other).items()) ^ set(sha256_files(folder).items())
    assert any(name.startswith("spiking_data") for name, _ in differing)
    assert {name for name, _ in differing} >= {"lfp_data/CSC1_lfp.npy", "event_file/Events.npy",
                                               "session_info.npy", TRUTH_FILE}  # fmt: skip
    today = time.strftime("%Y-%m-%d", time.gmtime(started))
    for path in folder.rglob("*"):
        assert today not in path.name and today.replace("-", "") not in path.name


# ------------------------------------------------------------------------------ reader
def test_reader_returns_what_numpy_loads_from_the_files(written, session):
    folder, truth = written
    info = np.load(folder / "session_info.npy", allow_pickle=True).item()
    assert session.info == info
    assert info["patient_id"] == 3 and info["session_nr"] == 2
    assert session.channel_names == SPEC.channel_names
    for k, name in enumerate(session.unit_names):
        content = np.load(folder / "spiking_data" / f"{name}.npy", allow_pickle=True).item()
        assert np.array_equal(session.spike_times(k), content["spike_times"])
        assert np.array_equal(session.waveforms(k), content["spike_amps"])
        assert content["spike_amps"].shape == (content["spike_times"].size, 64)
    lfp = np.load(folder / "lfp_data" / "CSC9_lfp.npy", allow_pickle=True).item()
    ts, samples = session.lfp(9)
    assert np.array_equal(ts, lfp["ts"]) and np.array_equal(ts, lfp["timestamps"])
    assert np.array_equal(samples, lfp["samples"]) and lfp["sample_rate"][0] == 1000
    assert np.array_equal(session.events, np.load(folder / "event_file" / "Events.npy"))


def test_session_becomes_spike_trains_on_the_32khz_grid(written, session):
    _, truth = written
    trains = session.to_spiketrains()
    assert trains.times.dtype == np.int64 and trains.sampling_frequency == 32_000
    assert trains.duration == pytest.approx(SPEC.duration_s)
    start = truth["recording_start_ms"]
    for k in range(trains.n_units):
        samples = trains.times[trains.starts()[k] : trains.index[k]]
        assert np.array_equal(start + samples / 32.0, session.spike_times(k))
    kinds = [u["kind"] for u in truth["units"]]
    assert trains.unit_properties["quality"].tolist() == [
        "good" if k == "SU" else "mua" for k in kinds
    ]
    assert trains.unit_properties["region"].tolist() == [
        u["name"] and SPEC.channel_names[u["channel"] - 1].rstrip("0123456789")
        for u in truth["units"]
    ]


def test_streamed_dict_npy_is_byte_identical_to_numpy_save(tmp_path):
    ts = np.arange(1.5e12, 1.5e12 + 200_000, dtype=np.float64)
    amps = np.random.default_rng(0).standard_normal((3000, 64)).astype(np.float32)
    small = np.arange(7)
    np.save(tmp_path / "numpy.npy", {"ts": ts, "timestamps": ts, "amps": amps, "small": small,
                                     "n": np.int64(4), "name": "x"})  # fmt: skip
    streamed_ts = StreamedArray(ts.shape, ts.dtype, lambda: chunked(ts, 30_001))
    save_dict(tmp_path / "streamed.npy", {
        "ts": streamed_ts, "timestamps": streamed_ts,
        "amps": StreamedArray(amps.shape, amps.dtype, lambda: chunked(amps, 999)),
        "small": StreamedArray(small.shape, small.dtype, lambda: chunked(small, 2)),
        "n": np.int64(4), "name": "x",
    })  # fmt: skip
    assert (tmp_path / "streamed.npy").read_bytes() == (tmp_path / "numpy.npy").read_bytes()
    loaded = load_dict(tmp_path / "streamed.npy")
    assert loaded["ts"] is loaded["timestamps"] and np.array_equal(loaded["amps"], amps)


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_loader_refuses_anything_but_arrays(tmp_path):
    np.save(tmp_path / "code.npy", {"spike_times": _RunsCode()}, allow_pickle=True)
    with pytest.raises(InputError, match=r"code\.npy.*refused to load posix\.getcwd"):
        load_dict(tmp_path / "code.npy")
    with open(tmp_path / "plain.pkl", "wb") as handle:
        pickle.dump({"a": 1}, handle)
    with pytest.raises(InputError, match=r"plain\.pkl"):
        load_dict(tmp_path / "plain.pkl")


def test_reader_refuses_pickles_linked_from_outside_the_named_folder(written, tmp_path):
    folder, _ = written
    copy = tmp_path / "session_1"
    (copy / "spiking_data").mkdir(parents=True)
    for name in ("session_info.npy", "ChannelNames.txt"):
        (copy / name).write_bytes((folder / name).read_bytes())
    unit = next((folder / "spiking_data").iterdir())
    (copy / "spiking_data" / unit.name).symlink_to(unit)
    with pytest.raises(InputError, match="lies outside"):
        read_session(copy)


# ------------------------------------------------------------------------------ epiphyte's own
def write_like_epiphyte(folder: Path) -> dict:
    """A minimal session as epiphyte's generator writes it (its documented keys and units:
    float ms spike times anywhere in the recording, float64 waveforms, `ts`/`samples` LFP,
    MUA/SUA file names of its sample data), written here with plain numpy."""
    generator = np.random.default_rng(5)
    start_ms = 1_600_000_000_000
    (folder / "spiking_data").mkdir(parents=True)
    np.save(folder / "session_info.npy", {"patient_id": 7, "session_nr": 1,
                                          "date": "2020-09-13", "time": "12-26-40"})  # fmt: skip
    names = [f"{r}{i}" for r in ("LA", "RA") for i in range(1, 9)]
    (folder / "ChannelNames.txt").write_text("".join(f"{n}.ncs\n" for n in names))
    units = {}
    for name in ("CSC3_MUA1", "CSC3_SUA1", "CSC12_SU1", "CSC3_SU2"):
        times = np.sort(
            generator.uniform(start_ms, start_ms + 600_000, generator.integers(50, 500))
        )
        amps = generator.normal(-20, 5, size=(times.size, 64))
        np.save(folder / "spiking_data" / f"{name}.npy", {"spike_times": times, "spike_amps": amps})
        units[name] = (times, amps)
    (folder / "lfp_data").mkdir()
    ts = np.arange(start_ms, start_ms + 600_000, 1)
    np.save(folder / "lfp_data" / "CSC1_lfp.npy", {"ts": ts, "samples": np.sin(ts / 100.0)})
    (folder / "event_file").mkdir()
    codes = np.tile([1, 2, 4, 8, 16, 32, 64, 128], 2)
    events = np.column_stack([np.linspace(start_ms, start_ms + 600_000, 16), codes])
    np.save(folder / "event_file" / "Events.npy", events)
    (folder / "daq_files").mkdir()
    rows = [
        (c, i, 10_000_000 * i, 10_000_000 * i + 500) for i, c in enumerate(events[:, 1].astype(int))
    ]
    (folder / "daq_files" / "timedDAQ-log-2020-09-13_12-26-40.log").write_text(
        "Initial signature: 255\t255\n255\t255\t\ndata\tStamp\tpre\tpost\n"
        + "".join("{}\t{}\t{}\t{}\n".format(*row) for row in rows)
    )
    (folder / "watchlogs").mkdir()
    lines = ["movie_stimulus.avi\n"]
    for k in range(1, 101):
        if k == 51:
            lines.append("Pausing\nContinuing\tafter\tpause\n")
        cpu = 1_000_000 + 41_000 * k + (5_000_000 if k > 50 else 0)
        lines.append(f"pts\t{round(k * 0.04, 2)}\ttime\t{cpu}\n")
    (folder / "watchlogs" / "ffplay-watchlog-2020-09-13_12-26-40.log").write_text("".join(lines))
    return units


def test_reads_a_session_written_the_way_epiphyte_writes_one(tmp_path):
    folder = tmp_path / "patient_data" / "7" / "session_1"
    units = write_like_epiphyte(folder)
    session = read_session(folder)
    # epiphyte's order: channel, then the rest of the name as text
    assert session.unit_names == ["CSC3_MUA1", "CSC3_SU2", "CSC3_SUA1", "CSC12_SU1"]
    assert session.unit_kinds == ["MU", "SU", "SU", "SU"]
    for k, name in enumerate(session.unit_names):
        assert np.array_equal(session.spike_times(k), units[name][0])
        assert np.allclose(session.waveform_stats[0][k], units[name][1].mean(axis=0))
    ts, samples = session.lfp(1)
    assert ts[0] == 1_600_000_000_000 and samples.size == 600_000
    assert session.watchlog.pauses.tolist() == [
        [1_000_000 + 41_000 * 50, 1_000_000 + 41_000 * 51 + 5_000_000]
    ]
    assert session.watchlog.skips.shape == (0, 3)
    m, b = session.cpu_to_recording()
    assert np.allclose(m * session.daq.post_us + b, session.events[:, 0], atol=1)
    trains = session.to_spiketrains()
    assert trains.times.dtype == np.float64  # not on a sample grid: seconds
    assert np.allclose(
        trains.times[: trains.index[0]] * 1000 + 1_600_000_000_000, units["CSC3_MUA1"][0]
    )
    assert session.nwb_metadata()["session_start_time"] == "2020-09-13T12:26:40+00:00"


# ------------------------------------------------------------------------------ bad input
def test_bad_input_names_the_file_and_the_problem(tmp_path):
    with pytest.raises(InputError, match=r"nowhere: no such session folder"):
        read_session(tmp_path / "nowhere")
    folder = tmp_path / "s"
    write_like_epiphyte(folder)
    spike = folder / "spiking_data" / "CSC12_SU1.npy"

    def broken(problem: str, write) -> None:
        original = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        write()
        with pytest.raises(InputError, match=problem):
            read_session(folder)
        for path in folder.rglob("*"):
            if path.is_file() and path not in original:
                path.unlink()
        for path, data in original.items():
            path.write_bytes(data)

    broken(
        r"CSC12_SU1\.npy: has no 'spike_times'", lambda: np.save(spike, {"times": np.arange(3.0)})
    )
    broken(
        r"CSC12_SU1\.npy: spike_amps must be \[spikes, 64\], not \[3, 32\]",
        lambda: np.save(spike, {"spike_times": np.arange(3.0), "spike_amps": np.zeros((3, 32))}),
    )
    watchlog = next((folder / "watchlogs").iterdir())
    broken(
        rf"{watchlog.name}: line 4: 'pts 0\.12 tme' does not parse",
        lambda: watchlog.write_text(
            watchlog.read_text().replace("pts\t0.12\ttime\t1123000", "pts\t0.12\ttme")
        ),
    )
    daq = next((folder / "daq_files").iterdir())
    broken(
        rf"{daq.name}: line 5: '2 1 x 7' does not parse",
        lambda: daq.write_text(daq.read_text().replace("2\t1\t10000000\t10000500", "2\t1\tx\t7")),
    )
    broken(
        r"CSC99_SU1\.npy: channel 99 is not in ChannelNames\.txt",
        lambda: np.save(folder / "spiking_data" / "CSC99_SU1.npy", {"spike_times": np.arange(2.0)}),
    )
    spike.write_bytes(spike.read_bytes()[:300])
    with pytest.raises(
        InputError, match=r"CSC12_SU1\.npy: cannot be read as an \.npy dict: .*truncated"
    ):
        read_session(folder)


def test_session_units_keep_their_waveforms_and_channels_through_phy_and_nwb(session, tmp_path):
    from spikeforge.spiketrains.formats import read_spiketrains, write_spiketrains

    trains = session.to_spiketrains()
    options = {"time_unit": "s", "raster_bin_ms": 1.0, "metadata": session.nwb_metadata()}
    for fmt, name in (("phy", "phy"), ("nwb", "units.nwb")):
        write_spiketrains(trains, tmp_path / name, fmt, options)
        loaded = read_spiketrains(tmp_path / name, fmt)
        assert loaded.unit_ids.tolist() == session.unit_names, fmt
        assert np.array_equal(loaded.times_in("samples"), trains.times), fmt
        assert np.array_equal(loaded.unit_properties["peak_channel"], session.unit_channels - 1), (
            fmt
        )
        assert np.allclose(
            loaded.unit_properties["waveform_mean"], session.waveform_stats[0], atol=1e-4
        ), fmt
    templates = np.load(tmp_path / "phy" / "templates.npy")
    assert templates.shape == (trains.n_units, 64, len(SPEC.channel_names))
    # each template lies on its unit's own channel only
    assert np.array_equal(np.abs(templates).max(axis=1).argmax(axis=1), session.unit_channels - 1)


def test_output_folders_take_the_umasks_permissions(tmp_path):
    """Staged folders are made by mkdtemp (0700); the finished ones must be what mkdir gives."""
    import os
    import stat

    from spikeforge.core.files import atomic_directory

    old = os.umask(0o027)
    try:
        with atomic_directory(tmp_path / "out") as staging:
            (staging / "x.txt").write_text("x")
        (tmp_path / "plain").mkdir()
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "out").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o750

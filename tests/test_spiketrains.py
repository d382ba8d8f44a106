"""Spike-train exports: every format round-trips, and the real clients (pynwb, nwbinspector,
SpikeInterface, phylib, spikelab, scipy) read what we write."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from spikeforge.core.errors import InputError
from spikeforge.spiketrains.formats import (
    FORMATS,
    detect_format,
    output_name,
    read_spiketrains,
    write_spiketrains,
)
from spikeforge.spiketrains.model import SpikeTrainError, SpikeTrains
from spikeforge.spiketrains.sources import from_sorting, to_sorting

FS = 30_000.0
SAMPLE_MS = 1000.0 / FS
# Raster bins of one sample hold every spike on a bin edge, so the raster round-trips too.
OPTIONS = {"time_unit": "s", "raster_bin_ms": SAMPLE_MS}


def _trains(
    counts: list[int],
    seed: int = 0,
    start_time: float = 0.0,
    seconds: float = 10.0,
    grid: int = 1,
    **kwargs,
) -> SpikeTrains:
    """Sorted spikes on a grid of `grid` samples (a raster of `grid`-sample bins is exact)."""
    rng = np.random.default_rng(seed)
    n_samples = int(seconds * FS)
    trains = [grid * np.sort(rng.choice(n_samples // grid, size=c, replace=False)) for c in counts]
    return SpikeTrains.from_trains(
        trains,
        unit_ids=np.arange(3, 3 + len(counts)),
        sampling_frequency=FS,
        start_time=start_time,
        duration=n_samples / FS,
        **kwargs,
    )


CASES = {
    "empty_start_middle_end": lambda: _trains([0, 12, 0, 7, 30, 0]),
    "nonzero_start": lambda: _trains([5, 9, 2], start_time=12.25),
    "one_unit": lambda: _trains([40]),
}


def _write_read(trains: SpikeTrains, fmt: str, tmp_path: Path, **options) -> SpikeTrains:
    path = tmp_path / output_name(fmt)
    write_spiketrains(trains, path, fmt, {**OPTIONS, **options})
    assert detect_format(path) == fmt
    return read_spiketrains(path, fmt)


def _assert_same(loaded: SpikeTrains, trains: SpikeTrains) -> None:
    assert loaded.unit_ids.tolist() == trains.unit_ids.tolist()
    assert loaded.counts().tolist() == trains.counts().tolist()
    assert np.array_equal(loaded.times_in("samples"), trains.times_in("samples"))
    assert np.max(np.abs(loaded.times_in("s") - trains.times_in("s")), initial=0) <= 1e-9


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip(fmt: str, case: str, tmp_path: Path) -> None:
    trains = CASES[case]()
    loaded = _write_read(trains, fmt, tmp_path)
    _assert_same(loaded, trains)
    assert loaded.start_time == pytest.approx(trains.start_time, abs=1e-12)
    assert loaded.sampling_frequency == trains.sampling_frequency
    if fmt != "phy" or trains.start_time == 0:
        assert loaded.duration == pytest.approx(trains.duration)


@pytest.mark.parametrize("time_unit", ["s", "ms", "samples"])
@pytest.mark.parametrize("style", ["ragged", "group", "paired", "raster"])
def test_hdf5_time_units(style: str, time_unit: str, tmp_path: Path) -> None:
    trains = _trains([0, 8, 3, 0], start_time=3.5)
    loaded = _write_read(trains, f"hdf5_{style}", tmp_path, time_unit=time_unit)
    _assert_same(loaded, trains)
    with h5py.File(tmp_path / f"{style}.h5") as handle:
        assert handle.attrs["time_unit"] == time_unit
        assert handle.attrs["n_units"] == 4
        # spikelab's attributes: start and length in milliseconds
        assert handle.attrs["start_time"] == pytest.approx(3500.0)
        assert handle.attrs["length_ms"] == pytest.approx(10_000.0)


def test_hdf5_ragged_layout_by_hand(tmp_path: Path) -> None:
    trains = SpikeTrains.from_trains(
        [[], [30, 60], [], [90]], unit_ids=[7, 8, 9, 10], sampling_frequency=FS
    )
    write_spiketrains(trains, tmp_path / "r.h5", "hdf5_ragged", {"time_unit": "ms"})
    with h5py.File(tmp_path / "r.h5") as handle:
        assert handle["spike_times"][()].tolist() == pytest.approx([1.0, 2.0, 3.0])
        assert handle["spike_times_index"][()].tolist() == [0, 2, 2, 3]
        assert handle["unit_ids"][()].tolist() == [7, 8, 9, 10]


def test_raster_counts_match_histogram(tmp_path: Path) -> None:
    """1 ms bins against numpy's histogram with explicit left-closed edges; spikes placed
    exactly on bin edges land in the bin they open."""
    rng = np.random.default_rng(5)
    edge_spikes = np.array([0, 30, 60, 3000, 29_970])  # multiples of 30 samples = 1 ms
    trains = [np.sort(np.concatenate([edge_spikes, rng.integers(0, 30_000, 200)])), [], [29_999]]
    st = SpikeTrains.from_trains(trains, sampling_frequency=FS, start_time=2.0, duration=1.0)
    path = tmp_path / "raster.h5"
    write_spiketrains(st, path, "hdf5_raster", {"time_unit": "ms", "raster_bin_ms": 1.0})
    edges = np.arange(1001) * 30
    with h5py.File(path) as handle:
        raster = handle["raster"][()]
        assert raster.shape == (3, 1000)
        assert handle["raster"].attrs["bin_size"] == 1.0
        assert handle["raster"].attrs["time_origin"] == 2000.0
        assert handle["raster"].attrs["bin_edges"] == "left-closed"
    for unit, train in enumerate(trains):
        expected, _ = np.histogram(np.asarray(train), bins=edges)
        assert raster[unit].tolist() == expected.tolist()
    loaded = read_spiketrains(path)
    # Spikes on edges come back exactly; others at the start of their bin.
    assert set(edge_spikes.tolist()) <= set(loaded.train(0, "samples").tolist())
    assert np.all(loaded.train(0, "samples") % 30 == 0)


def test_ten_thousand_units(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    counts = rng.poisson(3, 10_000)
    counts[[0, 4_999, 9_999]] = 0
    # One second on a 1 ms grid keeps the raster at 10,000 x 1,000 bins.
    trains = _trains(counts.tolist(), seed=3, seconds=1.0, grid=30)
    for fmt in sorted(FORMATS):
        loaded = _write_read(trains, fmt, tmp_path / fmt, raster_bin_ms=1.0)
        _assert_same(loaded, trains)


def test_seconds_model_round_trips_within_a_nanosecond(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    trains = SpikeTrains.from_trains(
        [np.sort(rng.uniform(100.0, 4000.0, 50)), []], start_time=100.0, duration=3900.0
    )
    for fmt in ("hdf5_ragged", "hdf5_group", "hdf5_paired", "mat", "nwb"):
        loaded = _write_read(trains, fmt, tmp_path / fmt, time_unit="ms")
        assert loaded.unit_ids.tolist() == [0, 1]
        assert np.max(np.abs(loaded.times_in("s") - trains.times_in("s"))) <= 1e-9


# --- real clients ------------------------------------------------------------------------


def _cell_like(n_units: int = 4, n_channels: int = 8) -> SpikeTrains:
    rng = np.random.default_rng(11)
    counts = [25, 0, 40, 13][:n_units]
    positions = np.column_stack(
        [np.tile([0.0, 32.0], n_channels // 2), np.repeat(np.arange(n_channels // 2) * 20.0, 2)]
    )
    mean = rng.normal(0, 5, (n_units, 90, n_channels)).astype(np.float32)
    return _trains(
        counts,
        seed=4,
        unit_properties={
            "peak_channel": np.arange(n_units) % n_channels,
            "waveform_mean": mean,
            "waveform_sd": np.abs(mean) / 2,
            "quality": np.array(["good", "mua", "good", "noise"][:n_units]),
        },
        recording_properties={
            "channel_positions": positions,
            "channel_ids": np.arange(n_channels),
            "waveform_unit": "microvolts",
        },
    )


def test_nwb_read_by_pynwb_and_accepted_by_nwbinspector(tmp_path: Path) -> None:
    from nwbinspector import Importance, inspect_nwbfile
    from pynwb import NWBHDF5IO

    trains = _cell_like()
    path = tmp_path / "units.nwb"
    write_spiketrains(trains, path, "nwb")
    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        assert nwbfile.session_start_time.tzinfo is not None
        assert nwbfile.subject.species == "Mus musculus"
        units = nwbfile.units
        assert units.resolution == pytest.approx(1 / FS)
        assert units.waveform_unit == "microvolts"
        for position in range(trains.n_units):
            assert units["unit_name"][position] == str(trains.unit_ids[position])
            assert np.allclose(units["spike_times"][position], trains.train(position), atol=1e-12)
            # electrodes are rows of the electrodes table: the channels the waveform covers
            rows = units["electrodes"][position].index.tolist()
            assert rows == list(range(8))
            assert (
                units["peak_electrode"][position]
                == trains.unit_properties["peak_channel"][position]
            )
        assert np.allclose(units["waveform_mean"][:], trains.unit_properties["waveform_mean"])
        electrodes = nwbfile.electrodes.to_dataframe()
        assert (
            electrodes["rel_x"].tolist()
            == trains.recording_properties["channel_positions"][:, 0].tolist()
        )
    serious = {Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION, Importance.ERROR}
    messages = [m for m in inspect_nwbfile(nwbfile_path=str(path)) if m.importance in serious]
    assert not messages, [m.message for m in messages]


def test_nwb_read_by_spikeinterface(tmp_path: Path) -> None:
    import spikeinterface.extractors as se

    trains = _cell_like()
    trains = trains.with_times(trains.times, start_time=1.5)
    path = tmp_path / "units.nwb"
    write_spiketrains(trains, path, "nwb")
    sorting = se.read_nwb_sorting(str(path))
    assert sorting.get_sampling_frequency() == FS
    assert [str(u) for u in sorting.unit_ids] == [str(u) for u in trains.unit_ids]
    for position, unit in enumerate(sorting.unit_ids):
        # SpikeInterface counts frames from the session start, not from our start_time
        frames = sorting.get_unit_spike_train(unit)
        assert np.array_equal(frames, trains.train(position, "samples") + int(1.5 * FS))
    # the same trains through our SpikeInterface adapter: equal in seconds
    back = from_sorting(sorting)
    assert np.allclose(back.times_in("s"), trains.times_in("s"), atol=1e-9)
    assert back.counts().tolist() == trains.counts().tolist()


def test_phy_read_by_spikeinterface_and_phylib(tmp_path: Path) -> None:
    import spikeinterface.extractors as se
    from phylib.io.model import load_model

    trains = _cell_like()
    folder = tmp_path / "phy"
    write_spiketrains(trains, folder, "phy")
    times = np.load(folder / "spike_times.npy")
    assert times.dtype == np.int64 and np.all(np.diff(times) >= 0)
    assert np.load(folder / "channel_map.npy").tolist() == list(range(8))
    assert np.load(folder / "channel_positions.npy").shape == (8, 2)
    for reader in (se.read_phy, se.read_kilosort):
        sorting = reader(folder)
        for unit in sorting.unit_ids:
            position = trains.unit_ids.tolist().index(int(unit))
            assert np.array_equal(
                sorting.get_unit_spike_train(unit), trains.train(position, "samples")
            )
    # read_phy keeps units without spikes (they are in cluster_group.tsv)
    assert sorted(int(u) for u in se.read_phy(folder).unit_ids) == trains.unit_ids.tolist()
    model = load_model(folder / "params.py")
    try:
        assert model.n_spikes == trains.n_spikes
        assert model.sample_rate == FS
        assert np.allclose(model.spike_times, np.sort(trains.times_in("samples")) / FS)
        nonempty = [u for u, c in zip(trains.unit_ids.tolist(), trains.counts(), strict=True) if c]
        assert model.cluster_ids.tolist() == nonempty
        assert model.get_template(0) is not None
    finally:
        model.close()
    loaded = read_spiketrains(folder)
    assert loaded.unit_properties["quality"].tolist() == ["good", "mua", "good", "noise"]
    assert np.allclose(
        loaded.unit_properties["waveform_mean"], trains.unit_properties["waveform_mean"]
    )


def test_phy_single_unit_opens_in_phylib(tmp_path: Path) -> None:
    from phylib.io.model import load_model

    trains = _trains([30], unit_properties={"peak_channel": np.array([2])})
    write_spiketrains(trains, tmp_path / "phy", "phy")
    model = load_model(tmp_path / "phy" / "params.py")
    try:
        assert model.n_spikes == 30
        assert model.cluster_ids.tolist() == [3]
        assert model.get_template(0).channel_ids[0] == 2
    finally:
        model.close()
    _assert_same(read_spiketrains(tmp_path / "phy"), trains)


def test_spikeinterface_sorting_round_trip(tmp_path: Path) -> None:
    trains = _trains([0, 12, 7])
    sorting = to_sorting(trains)
    back = from_sorting(sorting)
    _assert_same(back, trains)


@pytest.mark.slow  # export_to_phy compiles its similarity kernels: about 20 s
def test_phy_folder_from_spikeinterface_export(tmp_path: Path) -> None:
    """A Phy folder written by SpikeInterface's export_to_phy loads with our reader."""
    import spikeinterface.core as si
    from spikeinterface.exporters import export_to_phy

    recording, sorting = si.generate_ground_truth_recording(
        durations=[1.0], num_units=4, num_channels=8, seed=1
    )
    analyzer = si.create_sorting_analyzer(sorting, recording, sparse=False)
    analyzer.compute(["random_spikes", "templates", "noise_levels"])
    analyzer.compute("spike_amplitudes")
    export_to_phy(
        analyzer, tmp_path / "si_phy", compute_pc_features=False, copy_binary=False, verbose=False
    )
    loaded = read_spiketrains(tmp_path / "si_phy")
    expected = from_sorting(sorting)
    assert sorted(loaded.unit_ids.tolist()) == list(range(4))
    for position in range(4):
        assert np.array_equal(
            loaded.train(position, "samples"), expected.train(position, "samples")
        )


def test_mat_read_by_scipy_by_hand(tmp_path: Path) -> None:
    import scipy.io

    trains = _cell_like()
    write_spiketrains(trains, tmp_path / "u.mat", "mat")
    data = scipy.io.loadmat(tmp_path / "u.mat")
    units = data["units"]
    assert units.shape == (1, 4)
    for position in range(4):
        assert int(units[0, position]["id"].ravel()[0]) == trains.unit_ids[position]
        assert np.allclose(units[0, position]["spike_times"].ravel(), trains.train(position))
    assert data["sampling_frequency"].item() == FS


@pytest.mark.skipif(shutil.which("octave") is None, reason="Octave is not installed")
def test_mat_read_by_octave(tmp_path: Path) -> None:
    trains = _cell_like()
    write_spiketrains(trains, tmp_path / "u.mat", "mat")
    script = (
        f"load('{tmp_path / 'u.mat'}'); printf('%d %.1f\\n', numel(units), sampling_frequency);"
        "for k = 1:numel(units) printf('%d %d %.12e\\n', units(k).id,"
        " numel(units(k).spike_times), sum(units(k).spike_times)); end"
    )
    result = subprocess.run(
        ["octave", "--no-gui", "--quiet", "--eval", script],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["4", "30000.0"]
    for position, line in enumerate(lines[1:]):
        unit_id, count, total = line.split()
        assert int(unit_id) == trains.unit_ids[position]
        assert int(count) == trains.counts()[position]
        assert float(total) == pytest.approx(trains.train(position).sum(), rel=1e-12, abs=1e-12)
    assert len(lines) == 5


def _spikelab_sd(trains: SpikeTrains):
    from spikelab.spikedata import SpikeData

    return SpikeData(
        [trains.train(i, "ms") for i in range(trains.n_units)],
        N=trains.n_units,
        length=trains.duration * 1e3,
        start_time=trains.start_time * 1e3,
    )


@pytest.mark.parametrize("style", ["ragged", "group", "paired", "raster"])
def test_spikelab_reads_ours(style: str, tmp_path: Path) -> None:
    from spikelab.data_loaders.data_loaders import load_spikedata_from_hdf5

    trains = _trains([6, 0, 9, 4, 0], start_time=0.5)
    path = tmp_path / "ours.h5"
    write_spiketrains(trains, path, f"hdf5_{style}", {"time_unit": "ms", "raster_bin_ms": 1.0})
    kwargs = {
        "ragged": {
            "spike_times_dataset": "spike_times",
            "spike_times_index_dataset": "spike_times_index",
            "spike_times_unit": "ms",
        },
        "group": {"group_per_unit": "units", "group_time_unit": "ms"},
        "paired": {"idces_dataset": "idces", "times_dataset": "times", "times_unit": "ms"},
        "raster": {"raster_dataset": "raster", "raster_bin_size_ms": 1.0},
    }[style]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sd = load_spikedata_from_hdf5(str(path), **kwargs)
    if style == "paired":
        # spikelab sizes a paired file by its largest index: the trailing empty unit is ours alone
        assert sd.N == 4
    else:
        assert sd.N == trains.n_units
    for position in range(sd.N):
        expected = trains.train(position, "ms")
        got = np.asarray(sd.train[position])
        assert got.size == expected.size
        if style == "raster":
            # spikelab spreads a bin's spikes inside the bin: within one bin of ours
            assert np.all(np.abs(got - expected) <= 1.0)
        else:
            assert np.allclose(got, expected, atol=1e-9)


@pytest.mark.parametrize("style", ["ragged", "group", "paired", "raster"])
def test_ours_reads_spikelab(style: str, tmp_path: Path) -> None:
    """spikelab's exporters with their defaults; ours loads them without options."""
    from spikelab.data_loaders.data_exporters import export_spikedata_to_hdf5

    # Spikes on whole milliseconds so the raster (right-closed 1 ms bins) is exact too.
    trains = SpikeTrains.from_trains(
        [[0.004, 0.010, 0.011], [], [0.002, 0.5]], start_time=0.0, duration=1.0
    )
    path = tmp_path / "spikelab.h5"
    options = {"raster_bin_size_ms": 1.0} if style == "raster" else {}
    export_spikedata_to_hdf5(_spikelab_sd(trains), str(path), style=style, **options)
    loaded = read_spiketrains(path)
    assert loaded.n_units == (3 if style != "paired" else 3)
    for position in range(3):
        assert np.allclose(loaded.train(position), trains.train(position), atol=1e-9)


# --- bad input ---------------------------------------------------------------------------


def test_loader_given_another_format(tmp_path: Path) -> None:
    trains = _trains([3, 4])
    write_spiketrains(trains, tmp_path / "a.nwb", "nwb")
    write_spiketrains(trains, tmp_path / "b.h5", "hdf5_group", {"time_unit": "s"})
    with pytest.raises(InputError, match=r"a\.nwb: holds no spike trains in a known HDF5 style"):
        read_spiketrains(tmp_path / "a.nwb", "hdf5_ragged")
    with pytest.raises(InputError, match=r"b\.h5: is a group-style spike-train file, not ragged"):
        read_spiketrains(tmp_path / "b.h5", "hdf5_ragged")
    with pytest.raises(InputError, match=r"b\.h5: not an NWB file"):
        read_spiketrains(tmp_path / "b.h5", "nwb")
    with pytest.raises(InputError, match=r"b\.h5: not a Phy/KiloSort folder|b\.h5: no such folder"):
        read_spiketrains(tmp_path / "b.h5", "phy")
    with pytest.raises(InputError, match=r"b\.h5: (not a readable MATLAB|has no 'units')"):
        read_spiketrains(tmp_path / "b.h5", "mat")


@pytest.mark.parametrize("fmt", ["hdf5_ragged", "hdf5_raster", "nwb", "mat"])
def test_truncated_file(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / output_name(fmt)
    write_spiketrains(_trains([30, 40]), path, fmt, OPTIONS)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=rf"{path.name}: "):
        read_spiketrains(path, fmt)


def test_truncated_phy_array(tmp_path: Path) -> None:
    folder = tmp_path / "phy"
    write_spiketrains(_trains([30, 40]), folder, "phy")
    data = (folder / "spike_times.npy").read_bytes()
    (folder / "spike_times.npy").write_bytes(data[:200])
    with pytest.raises(InputError, match=r"spike_times\.npy: not a readable \.npy file"):
        read_spiketrains(folder)


def test_out_of_order_and_bad_rate(tmp_path: Path) -> None:
    with pytest.raises(SpikeTrainError, match="spike times of unit 8 are out of order"):
        SpikeTrains.from_trains([[1, 2], [5, 3]], unit_ids=[7, 8], sampling_frequency=FS)
    with pytest.raises(SpikeTrainError, match="sampling rate must be positive"):
        SpikeTrains.from_trains([[1, 2]], sampling_frequency=-FS)
    # a file whose times are out of order
    path = tmp_path / "bad.h5"
    write_spiketrains(_trains([5]), path, "hdf5_ragged", {"time_unit": "s"})
    with h5py.File(path, "r+") as handle:
        handle["spike_times"][...] = handle["spike_times"][()][::-1]
    with pytest.raises(InputError, match=r"bad\.h5: spike times of unit 3 are out of order"):
        read_spiketrains(path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["sampling_frequency"] = -1.0
    with pytest.raises(InputError, match=r"bad\.h5: sampling rate must be positive"):
        read_spiketrains(path)
    folder = tmp_path / "phy"
    write_spiketrains(_trains([5, 6]), folder, "phy")
    np.save(folder / "spike_times.npy", np.load(folder / "spike_times.npy")[::-1])
    with pytest.raises(InputError, match=r"phy: spike_times\.npy is not in time order"):
        read_spiketrains(folder)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_failed_write_leaves_nothing(fmt: str, tmp_path: Path, monkeypatch) -> None:
    import spikeforge.spiketrains.hdf5 as hdf5_module
    import spikeforge.spiketrains.mat as mat_module
    import spikeforge.spiketrains.nwb as nwb_module
    import spikeforge.spiketrains.phy as phy_module

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(hdf5_module, "_write_header", boom)
    monkeypatch.setattr(nwb_module, "_identifier", lambda *a: "x")
    monkeypatch.setattr(phy_module, "_write_similarity", boom)
    monkeypatch.setattr(mat_module.scipy.io, "savemat", boom)
    if fmt == "nwb":
        import pynwb

        monkeypatch.setattr(pynwb.NWBHDF5IO, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        write_spiketrains(_trains([3, 4]), tmp_path / output_name(fmt), fmt, OPTIONS)
    assert list(tmp_path.iterdir()) == []


def test_pickle_is_not_a_format() -> None:
    assert not any("pickle" in name or "pkl" in spec.filename for name, spec in FORMATS.items())

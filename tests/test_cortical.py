"""Cortical spike tensors: on mock datastores whose every spike is known, the CSR files against
a dense reference built the way the modelling group's script does it, ids, trials, the
downstream trim and merge, the restricted unpickler against neo's own objects, the open HDF5
input, memory against the number of images, and bad input."""

from __future__ import annotations

import pickle
import shutil
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix, load_npz

from spikeforge.core.errors import InputError
from spikeforge.cortical import mozaik
from spikeforge.cortical.export import export_part, output_paths
from spikeforge.cortical.mock import MockSpec, truth, write_part
from spikeforge.cortical.parts import DatastorePart, write_hdf5_part

SPEC = MockSpec(neurons={"X_ON": 12, "V1_Exc_L2/3": 40}, images=5, trials=3, seed=4)
PART = 50_000


def settings(sheet: str, trials: int | None, **extra) -> dict:
    return {"sheet": sheet, "part": str(PART), "trials": trials, "bin_ms": 1, "images": None,
            "compressed": True, "windows": None, "source": "datastore", **extra}  # fmt: skip


@pytest.fixture(scope="module")
def datastore(tmp_path_factory) -> Path:
    return write_part(SPEC, tmp_path_factory.mktemp("mozaik"), PART)


def dense_reference(
    spec: MockSpec, sheet: str, trial: int, images: int | None = None
) -> np.ndarray:
    """The modelling group's algorithm: a dense uint8 (images, neurons, blank + image) array
    filled neuron by neuron (with np.add.at, so that two spikes in one bin count twice), then
    transposed to (neurons, images x time)."""
    known = truth(spec, PART, sheet, trial)
    n = known["neuron_ids"].size
    count = images or spec.images
    blank, image = int(spec.blank_ms) + 1, int(spec.image_ms) + 1
    spikes = np.zeros((count, n, blank + image), np.uint8)
    for k in range(count):
        for part, offset in (("blank", 0), ("image", blank)):
            counts, flat = known[part][k]
            ends = np.cumsum(counts)
            for j in range(n):
                times = flat[ends[j] - counts[j] : ends[j]]
                np.add.at(spikes, (k, j, times.astype(int) + offset), 1)
    return spikes.transpose(1, 0, 2).reshape(n, -1)


@pytest.mark.parametrize("sheet", ["X_ON", "V1_Exc_L2/3"])
def test_every_spike_lands_in_its_neuron_image_and_bin(datastore, tmp_path, sheet):
    paths = export_part(settings(sheet, trials=3), datastore, tmp_path)
    for trial in range(3):
        matrix = load_npz(paths[f"spikes_trial_{trial}"])
        assert matrix.format == "csr" and matrix.dtype == np.uint8
        expected = dense_reference(SPEC, sheet, trial)
        assert matrix.shape == expected.shape == (SPEC.neurons[sheet], 5 * 712)
        assert np.array_equal(matrix.toarray(), expected)
        assert matrix.sum() == sum(c.sum() for k in ("blank", "image")
                                   for c, _ in truth(SPEC, PART, sheet, trial)[k])  # fmt: skip
    known = truth(SPEC, PART, sheet, 0)
    assert np.load(paths["neuron_ids"]).dtype == np.int64
    assert np.array_equal(np.load(paths["neuron_ids"]), known["neuron_ids"])
    assert np.load(paths["image_ids"]).tolist() == known["image_ids"]


def test_csr_files_equal_scipys_own_on_the_dense_reference(datastore, tmp_path):
    from scipy.sparse import save_npz

    paths = export_part(settings("X_ON", trials=None), datastore, tmp_path)
    reference = tmp_path / "scipy.npz"
    save_npz(reference, csr_matrix(dense_reference(SPEC, "X_ON", 0)))
    ours, theirs = np.load(paths["spikes"]), np.load(reference)
    assert sorted(ours.files) == sorted(theirs.files)
    for name in theirs.files:
        assert np.array_equal(ours[name], theirs[name]), name


def test_original_fancy_index_increment_dropped_coincident_spikes():
    """The script's spikes[i, j, t.astype(int)] += 1 counts two spikes in one ms once: the
    mock has such pairs, and ours counts both."""
    known = truth(SPEC, PART, "X_ON", 0)
    counts, flat = known["image"][0]
    ends = np.cumsum(counts)
    lost = 0
    for j in range(counts.size):
        bins = flat[ends[j] - counts[j] : ends[j]].astype(int)
        lost += bins.size - np.unique(bins).size
    assert lost > 0


def test_trials_are_numbered_as_asked_and_no_more(datastore, tmp_path):
    paths = export_part(settings("X_ON", trials=2), datastore, tmp_path)
    spikes = sorted(p.name for p in (tmp_path / "spikes" / "X_ON").iterdir())
    assert spikes == ["spikes_trial_0_X_ON_50000.npz", "spikes_trial_1_X_ON_50000.npz"]
    assert set(paths) == set(output_paths(tmp_path, "X_ON", "50000", 2, False))
    assert np.array_equal(
        load_npz(paths["spikes_trial_1"]).toarray(), dense_reference(SPEC, "X_ON", 1)
    )
    with pytest.raises(InputError, match=r"has 3 trial\(s\) of sheet X_ON; 4 asked for"):
        export_part(settings("X_ON", trials=4), datastore, tmp_path / "more")


def test_a_subset_of_images_is_sized_for_the_subset(datastore, tmp_path):
    paths = export_part(settings("X_ON", trials=None, images=2), datastore, tmp_path)
    matrix = load_npz(paths["spikes"])
    assert matrix.shape == (12, 2 * 712)
    assert np.array_equal(matrix.toarray(), dense_reference(SPEC, "X_ON", 0, images=2))
    assert np.load(paths["image_ids"]).tolist() == ["50000", "50001"]


def downstream_trim_and_merge(matrix: np.ndarray, interval=712, offset=76, bin_ms=20) -> list:
    """The group's time_trimmer (windows from `offset`, the first one with the part before it)
    followed by its time_interval_merger (sum bins, drop the remainder), per window."""
    time = matrix.T
    windows = []
    for i in range(offset, time.shape[0], interval):
        piece = time[: i + interval] if i == offset else time[i : i + interval]
        windows.append(piece.T)
    merged = []
    for window in windows:
        n, length = window.shape
        bins = length // bin_ms
        merged.append(window[:, : bins * bin_ms].reshape(n, bins, bin_ms).sum(axis=2))
    return merged


def test_windows_match_the_downstream_trim_and_merge(datastore, tmp_path):
    windows = {"interval_ms": 712, "offset_ms": 76, "bin_ms": 20}
    paths = export_part(settings("V1_Exc_L2/3", trials=None, windows=windows), datastore, tmp_path)
    ours = load_npz(paths["windows"]).toarray()
    assert ours.shape == (40, 5 * 35)
    theirs = downstream_trim_and_merge(dense_reference(SPEC, "V1_Exc_L2/3", 0).astype(np.int64))
    per_window = ours.reshape(40, 5, 35)
    # the middle windows are the same; ours start at the offset (theirs prepend the first
    # blank's first half to window 0) and the last is as long as the others
    for k in range(1, 4):
        assert np.array_equal(per_window[:, k], theirs[k])
    dense = dense_reference(SPEC, "V1_Exc_L2/3", 0).astype(np.int64)
    first = dense[:, 76 : 76 + 700].reshape(40, 35, 20).sum(axis=2)
    assert np.array_equal(per_window[:, 0], first)
    assert np.array_equal(per_window[:, 4, : theirs[4].shape[1]], theirs[4])
    assert not per_window[:, 4, theirs[4].shape[1] :].any()


def test_stand_in_unpickler_gives_what_neo_gives(datastore):
    records = mozaik.read_datastore(datastore)
    assert len(records) == 3 * 5 * 2 * 2
    for record in records[:8]:
        light = mozaik.load_trains(datastore, record)
        real = mozaik.load_trains_with_neo(datastore, record)
        assert np.array_equal(light.source_ids, real.source_ids)
        assert light.duration_ms == real.duration_ms
        assert all(np.array_equal(a, b) for a, b in zip(light.times_ms, real.times_ms, strict=True))
    block = mozaik.load_pickle(datastore / mozaik.RECORDINGS, real_neo=True)
    first = block.segments[0]
    assert first.null and first.identifier == "Segment0"
    assert first.annotations["sheet_name"] == "X_ON"
    assert mozaik.parse_stimulus(first.annotations["stimulus"])["name"] == "NaturalImage"


def test_the_recordings_pickle_names_mozaiks_wrapper_class(datastore):
    data = (datastore / mozaik.RECORDINGS).read_bytes()
    assert (
        b"mozaik.storage.neo_neurotools_wrapper" in data and b"PickledDataStoreNeoWrapper" in data
    )
    assert b"spikeforge" not in data


def test_restricted_unpickler_refuses_other_classes(tmp_path):
    import collections

    for payload in (collections.Counter(a=1), pickle.loads(pickle.dumps(Path("x")))):
        path = tmp_path / "Segment0.pickle"
        path.write_bytes(pickle.dumps(payload))
        with pytest.raises(InputError, match=r"Segment0\.pickle: .*refused to load"):
            mozaik.load_pickle(path)


def test_open_hdf5_input_gives_the_same_files(datastore, tmp_path):
    h5 = tmp_path / f"{PART}.h5"
    for sheet in ("X_ON", "V1_Exc_L2/3"):
        write_hdf5_part(DatastorePart(datastore, sheet), h5, sheet)
    for sheet in ("X_ON", "V1_Exc_L2/3"):
        a = export_part(settings(sheet, trials=3), datastore, tmp_path / "a")
        b = export_part(settings(sheet, trials=3, source="hdf5"), h5, tmp_path / "b")
        for key in a:
            if key.endswith("ids"):
                assert np.array_equal(np.load(a[key]), np.load(b[key]))
            else:
                assert (load_npz(a[key]) != load_npz(b[key])).nnz == 0


def test_memory_does_not_grow_with_the_number_of_images(tmp_path):
    def peak(images: int) -> int:
        spec = replace(SPEC, neurons={"V1_Exc_L4": 1500}, images=images, trials=1)
        folder = write_part(spec, tmp_path / str(images), PART)
        tracemalloc.start()
        export_part(settings("V1_Exc_L4", trials=None), folder, tmp_path / f"out{images}")
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    small, large = peak(4), peak(32)
    dense_large = 32 * 1500 * 712  # the original's array alone
    assert large < 1.3 * small + (1 << 20)
    assert large < dense_large / 2


def test_bad_input_names_the_part_and_the_problem(tmp_path, datastore):
    (tmp_path / "empty_baseline:7_trial:0").mkdir()
    with pytest.raises(
        InputError, match=r"not a Mozaik datastore \(no datastore\.recordings\.pickle\)"
    ):
        export_part(settings("X_ON", trials=None), tmp_path / "empty_baseline:7_trial:0", tmp_path)
    no_ids = write_part(
        replace(SPEC, drop_source_id=True, trials=1, images=1), tmp_path / "x", PART
    )
    with pytest.raises(InputError, match=r"Segment0\.pickle: spike train 0 has no source_id"):
        export_part(settings("X_ON", trials=None), no_ids, tmp_path / "out")
    assert not (tmp_path / "out" / "spikes").exists()
    with pytest.raises(
        InputError, match=r"part 50000 has no NaturalImage segments of sheet V1_Inh_L4"
    ):
        export_part(settings("V1_Inh_L4", trials=None), datastore, tmp_path / "out")
    # a blank lost from the block: blank and image counts differ
    broken = write_part(replace(SPEC, trials=1, images=2), tmp_path / "y", PART)
    block = mozaik.load_pickle(broken / mozaik.RECORDINGS, real_neo=True)
    block.segments._items = [s for s in block.segments if s.identifier != "Segment0"]
    (broken / mozaik.RECORDINGS).write_bytes(
        mozaik.dumps_like_mozaik(block, mozaik.neo_wrapper_class())
    )
    with pytest.raises(InputError, match=r"trial 0: 1 blank segments but 2 image segments"):
        export_part(settings("X_ON", trials=None), broken, tmp_path / "out")
    assert not any((tmp_path / "out").rglob("*.np[yz]"))


def test_experanto_layout_holds_every_spike_and_its_end_time_rule(datastore, tmp_path):
    import yaml

    paths = export_part(settings("V1_Exc_L2/3", trials=2, experanto=True), datastore, tmp_path)
    trial = paths["experanto"] / "trial_1"
    meta = yaml.safe_load((trial / "responses" / "meta.yml").read_text())
    stamps = np.load(trial / "screen" / "timestamps.npy")
    assert meta["end_time"] == stamps[-1] == pytest.approx(5 * 0.710)
    assert meta["n_signals"] == 40 and len(meta["spike_indices"]) == 41
    assert meta["stimuli_order"] == [str(PART + k) for k in range(5)] and meta["trial_id"] == 1
    assert len(stamps) == 2 * 5 + 1 and len(list((trial / "screen" / "meta").iterdir())) == 11
    spikes = np.load(trial / "responses" / "spikes.npy")
    known = truth(SPEC, PART, "V1_Exc_L2/3", 1)
    for unit in range(40):
        expected = []
        for k in range(5):
            for part, offset in (("blank", 0.0), ("image", 150.0)):
                counts, flat = known[part][k]
                ends = np.cumsum(counts)
                expected.append(flat[ends[unit] - counts[unit] : ends[unit]] + k * 710.0 + offset)
        first, stop = meta["spike_indices"][unit], meta["spike_indices"][unit + 1]
        assert np.allclose(spikes[first:stop], np.sort(np.concatenate(expected)) / 1000.0)


def test_datastores_are_written_alike_whatever_else_patched_pickle(tmp_path):
    """dill (which datasets imports) rewrites pickle's pure-Python dispatch in place; the mock
    writer's bytes must not change with it."""
    import subprocess
    import sys

    code = (
        "import sys, {0}\n"
        "from spikeforge.cortical.mock import MockSpec, write_part\n"
        "write_part(MockSpec(neurons={{'X_ON': 3}}, images=1, seed=1), sys.argv[1], 7)\n"
    )
    written = {}
    for module in ("os", "dill"):
        # the same folder both times: the datastore records its own path
        run = subprocess.run([sys.executable, "-c", code.format(module), str(tmp_path / "out")],
                             capture_output=True, text=True)  # fmt: skip
        assert run.returncode == 0, run.stderr
        folder = next((tmp_path / "out").iterdir())
        written[module] = {p.name: p.read_bytes() for p in folder.iterdir()}
        shutil.rmtree(tmp_path / "out")
    assert written["dill"] == written["os"]


def test_mock_datastores_record_their_final_path_and_rebuild_byte_identically(tmp_path):
    """Mozaik's segments record the datastore's folder: the final one, never the staging
    folder the variant is written in (whose name is random)."""
    from spikeforge.cortical.mock import write_parts

    root = tmp_path / "train"
    first = write_parts(SPEC, root, [PART])[0]
    recordings = first / mozaik.RECORDINGS
    written = recordings.read_bytes()
    assert str(first).encode() in written and b"/.train." not in written
    shutil.rmtree(root)
    write_parts(SPEC, root, [PART])
    assert recordings.read_bytes() == written

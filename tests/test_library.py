"""The spike library (docs/eeg-chain.md §4): every clip once, region-major, with its leadfield
projection computed here independently; only the regions the run names; bad clips refused."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from spikeforge.core.errors import InputError
from spikeforge.eeg.library import Library, build_library, clip_info_path, mock_clip
from spikeforge.io.mat import save_mat

N_REGIONS, N_CHANNELS = 6, 4


@pytest.fixture
def clips(tmp_path):
    """Clips of regions 1 (j = 1, 2) and 4 (j = 1), clip_info for region 1 only."""
    gen = np.random.default_rng(0)
    written = {}
    for region, j in ((1, 1), (1, 2), (4, 1)):
        clip = mock_clip(N_REGIONS, region, gen)
        save_mat(tmp_path / "nmm_spikes" / f"a{region}" / f"nmm_{j}.mat", {"data": clip})
        written[region, j] = clip
    info = {"region": 1, "clips": [
        {"j": 1, "iteration": 0, "peak_time": 700, "clip_start": 500, "alpha": 2.5},
        {"j": 2, "iteration": 1, "peak_time": 1300, "clip_start": 1000, "alpha": 3.5},
    ]}  # fmt: skip
    path = clip_info_path(tmp_path / "nmm_spikes", 1)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(info))
    return tmp_path / "nmm_spikes", written


LEADFIELD = np.random.default_rng(1).standard_normal((N_CHANNELS, N_REGIONS))


def test_library_rows_projection_and_provenance(clips, tmp_path):
    folder, written = clips
    build_library(folder, LEADFIELD, tmp_path / "lib.h5")
    order = [(1, 1), (1, 2), (4, 1)]  # by region, then j
    with h5py.File(tmp_path / "lib.h5", "r") as f:
        np.testing.assert_array_equal(f["region"][()], [1, 1, 4])
        np.testing.assert_array_equal(f["clip_number"][()], [1, 2, 1])
        assert [s.decode() for s in f["source_file"][()]] == [
            "a1/nmm_1.mat", "a1/nmm_2.mat", "a4/nmm_1.mat",
        ]  # fmt: skip
        for row, key in enumerate(order):
            clip = written[key].astype(np.float32)
            np.testing.assert_array_equal(f["clips"][row], clip.T)
            np.testing.assert_allclose(
                f["projection"][row], LEADFIELD @ clip.astype(np.float64).T, rtol=1e-12
            )
            np.testing.assert_array_equal(f["centre_waveform"][row], clip[:, key[0]])
        np.testing.assert_array_equal(f["iteration"][()], [0, 1, -1])
        np.testing.assert_array_equal(f["peak_time"][()], [700, 1300, -1])
        np.testing.assert_array_equal(f["alpha"][()][:2], [2.5, 3.5])
        assert np.isnan(f["alpha"][2])
    with Library(tmp_path / "lib.h5") as library:
        assert library.regions_with_clips().tolist() == [1, 4]
        assert list(library.clips_of(1)) == [0, 1] and list(library.clips_of(4)) == [2]
        np.testing.assert_array_equal(library.clip(2), written[4, 1].astype(np.float32))
        np.testing.assert_array_equal(
            library.regions(0, np.array([1, 3])), written[1, 1].astype(np.float32)[:, [1, 3]].T
        )
        with pytest.raises(InputError, match="region 2 has no spike clips"):
            library.clips_of(2)


def test_named_regions_only(clips, tmp_path):
    """A folder another run left (a4) is not read when the run names its regions."""
    folder, _ = clips
    build_library(folder, LEADFIELD, tmp_path / "lib.h5", regions=[1])
    with h5py.File(tmp_path / "lib.h5", "r") as f:
        np.testing.assert_array_equal(f["region"][()], [1, 1])
    with pytest.raises(InputError, match="clip folder of region 3 not found"):
        build_library(folder, LEADFIELD, tmp_path / "x.h5", regions=[1, 3])
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"data": np.zeros((500, N_REGIONS + 1))}, "clip must be 500 x 6"),
        ({"data": np.full((500, N_REGIONS), np.nan)}, "non-finite"),
        ({"clip": np.zeros((500, N_REGIONS))}, "variable not found"),
        ({"data": -np.ones((500, N_REGIONS))}, "region 1's waveform has no positive peak"),
    ],
)
@pytest.mark.parametrize("workers", [1, 3])
def test_bad_clips_are_refused_naming_the_file(clips, tmp_path, variables, message, workers):
    folder, _ = clips
    bad = folder / "a1" / "nmm_2.mat"
    save_mat(bad, variables)
    with pytest.raises(InputError, match=message) as error:
        build_library(folder, LEADFIELD, tmp_path / "lib.h5", workers=workers)
    assert str(bad) in str(error.value)
    assert not (tmp_path / "lib.h5").exists()


def test_workers_write_the_same_library(clips, tmp_path):
    folder, _ = clips
    build_library(folder, LEADFIELD, tmp_path / "one.h5")
    build_library(folder, LEADFIELD, tmp_path / "three.h5", workers=3)
    assert (tmp_path / "one.h5").read_bytes() == (tmp_path / "three.h5").read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_folder_errors(tmp_path, clips):
    folder, _ = clips
    (folder / "a9").mkdir()
    with pytest.raises(InputError, match="region 9 does not exist: the leadfield has 6"):
        build_library(folder, LEADFIELD, tmp_path / "lib.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no clips found"):
        build_library(tmp_path / "empty", LEADFIELD, tmp_path / "lib.h5")
    with pytest.raises(InputError, match="spike clip folder not found"):
        build_library(tmp_path / "none", LEADFIELD, tmp_path / "lib.h5")

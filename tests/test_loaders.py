"""Every reader of the chains' files names the file when it is missing, truncated or
incomplete (h5py's own messages do not)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from spikeforge.core.errors import InputError
from spikeforge.eeg.anatomy import read_anatomy
from spikeforge.eeg.export.hdf5 import write_split_index
from spikeforge.eeg.library import Library
from spikeforge.eeg.plan import read_plan
from spikeforge.io.mat import load_mat, save_mat


def _h5(path, **datasets):
    with h5py.File(path, "w") as handle:
        for name, value in datasets.items():
            handle[name] = value
        handle["padding"] = np.zeros(100_000)
    return path


def _truncated(path):
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    return path


@pytest.mark.parametrize(
    "reader",
    [Library, read_anatomy, read_plan, lambda p: write_split_index(p.parent / "i.json", [p])],
)
def test_hdf5_readers_name_a_truncated_missing_or_incomplete_file(tmp_path, reader):
    truncated = _truncated(_h5(tmp_path / "truncated.h5", x=np.arange(10)))
    with pytest.raises(InputError, match=r"truncated\.h5: cannot be opened as .*truncated file"):
        reader(truncated)
    with pytest.raises(InputError, match=r"absent\.h5: file not found"):
        reader(tmp_path / "absent.h5")
    incomplete = _h5(tmp_path / "incomplete.h5", x=np.arange(10))
    with pytest.raises(InputError, match=r"incomplete\.h5: is not a complete"):
        reader(incomplete)


def test_a_truncated_clip_is_named(tmp_path):
    clip = tmp_path / "nmm_1.mat"
    save_mat(clip, {"data": np.ones((500, 994), np.float32)})
    assert load_mat(clip)["data"].shape == (500, 994)
    _truncated(clip)
    with pytest.raises(InputError, match=r"nmm_1\.mat: not a readable MATLAB file"):
        load_mat(clip)

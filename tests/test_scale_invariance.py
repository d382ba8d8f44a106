"""A sample is a function of (seed, split, index) alone: the full-scale layout (plan parts,
shards of any size) gives the same samples as a whole plan synthesised in one piece."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from spikeforge.eeg.anatomy import write_anatomy
from spikeforge.eeg.export.hdf5 import EEGShard, synthesize_shard_file
from spikeforge.eeg.library import Library
from spikeforge.eeg.plan import PlanConfig, generate_plan, plan_part, read_plan_parts
from spikeforge.eeg.synthesis import synthesize

N_SAMPLES = 1100
SEED, SPLIT = 23, "train"
CFG = PlanConfig(n_samples=N_SAMPLES, samples_per_region=96)


def build(folder, anatomy_h5, library, plan_parts, per_shard):
    """Plan parts and shards as the workflow's jobs write them; sample index -> arrays."""
    folder.mkdir()
    samples = {}
    for p, (first, stop) in enumerate(plan_parts):
        part = folder / f"part_{p}.h5"
        plan_part(anatomy_h5, library, part, (first, stop), CFG, SEED, SPLIT)
        for a in range(first, stop, per_shard):
            shard = folder / f"shard_{a}.h5"
            synthesize_shard_file(shard, anatomy_h5, library, part, (a, min(stop, a + per_shard)),
                                  SEED, SPLIT)  # fmt: skip
            with EEGShard(shard) as opened:
                for i in range(len(opened)):
                    samples[int(opened.index[i])] = opened.sample(i)
    return samples


@pytest.fixture(scope="module")
def layouts(demo_case, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    anatomy_h5 = folder / "anatomy.h5"
    write_anatomy(demo_case.anatomy, anatomy_h5)
    library = demo_case.library
    return {
        # one plan part, shards of 1,000
        "1000": build(folder / "a", anatomy_h5, library, [(0, N_SAMPLES)], 1000),
        # parts of 512 rows, shards of 512 (and a short last one)
        "512": build(
            folder / "b", anatomy_h5, library, [(0, 512), (512, 1024), (1024, 1100)], 512
        ),  # fmt: skip
    }


def test_samples_equal_across_shard_and_plan_part_sizes(layouts):
    a, b = layouts["1000"], layouts["512"]
    assert sorted(a) == sorted(b) == list(range(N_SAMPLES))
    for i in range(N_SAMPLES):
        for name in ("eeg_data", "source_data", "labels", "snr"):
            np.testing.assert_array_equal(a[i][name], b[i][name], err_msg=f"{name} of {i}")
    # samples differ from each other: the comparison is not between constants
    assert not np.array_equal(a[0]["eeg_data"], a[1]["eeg_data"])


def test_sharded_plan_equals_whole_plan_and_its_synthesis(layouts, demo_case, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    anatomy_h5 = tmp_path / "anatomy.h5"
    write_anatomy(demo_case.anatomy, anatomy_h5)
    parts = [(0, 300), (300, 333), (333, N_SAMPLES)]
    for p, rows in enumerate(parts):
        plan_part(anatomy_h5, demo_case.library, folder / f"{p}.h5", rows, CFG, SEED, SPLIT)
    sharded = read_plan_parts([folder / f"{p}.h5" for p in range(len(parts))])
    with Library(demo_case.library) as library:
        whole = generate_plan(demo_case.anatomy, library, CFG, SEED, SPLIT)
        for name in ("centre", "patch", "patch_size", "mag_change", "clip", "scale_ratios",
                     "scale", "sensor_snr"):  # fmt: skip
            np.testing.assert_array_equal(getattr(sharded, name), getattr(whole, name), name)
        # the whole plan synthesised in one piece, in memory: the shards' samples
        rows = slice(640, 700)
        block = next(synthesize(demo_case.anatomy.leadfield, library, whole.select(640, 700),
                                640, SEED, SPLIT))  # fmt: skip
    for j, i in enumerate(range(rows.start, rows.stop)):
        np.testing.assert_array_equal(block.eeg[j], layouts["512"][i]["eeg_data"])
        np.testing.assert_array_equal(block.labels[j], layouts["512"][i]["labels"])
    with h5py.File(folder / "1.h5") as part:
        assert part.attrs["first_index"] == 300 and part["centre"].shape[0] == 33

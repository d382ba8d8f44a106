"""Each EEG rule's library call, in process, against what its parts compute or a reading of
its files written here: what the workflow tests run in a subprocess, where these calls
cannot be checked line by line."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest
import scipy.io

from spikeforge.core.errors import InputError
from spikeforge.eeg.anatomy import write_anatomy
from spikeforge.eeg.clips import Detection, extract_region_clips, process_region
from spikeforge.eeg.export.deepsif import (
    export_deepsif,
    import_deepsif_plan,
    import_deepsif_split,
)
from spikeforge.eeg.export.hdf5 import synthesize_shard, synthesize_shard_file
from spikeforge.eeg.export.mat import export_mat_metadata, export_mat_shard
from spikeforge.eeg.library import Library
from spikeforge.eeg.plan import PlanConfig, generate_plan, plan_part, read_plan, write_plan
from spikeforge.eeg.raw import Preprocessing, write_mock_raw, write_mock_raw_job


@pytest.fixture(scope="module")
def demo_files(demo_case, tmp_path_factory):
    """The demo case's anatomy.h5 and plan.h5 as the workflow writes them."""
    folder = tmp_path_factory.mktemp("jobs")
    write_anatomy(demo_case.anatomy, folder / "anatomy.h5")
    write_plan(demo_case.plan, folder / "plan.h5")
    return folder


def plan_arrays(plan):
    return {
        name: getattr(plan, name) for name in ("centre", "patch", "clip", "scale", "sensor_snr")
    }


def test_plan_part_writes_generate_plan_rows_in_pieces(
    demo_case, demo_files, tmp_path, caplog, monkeypatch
):
    monkeypatch.setattr("spikeforge.eeg.plan.PLAN_PIECE", 7)  # rows 10..47: pieces of 7 and 3
    cfg = PlanConfig(n_samples=48, samples_per_region=4)  # centres: the regions with clips
    without = [r for r in range(demo_case.anatomy.n_regions) if r not in demo_case.regions]
    with caplog.at_level(logging.WARNING):
        plan_part(demo_files / "anatomy.h5", demo_case.library, tmp_path / "p.h5", (10, 48),
                  cfg, 11, "train", expected_regions=[*demo_case.regions, *without[:11]],
                  report_regions_without_clips=True)  # fmt: skip
    shown = ", ".join(f"a{r}" for r in without[:10])
    assert f"11 region(s) have no clips and are not used as source centres: {shown} ..." in (
        caplog.text
    )
    with Library(demo_case.library) as library:
        expected = generate_plan(demo_case.anatomy, library, cfg, 11, "train").select(10, 48)
    written = read_plan(tmp_path / "p.h5")
    for name, values in plan_arrays(expected).items():
        np.testing.assert_array_equal(getattr(written, name), values, err_msg=name)
    # rows are addressed by their index in the split
    np.testing.assert_array_equal(read_plan(tmp_path / "p.h5", 20, 22).clip, expected.clip[10:12])
    with pytest.raises(InputError, match="p.h5: holds plan rows 10..47, not 5..12"):
        read_plan(tmp_path / "p.h5", 5, 12)
    assert set(written.centre[:, 0].tolist()) <= set(demo_case.regions)
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # only the split's first part reports
        plan_part(demo_files / "anatomy.h5", demo_case.library, tmp_path / "r.h5", (3, 6),
                  PlanConfig(n_samples=6, samples_per_region=1), 11, "train")  # fmt: skip
    assert "region(s)" not in caplog.text
    with caplog.at_level(logging.WARNING):  # default: every region of the head is expected
        plan_part(demo_files / "anatomy.h5", demo_case.library, tmp_path / "q.h5", (0, 3),
                  PlanConfig(n_samples=3, samples_per_region=1), 11, "train",
                  report_regions_without_clips=True)  # fmt: skip
    assert f"{len(without)} region(s) have no clips" in caplog.text
    assert f"{shown} ...\n" in caplog.text


def test_synthesize_shard_file_is_synthesize_shard_on_the_plan_rows(
    demo_case, demo_files, tmp_path
):
    synthesize_shard_file(
        tmp_path / "job.h5", demo_files / "anatomy.h5", demo_case.library, demo_files / "plan.h5",
        (10, 30), 11, "test", label_pad=-2,
    )  # fmt: skip
    with Library(demo_case.library) as library:
        synthesize_shard(tmp_path / "direct.h5", demo_case.anatomy.leadfield, library,
                         demo_case.plan.select(10, 30), 10, 11, "test", label_pad=-2)  # fmt: skip
    assert (tmp_path / "job.h5").read_bytes() == (tmp_path / "direct.h5").read_bytes()
    with h5py.File(tmp_path / "job.h5") as shard:
        np.testing.assert_array_equal(shard["index"][()], np.arange(10, 30))
        assert shard.attrs["label_pad"] == -2 and shard.attrs["split"] == "test"


def test_mat_export_jobs(demo_case, demo_files, tmp_path):
    with Library(demo_case.library) as library:
        for k, (a, b) in enumerate([(5, 12), (12, 16)]):
            synthesize_shard(tmp_path / f"s{k}.h5", demo_case.anatomy.leadfield, library,
                             demo_case.plan.select(a, b), a, 11, "test")  # fmt: skip
    for k in (0, 1):
        export_mat_shard(tmp_path / f"s{k}.h5", tmp_path / "mat" / f"shard_{k:04d}")
    names = sorted(p.name for p in (tmp_path / "mat").rglob("*.mat"))
    assert names == [f"sample_{i:05d}.mat" for i in range(5, 16)]
    with h5py.File(tmp_path / "s1.h5") as shard:
        sample = scipy.io.loadmat(tmp_path / "mat" / "shard_0001" / "sample_00013.mat")
        np.testing.assert_array_equal(sample["eeg_data"], shard["eeg"][1])
    export_mat_metadata(
        tmp_path / "meta.mat", [tmp_path / "mat" / "shard_0000", tmp_path / "mat" / "shard_0001"],
        demo_files / "anatomy.h5", "plan/test.h5", 5, "anatomy/leadfield.mat",
    )  # fmt: skip
    meta = scipy.io.loadmat(tmp_path / "meta.mat")
    assert meta["total_samples"].item() == 11 and meta["failed_samples"].item() == 0
    assert meta["start_idx"].item() == 5
    assert meta["dataset_path"].item() == "plan/test.h5"
    assert meta["forward_model_path"].item() == "anatomy/leadfield.mat"
    np.testing.assert_array_equal(meta["forward_shape"], [list(demo_case.anatomy.leadfield.shape)])
    assert meta["total_samples"].dtype == np.int64


def test_deepsif_export_and_import_jobs(demo_case, demo_files, tmp_path):
    parts = [tmp_path / "part_0.h5", tmp_path / "part_1.h5"]
    write_plan(demo_case.plan.select(8, 15), parts[0], 8)
    write_plan(demo_case.plan.select(15, 20), parts[1], 15)
    write_plan(demo_case.plan.select(0, 3), tmp_path / "other.h5", 0)
    splits = {"train": parts, "test": [tmp_path / "other.h5"]}
    clips = {split: tmp_path / f"{split}_nmm.h5" for split in splits}
    export_deepsif(demo_case.library, splits, {s: tmp_path / f"{s}_all.mat" for s in splits},
                   clips)  # fmt: skip
    # the second split's clip file is the first's under another name, not a copy
    assert clips["test"].stat().st_ino == clips["train"].stat().st_ino
    assert clips["test"].stat().st_nlink == 2
    export_deepsif(demo_case.library, {"train": parts}, {"train": tmp_path / "source1.mat"},
                   {"train": tmp_path / "nmm.h5"}, all_scale_ratios=False)  # fmt: skip
    assert scipy.io.loadmat(tmp_path / "test_all.mat")["nmm_idx"].shape == (3, 2)
    plan = demo_case.plan.select(8, 20)
    every = scipy.io.loadmat(tmp_path / "train_all.mat")["scale_ratio"]
    assert every.shape == (12, 2, 6)  # the six target SNRs of the plan
    np.testing.assert_array_equal(every, plan.scale_ratios)
    meta = scipy.io.loadmat(tmp_path / "source1.mat")
    assert meta["selected_region"].shape == (12, 2, 70)
    np.testing.assert_array_equal(meta["nmm_idx"], plan.clip)
    np.testing.assert_array_equal(meta["scale_ratio"][..., 0], plan.scale)
    np.testing.assert_array_equal(meta["sensor_snr"][:, 0], plan.sensor_snr)
    for i in (0, 11):
        for k in (0, 1):
            size = plan.patch_size[i, k]
            np.testing.assert_array_equal(meta["selected_region"][i, k, :size], plan.patch_of(i, k))
            assert np.all(meta["selected_region"][i, k, size:] == 15213)
            np.testing.assert_array_equal(meta["mag_change"][i, k, :size], plan.weights_of(i, k))
            assert np.all(meta["mag_change"][i, k, size:] == 15213)
    with h5py.File(tmp_path / "nmm.h5") as clips, Library(demo_case.library) as library:
        assert clips["data"].shape == (library.n_clips, 500, demo_case.anatomy.n_regions)
        for row in (0, library.n_clips - 1):
            np.testing.assert_array_equal(clips["data"][row], library.clip(row))
    import_deepsif_split(tmp_path / "source1.mat", demo_files / "anatomy.h5", demo_case.library,
                         tmp_path / "imported.h5", 11, "train")  # fmt: skip
    imported = read_plan(tmp_path / "imported.h5")
    with Library(demo_case.library) as library:
        direct = import_deepsif_plan(tmp_path / "source1.mat", library,
                                     demo_case.anatomy.n_regions, 11, "train")  # fmt: skip
    for name, values in plan_arrays(direct).items():
        np.testing.assert_array_equal(getattr(imported, name), values, err_msg=name)
    # One ratio per source was exported: importing it back gives the plan's own scale.
    np.testing.assert_array_equal(imported.scale, plan.scale)
    np.testing.assert_array_equal(imported.patch, plan.patch)


def test_mock_raw_and_extract_clips_jobs(demo_case, demo_files, tmp_path):
    """write_mock_raw_job writes what write_mock_raw writes; extract_region_clips writes the
    clips process_region returns, numbered across iterations, and their provenance."""
    write_mock_raw_job(tmp_path / "raw" / "a25", demo_files / "anatomy.h5", 25, [0, 1], 6.0, 2.0, 4)
    write_mock_raw(tmp_path / "direct" / "a25", 25, [0, 1], 200, 6.0, 2.0, 4)
    names = sorted(p.name for p in (tmp_path / "raw" / "a25").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "direct" / "a25").iterdir())
    assert len(names) == 6  # 2 iterations x 3 chunks of 2 s
    for name in names:
        a = scipy.io.loadmat(tmp_path / "raw" / "a25" / name)
        b = scipy.io.loadmat(tmp_path / "direct" / "a25" / name)
        np.testing.assert_array_equal(a["data"], b["data"])
    result = extract_region_clips(
        tmp_path / "raw", 25, [0, 1], demo_files / "anatomy.h5", {"burn_in": 1000, "factor": 4},
        {"threshold_mv": 7.5, "target_snr_db": 12.0}, tmp_path / "clips", tmp_path / "a25.json",
    )  # fmt: skip
    detection = Detection(threshold_mv=7.5, target_snr_db=12.0)
    expected = process_region(tmp_path / "raw", 25, [0, 1], demo_case.anatomy.leadfield,
                              Preprocessing(), detection)  # fmt: skip
    assert len(expected.clips) >= 2 and result.peak_time == expected.peak_time
    info = json.loads((tmp_path / "a25.json").read_text())
    assert [c["j"] for c in info["clips"]] == list(range(1, len(expected.clips) + 1))
    for j, clip in enumerate(expected.clips, start=1):
        saved = scipy.io.loadmat(tmp_path / "clips" / f"nmm_{j}.mat")["data"]
        np.testing.assert_allclose(saved, clip, rtol=1e-6)
        entry = info["clips"][j - 1]
        assert (entry["iteration"], entry["peak_time"], entry["clip_start"]) == (
            expected.iteration[j - 1], expected.peak_time[j - 1], expected.clip_start[j - 1],
        )  # fmt: skip
        # The leadfield read back from anatomy.h5 may be laid out differently in memory, so
        # BLAS sums in another order: the last bits of alpha may differ.
        assert entry["alpha"] == pytest.approx(expected.alpha[j - 1], rel=1e-12)
    assert info["region"] == 25 and info["messages"] == expected.messages

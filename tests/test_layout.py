"""A run's layout, split and shard arithmetic, seeds per cell, start-up checks and the size
estimate, as plain functions (no Snakemake)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from spikeforge.core.seeding import int_seed
from spikeforge.io.mat import save_mat
from spikeforge.workflow import sizes
from spikeforge.workflow.config import DEMO_CONFIG, fill_defaults, load_schema
from spikeforge.workflow.layout import RunFolders, path, shard_ranges, split_range
from spikeforge.workflow.startup import start_run

SCHEMA = load_schema()


def config_with(**blocks) -> dict:
    return fill_defaults(dict(blocks), SCHEMA)


# ------------------------------------------------------------------ arithmetic


@pytest.mark.parametrize(
    ("total", "start", "count", "expected"),
    [(100, 0, None, (0, 100)), (100, 5, 30, (5, 35)), (100, 90, 30, (90, 100)), (1, 0, 1, (0, 1))],
)
def test_split_range(total, start, count, expected):
    assert split_range(total, start, count) == expected


def test_split_range_past_the_end():
    with pytest.raises(ValueError, match="10 is past the plan's 10 samples"):
        split_range(10, 10, None)


def test_shard_ranges_cover_the_range_once_in_order():
    for start, stop, per in [(0, 100, 20), (5, 35, 20), (0, 1, 1000), (3, 1003, 7)]:
        ranges = shard_ranges(start, stop, per)
        covered = [i for a, b in ranges for i in range(a, b)]
        assert covered == list(range(start, stop))
        assert (
            all(b - a == per for a, b in ranges[:-1]) and 0 < ranges[-1][1] - ranges[-1][0] <= per
        )
    assert shard_ranges(0, 100, 20)[-1] == (80, 100)
    assert shard_ranges(5, 35, 20) == [(5, 25), (25, 35)]
    with pytest.raises(ValueError):
        shard_ranges(0, 10, 0)


def test_run_folders_are_normalised():
    assert (
        RunFolders.of(".") == RunFolders.of("./") == RunFolders(".", "results", "logs", "resources")
    )
    folders = RunFolders.of("runs/real/")
    assert (folders.results, folders.logs) == ("runs/real/results", "runs/real/logs")


# ------------------------------------------------------------------ the EEG layout


TINY_EEG = {
    "enabled": True,
    "anatomy": {"source": "demo", "demo": {"n_regions": 40, "n_channels": 32}},
    "spike_library": {"source": "mock", "mock_clips_per_region": 1},
    "splits": {
        "train": {"samples_per_region": 1, "count": 20},
        "test": {"samples_per_region": 1, "start": 5, "count": 30},
    },
    "synthesis": {"samples_per_shard": 20},
    "export": {"mat": {"enabled": True, "splits": ["test"]}},
}


def started(config: dict, tmp_path: Path, name: str = "run.yaml"):
    run, problems = start_run(config, [tmp_path / name])
    assert problems == [], problems
    return run


def test_eeg_shards_targets_and_jobs(tmp_path):
    run = started({"run_dir": str(tmp_path / "r"), "eeg": TINY_EEG}, tmp_path)
    eeg = run.eeg
    assert run.paired is None
    assert eeg.split_size("train") == eeg.split_size("test") == 40  # 40 regions x 1
    assert eeg.shard_ranges("test") == [(5, 25), (25, 35)]
    assert eeg.shards("test") == ["0000", "0001"] and eeg.shard_range("test", "0001") == (25, 35)
    results = f"{tmp_path}/r/results"
    assert path(eeg.shard, split="test", shard="0001") == f"{results}/test/hdf5/shard_0001.h5"
    targets = run.targets()
    assert f"{results}/test/hdf5/index.json" in targets
    assert f"{results}/test/mat/shard_0001" in targets
    assert not any("/train/mat/" in t for t in targets)
    assert all(t.startswith(f"{tmp_path}/r/") for t in targets)
    assert run.job_counts() == {
        "demo_anatomy": 1, "anatomy": 1, "mock_spike_clips": 1, "spike_library": 1,
        "sample_plan": 2, "synthesize_shard": 3, "split_index": 2, "export_mat_shard": 2,
        "export_mat_metadata": 1, "export_deepsif": 1, "qc_eeg_split": 2, "qc_eeg_library": 1,
    }  # fmt: skip
    # one plan part holds all of a split's shards when they are small
    assert eeg.plan_parts("test") == ["0000"] and eeg.plan_part_range("test", "0000") == (5, 35)
    assert f"{results}/plan/test/part_0000.h5" in targets


def test_plan_parts_hold_whole_shards(tmp_path):
    eeg_cfg = {**TINY_EEG, "synthesis": {"samples_per_shard": 3000}}
    eeg_cfg["splits"] = {"train": {"samples_per_region": 700, "count": 25_000}}
    eeg = started({"run_dir": str(tmp_path / "r"), "eeg": eeg_cfg}, tmp_path).eeg
    assert eeg.split_size("train") == 28_000  # 40 regions x 700
    assert eeg.shards_per_plan_part == 3  # about 10,000 plan rows a part
    assert eeg.plan_parts("train") == ["0000", "0001", "0002"]
    assert [eeg.plan_part_range("train", p) for p in eeg.plan_parts("train")] == [
        (0, 9000), (9000, 18_000), (18_000, 25_000)
    ]  # fmt: skip
    assert [eeg.plan_part_of("train", s) for s in eeg.shards("train")] == [
        "0000", "0000", "0000", "0001", "0001", "0001", "0002", "0002", "0002"
    ]  # fmt: skip


def test_demo_config_counts(tmp_path):
    """The demo's jobs, counted from the config alone (a dry run shows the same, see the
    workflow tests)."""
    import yaml

    from spikeforge.spiketrains.formats import FORMATS

    run = started(yaml.safe_load(DEMO_CONFIG.read_text()), tmp_path)
    counts = run.job_counts()
    assert counts["mock_raw_nmm"] == counts["extract_clips"] == 8
    assert counts["synthesize_shard"] == 4 + 1  # 1,600 train and 200 test samples, 512 a shard
    assert counts["convert_cell"] == counts["mock_spe1_cell"] == 2
    assert counts["mock_session"] == counts["movie_annotation"] == 1
    # two cells' ground-truth units and one session's units in seven spike-train formats
    assert [counts[f"export_{f}"] for f in FORMATS] == [3] * 7
    # two sheets of the mock V1 model: 2 train parts and 1 test part each
    assert counts["mock_cortical"] == 2
    assert (
        counts["export_cortical_train_V1_Exc_L4"] == counts["export_cortical_train_V1_Exc_L23"] == 2
    )
    assert (
        counts["export_cortical_test_V1_Exc_L4"] == counts["export_cortical_test_V1_Exc_L23"] == 1
    )
    # QC figures: each split's, the spike library's, each cell's
    assert counts["qc_eeg_split"] == counts["qc_paired_cell"] == 2
    assert counts["qc_eeg_library"] == 1 and counts["qc_spiketrains_item"] == 3
    assert counts["qc_cortical_sheet"] == 4
    assert sum(counts.values()) == 38 + 2 + 21 + 8 - 1 + 12  # one DeepSIF export for both splits


def test_plan_settings_are_the_splits_own(tmp_path):
    splits = {"train": {"samples_per_region": 1}, "test": {"target_snrs_db": [10, 15]}}
    eeg = dict(TINY_EEG, plan={"centre_regions": [3, 1]}, splits=splits)
    run = started({"eeg": eeg}, tmp_path)
    train = run.eeg.plan_settings("train")
    assert train["n_samples"] == 2 and train["centre_regions"] == [3, 1]
    assert train["target_snrs_db"] == [10, 12, 14, 16, 18, 20]
    assert run.eeg.plan_settings("test")["target_snrs_db"] == [10, 15]


# ------------------------------------------------------------------ the paired layout


def paired_config(cells, **paired) -> dict:
    return {"seed": 7, "paired": {"enabled": True, "cells": cells, **paired}}


def test_cell_settings_do_not_depend_on_the_other_cells(tmp_path):
    one = started(paired_config(["a"]), tmp_path).paired
    two = started(paired_config(["a", "b"]), tmp_path).paired
    assert one.cell_settings("a") == two.cell_settings("a")
    assert one.cell_inputs("a") == two.cell_inputs("a")
    assert one.cell_settings("a") != two.cell_settings("b")


def test_detector_seeds_come_from_config_seed_and_cell(tmp_path):
    settings = started(paired_config(["a", "b"]), tmp_path).paired.cell_settings
    assert settings("a")["bad_channels"]["seed"] == int_seed(7, "bad_channels", "a")
    assert settings("a")["peak_detection_seed"] == int_seed(7, "peak_detection", "a")
    assert settings("a")["bad_channels"]["seed"] != settings("b")["bad_channels"]["seed"]
    other_seed = started(dict(paired_config(["a"]), seed=8), tmp_path).paired.cell_settings("a")
    assert other_seed["bad_channels"]["seed"] != settings("a")["bad_channels"]["seed"]
    # A seed the config names is kept.
    fixed = paired_config(["a"], bad_channels={"method": "coherence+psd", "seed": 3})
    assert started(fixed, tmp_path).paired.cell_settings("a")["bad_channels"]["seed"] == 3


def test_user_spe1_config_takes_the_documented_window(tmp_path):
    """A user's config is not merged over the demo's: skip 10 s, 300 s window."""
    spe1 = spe1_folder(tmp_path)
    run = started(paired_config(["c1"], source="spe1", spe1=spe1), tmp_path)
    settings = run.paired.cell_settings("c1")
    assert (settings["skip_s"], settings["duration_s"], settings["segment_s"]) == (10.0, 300.0, 3.0)


# ------------------------------------------------------------------ start-up checks


def problems_of(config: dict, tmp_path: Path, name: str = "run.yaml") -> list[str]:
    run, problems = start_run(config, [tmp_path / name])
    assert (run is None) == bool(problems)
    return problems


def one_problem(config: dict, tmp_path: Path, *fragments: str) -> str:
    problems = problems_of(config, tmp_path)
    assert len(problems) == 1, problems
    assert all(f in problems[0] for f in fragments), problems[0]
    return problems[0]


def test_nothing_enabled(tmp_path):
    one_problem({}, tmp_path, "no chain is enabled", "eeg.enabled", "paired.enabled")


def test_schema_problems_name_the_key(tmp_path):
    problems = problems_of(
        {"eeg": {"enabled": True, "synthesis": {"samples_per_shrad": 2}}}, tmp_path
    )
    assert problems == [
        "config key eeg.synthesis.samples_per_shrad: unknown key "
        "(known here: noise, samples_per_shard)"
    ]


@pytest.mark.parametrize(
    ("eeg", "expected"),
    [
        ({"synthesis": {"samples_per_shard": "many"}},
         "config key eeg.synthesis.samples_per_shard: 'many' is not of type 'integer'"),
        ({"plan": {"patch_method": "square"}},
         "config key eeg.plan.patch_method: 'square' is not one of ['grow', 'disk']"),
        ({"synthesis": {"samples_per_shard": 0}},
         "config key eeg.synthesis.samples_per_shard: 0 is less than the minimum of 1"),
        ({"raw": {"iterations": [3]}},
         "config key eeg.raw.iterations.0: 3 is greater than the maximum of 2"),
    ],
)  # fmt: skip
def test_schema_types_enums_and_ranges(tmp_path, eeg, expected):
    assert problems_of({"eeg": {"enabled": True, **eeg}}, tmp_path) == [expected]


def test_missing_raw_folders_and_metadata(tmp_path):
    (tmp_path / "raw" / "a1").mkdir(parents=True)
    eeg = files_eeg(tmp_path, raw={"source": "folder", "folder": str(tmp_path / "raw"),
                                   "regions": [1, 2]})  # fmt: skip
    assert problems_of({"eeg": eeg}, tmp_path) == [
        f"config key eeg.raw.folder: no folder a2 in {tmp_path}/raw"
    ]
    eeg = files_eeg(tmp_path, spike_library={"source": "mock"}, plan={"source": "deepsif"},
                    splits={"train": {}})  # fmt: skip
    assert problems_of({"eeg": eeg}, tmp_path) == [
        "config key eeg.plan.deepsif_metadata.train: required when eeg.plan.source is deepsif"
    ]
    eeg["plan"]["deepsif_metadata"] = {"train": str(tmp_path / "none.mat")}
    assert problems_of({"eeg": eeg}, tmp_path) == [
        f"config key eeg.plan.deepsif_metadata.train: file not found: {tmp_path}/none.mat"
    ]


def tvb_config(tmp_path: Path, duration_s: float, chunk_s: float) -> dict:
    connectivity = tmp_path / "connectivity.zip"
    with zipfile.ZipFile(connectivity, "w") as archive:
        archive.writestr("centres.txt", "".join(f"r{i} {i} 0 0\n" for i in range(20)))
    return {
        "eeg": {
            "enabled": True,
            "anatomy": {"source": "demo", "demo": {"n_regions": 20, "n_channels": 8}},
            "raw": {
                "source": "tvb", "regions": [0], "iterations": [0],
                "tvb": {"connectivity": str(connectivity), "duration_s": duration_s,
                        "chunk_s": chunk_s},
            },
        }
    }  # fmt: skip


def test_tvb_duration_and_chunk_must_divide(tmp_path):
    one_problem(
        tvb_config(tmp_path, 5, 2), tmp_path, "config key eeg.raw.tvb.chunk_s:",
        "does not divide duration_s = 5", "eeg.raw.tvb.duration_s",
    )  # fmt: skip
    one_problem(tvb_config(tmp_path, 1, 0.0003), tmp_path, "eeg.raw.tvb.chunk_s", "0.5 ms steps")
    run = started(tvb_config(tmp_path, 6, 2), tmp_path)
    assert run.eeg.tvb_chunk_count() == 3 and len(run.eeg.tvb_outputs()) == 3


def spe1_folder(tmp_path: Path, chan_map: str = "chanMap.mat") -> dict:
    root = tmp_path / "spe1"
    (root / "Recordings" / "c1").mkdir(parents=True, exist_ok=True)
    from spikeforge.paired.mock import write_mock_channel_map

    write_mock_channel_map(root / "chanMap.mat")
    return {"recordings": str(root / "Recordings"), "chan_map": str(root / chan_map)}


def test_tvb_connectivity_must_match_the_head_model(tmp_path):
    config = tvb_config(tmp_path, 6, 2)
    config["eeg"]["anatomy"]["demo"]["n_regions"] = 30
    one_problem(config, tmp_path, "config key eeg.raw.tvb.connectivity:", "has 20 regions",
                "the leadfield needs 30")  # fmt: skip
    config["eeg"]["preprocessing"] = {"fsaverage_remap": True}
    one_problem(config, tmp_path, "has 20 regions, eeg.preprocessing.fsaverage_remap needs 998")
    (tmp_path / "connectivity.zip").write_bytes(b"not a zip")
    one_problem(config, tmp_path, "config key eeg.raw.tvb.connectivity:", "not a zip file")


def test_wrong_channel_map_file(tmp_path):
    spe1 = spe1_folder(tmp_path)
    not_a_map = tmp_path / "leadfield.mat"
    save_mat(not_a_map, {"fwd": np.zeros((3, 4))})
    spe1["chan_map"] = str(not_a_map)
    line = one_problem(
        paired_config(["c1"], source="spe1", spe1=spe1), tmp_path,
        "config key paired.spe1.chan_map:", str(not_a_map), "no 'xcoords' variable",
        "Kilosort channel map", "npx_map.csv",
    )  # fmt: skip
    assert "Traceback" not in line
    garbage = tmp_path / "npx_map.csv"
    garbage.write_text("a,b\n1,2\n")
    spe1["chan_map"] = str(garbage)
    one_problem(
        paired_config(["c1"], source="spe1", spe1=spe1), tmp_path,
        "config key paired.spe1.chan_map:", "expected a grid of channel numbers",
    )  # fmt: skip


def test_missing_cell_folder_and_files(tmp_path):
    spe1 = spe1_folder(tmp_path)
    one_problem(
        paired_config(["c1", "c2"], source="spe1", spe1=spe1), tmp_path,
        "config key paired.cells:", "no folder c2",
    )  # fmt: skip
    spe1["recordings"] = str(tmp_path / "nowhere")
    problems = problems_of(paired_config(["c1"], source="spe1", spe1=spe1), tmp_path)
    assert problems == [f"config key paired.spe1.recordings: folder not found: {tmp_path}/nowhere"]


def test_binary_reader_needs_its_settings(tmp_path):
    raw = tmp_path / "rec.bin"
    raw.write_bytes(b"\0" * 64)
    config = paired_config(
        ["r1"], source="recordings", recordings={"r1": {"reader": "binary", "path": str(raw)}}
    )
    problems = problems_of(config, tmp_path)
    assert problems == [
        "config key paired.recordings.r1.probe: the binary reader needs a probe file",
        "config key paired.recordings.r1.binary.sampling_frequency: required by the binary reader",
        "config key paired.recordings.r1.binary.num_channels: required by the binary reader",
        "config key paired.recordings.r1.binary.dtype: required by the binary reader",
    ]


def test_bad_channel_options_are_checked_at_start_up(tmp_path):
    config = paired_config(["a"], bad_channels={"method": "coherence+psd", "num_chunks": 3})
    one_problem(config, tmp_path, "config key paired.bad_channels:", "unknown option 'num_chunks'")


def files_eeg(tmp_path: Path, n_regions: int = 30, **blocks) -> dict:
    rng = np.random.default_rng(0)
    scipy.io.savemat(tmp_path / "lf.mat", {"fwd": rng.normal(size=(8, n_regions))})
    return {
        "enabled": True,
        "anatomy": {
            "source": "files",
            "files": {name: str(tmp_path / "lf.mat")
                      for name in ("leadfield", "region_mapping", "centres")},
        },
        **blocks,
    }  # fmt: skip


def test_region_and_split_ranges(tmp_path):
    eeg = files_eeg(tmp_path, raw={"source": "mock", "regions": [3, 30]},
                    splits={"train": {"samples_per_region": 2, "start": 10}})  # fmt: skip
    problems = problems_of({"eeg": eeg}, tmp_path)
    assert problems == ["config key eeg.raw.regions: region 30 is not below 30"]
    eeg["raw"]["regions"] = [3, 29]
    assert problems_of({"eeg": eeg}, tmp_path) == [
        "config key eeg.splits.train.start: 10 is past the plan's 4 samples"
    ]


def test_defaults_never_plan_hundreds_of_gb_by_accident(tmp_path):
    """A config naming only a 994-region head model would make mock recordings for every
    region (about 475 GB): start-up refuses it with the estimate and the key to raise."""
    line = one_problem({"eeg": files_eeg(tmp_path, n_regions=994)}, tmp_path, "max_output_gb")
    # 994 regions x 3 iterations x 20 s x 2 kHz x 994 float32 values = 474.3 GB.
    assert "raw recordings 474.3 GB" in line
    gb = float(line.split("about ")[1].split(" GB")[0])
    assert 474 < gb < 700
    raised = {"max_output_gb": 1000, "check_free_disk": False,
              "eeg": files_eeg(tmp_path, n_regions=994)}  # fmt: skip
    run = started(raised, tmp_path)
    assert run.job_counts()["mock_raw_nmm"] == 994


def test_start_up_refuses_outputs_the_disk_cannot_hold(tmp_path, monkeypatch):
    config = {"run_dir": str(tmp_path / "r"), "eeg": TINY_EEG}
    estimate = sum(
        sum(kinds.values()) for kinds in started(config, tmp_path).output_bytes().values()
    )
    monkeypatch.setattr(sizes, "free_bytes", lambda folder: estimate // 2)
    line = one_problem(config, tmp_path, "config key check_free_disk:", "free", "hdf5 shards")
    assert f"{tmp_path}/r/ has" in line and "set check_free_disk: false" in line
    # what results/ already holds is not written again
    (tmp_path / "r" / "results").mkdir(parents=True)
    with open(tmp_path / "r" / "results" / "made.h5", "wb") as made:
        made.truncate(estimate - estimate // 2)
    started(config, tmp_path)
    # a second name of a file (a hard link) takes no more space
    (tmp_path / "r" / "results" / "made.h5").rename(tmp_path / "r" / "results" / "half.h5")
    with open(tmp_path / "r" / "results" / "half.h5", "r+b") as made:
        made.truncate((estimate - estimate // 2) // 2 + 1)
    os.link(tmp_path / "r" / "results" / "half.h5", tmp_path / "r" / "results" / "link.h5")
    one_problem(config, tmp_path, "config key check_free_disk:")
    for name in ("half.h5", "link.h5"):
        (tmp_path / "r" / "results" / name).unlink()
    started({**config, "check_free_disk": False}, tmp_path)


def test_run_folder_belongs_to_the_config_that_made_it(tmp_path):
    config = {"run_dir": str(tmp_path / "r"), "eeg": TINY_EEG}
    run = started(config, tmp_path, "a.yaml")
    run.write_record()
    record = json.loads(run.record_path.read_text())
    assert record["config_files"] == [str((tmp_path / "a.yaml").resolve())]
    assert record["config"]["eeg"]["synthesis"]["samples_per_shard"] == 20
    started(config, tmp_path, "a.yaml")  # the same config file: fine
    line = one_problem(config, tmp_path, "config key run_dir:", "a.yaml")
    assert "give this config a run_dir of its own" in line
    other_dir = dict(config, run_dir=str(tmp_path / "s"))
    started(other_dir, tmp_path, "b.yaml")


def test_disabled_chain_with_settings_warns(tmp_path):
    run = started({"eeg": TINY_EEG, "paired": {"cells": ["x"]}}, tmp_path)
    assert run.paired is None
    assert run.warnings == [
        "config key paired: settings given but paired.enabled is false: the chain does not run"
    ]


def test_fill_defaults_reaches_named_blocks():
    config = fill_defaults(
        {"eeg": {"splits": {"a": {}}}, "paired": {"recordings": {"r": {}}}}, SCHEMA
    )
    assert config["eeg"]["splits"]["a"] == {
        "samples_per_region": 1, "target_snrs_db": [10, 12, 14, 16, 18, 20], "start": 0,
        "count": None,
    }  # fmt: skip
    assert config["paired"]["recordings"]["r"]["binary"]["gain_to_uV"] == 1.0
    assert config["paired"]["window"] == {"skip_s": 10.0, "duration_s": 300.0}
    assert config["run_dir"] == "." and config["eeg"]["enabled"] is False


def test_raw_chunk_count_follows_the_config(tmp_path):
    """extract_clips is told how many raw chunks a simulation has (mock and TVB sources)."""
    import copy

    import yaml

    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    run = started(copy.deepcopy(demo), tmp_path / "a")
    assert run.eeg.expected_raw_chunks() == 2  # 20 s in 10 s chunks
    demo["eeg"]["raw"]["mock"] = {"duration_s": 25.0, "chunk_s": 10.0}
    assert started(copy.deepcopy(demo), tmp_path / "b").eeg.expected_raw_chunks() == 3
    # a folder of recordings: the config does not say how long they are
    from spikeforge.workflow.layout import EEGLayout

    cfg = copy.deepcopy(run.eeg.cfg)
    cfg["raw"]["source"] = "folder"
    assert EEGLayout(cfg, 1, run.folders).expected_raw_chunks() is None

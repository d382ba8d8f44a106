"""Synthesis against an independent, straightforward implementation of docs/eeg-chain.md §6,
on the demo head model and on DeepSIF's real one; the sensor noise from the documented seed
scheme written out here; the HDF5 shard layout read by hand."""

from __future__ import annotations

import dataclasses
import json
import zlib

import h5py
import numpy as np
import pytest
import scipy.io

from spikeforge.core.errors import InputError
from spikeforge.eeg.export.hdf5 import (
    EEGDataset,
    EEGShard,
    synthesize_shard,
    write_hdf5_shard,
    write_split_index,
)
from spikeforge.eeg.export.mat import write_mat_samples
from spikeforge.eeg.library import Library
from spikeforge.eeg.plan import PlanConfig, generate_plan
from spikeforge.eeg.synthesis import BLOCK_SAMPLES, add_white_noise, normalise_eeg, synthesize


def literal_noise(seed: int, split: str, index: int, shape: tuple[int, int]) -> np.ndarray:
    """The README's seed table: sensor noise of sample i is (seed, split, i, 1), SFC64."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(split.encode()), index, 1])
    return np.random.Generator(np.random.SFC64(sequence)).standard_normal(shape, np.float32)


def reference_clean(fwd, clips, plan, i):
    """docs/eeg-chain.md §6 steps 1-3, dense and literal: (source [T, R], EEG [C, T])."""
    src = np.zeros((500, fwd.shape[1]))
    for k in range(plan.n_sources):
        size = plan.patch_size[i, k]
        patch = plan.patch[i, k, :size]
        clip = clips[plan.clip[i, k]].astype(np.float64).copy()
        w = clip[:, patch[0]]
        w = w / np.max(w) * plan.scale[i, k]
        clip[:, patch] = w[:, None] * plan.mag_change[i, k, :size][None, :]
        src = src + clip
    return src, fwd @ src.T


def reference_sample(fwd, clips, plan, i, noise=None):
    """§6 in full, as DeepSIF's loader does it; `noise` [C, T] standard normals or None."""
    src, eeg = reference_clean(fwd, clips, plan, i)
    if noise is not None:
        snr = plan.sensor_snr[i]
        power = np.sum(eeg**2, axis=1) / eeg.shape[1]
        sigma = np.sqrt(10 ** (-snr / 10) * power / 2)
        eeg = eeg + sigma[:, None] * noise
    x = eeg.T
    x = x - np.mean(x, axis=0, keepdims=True)
    x = x - np.mean(x, axis=1, keepdims=True)
    x = x / np.max(np.abs(x))
    labelled = [r for k in range(plan.n_sources) for r in plan.patch_of(i, k).tolist()]
    label_source = np.zeros_like(src)
    label_source[:, labelled] = src[:, labelled]
    label_source = label_source / np.max(label_source)
    return x.astype(np.float32), label_source.astype(np.float32)


def all_clips(library_path):
    with Library(library_path) as library:
        return np.stack([library.clip(r) for r in range(library.n_clips)])


def _dense(block, b, n_regions):
    a, z = block.source_ptr[b], block.source_ptr[b + 1]
    dense = np.zeros((500, n_regions), np.float32)
    dense[:, block.source_regions[a:z]] = block.source_timecourses[a:z].T
    return dense


def one_source(plan):
    """The plan with its first source only."""
    fields = ("centre", "patch", "patch_size", "mag_change", "clip", "scale_ratios", "scale")
    return dataclasses.replace(plan, **{f: getattr(plan, f)[:, :1] for f in fields})


@pytest.mark.parametrize(
    "noise, scale, sources", [(False, 1.0, 2), (True, 1.0, 2), (False, 1e-4, 2), (False, 1e-4, 1)]
)
def test_synthesis_matches_reference(eeg_case, noise, scale, sources):
    """Also with every scale ratio below 1; with one source the label source is then the
    scaled patch alone, whose peak is below 1."""
    fwd, plan = eeg_case.anatomy.leadfield, eeg_case.plan
    plan = one_source(plan) if sources == 1 else plan
    plan = dataclasses.replace(plan, scale=plan.scale * scale)
    assert scale == 1.0 or plan.scale.max() < 0.5
    clips = all_clips(eeg_case.library)
    with Library(eeg_case.library) as library:
        blocks = list(synthesize(fwd, library, plan, 100, seed=11, split="train", add_noise=noise))
    block = blocks[0]
    assert block.eeg.shape == (plan.n_samples, 500, fwd.shape[0])
    for i in range(plan.n_samples):
        drawn = literal_noise(11, "train", 100 + i, (fwd.shape[0], 500)) if noise else None
        eeg_ref, source_ref = reference_sample(fwd, clips, plan, i, drawn)
        np.testing.assert_allclose(block.eeg[i], eeg_ref, atol=1e-5, rtol=0)
        np.testing.assert_allclose(_dense(block, i, fwd.shape[1]), source_ref, atol=1e-5, rtol=0)


def test_noise_depends_on_split_and_sample(eeg_case):
    """The same plan row gets other noise in another split and at another index."""
    fwd, plan = eeg_case.anatomy.leadfield, eeg_case.plan.select(0, 2)
    with Library(eeg_case.library) as library:
        run = {
            (split, first): next(synthesize(fwd, library, plan, first, 11, split)).eeg
            for split, first in (("train", 0), ("test", 0), ("train", 1))
        }
        clean = next(synthesize(fwd, library, plan, 0, 11, "train", add_noise=False)).eeg
    assert not np.allclose(run["train", 0][0], run["test", 0][0])
    assert not np.allclose(run["train", 0][1], run["train", 1][0])
    for noisy in run.values():
        assert not np.allclose(noisy, clean)


def test_realised_snr_in_pipeline(eeg_case):
    """synthesize's noise has the documented level. Its output is normalised, so compare the
    noisy and the clean output of each sample (least squares x_noisy = a x_clean + r): the
    ratio of |a x_clean|^2 to |r|^2 is the SNR after the double centring, whose expected
    value follows from the reference's clean EEG, the DeepSIF noise variance
    10^(-snr/10) P_c / 2 and E|D(n)|^2 = (1 - 1/C)(T - 1) sum_c sigma_c^2."""
    fwd, plan = eeg_case.anatomy.leadfield, eeg_case.plan
    clips = all_clips(eeg_case.library)
    with Library(eeg_case.library) as library:
        noisy = next(synthesize(fwd, library, plan, 0, 11, "train")).eeg.astype(np.float64)
        clean = next(synthesize(fwd, library, plan, 0, 11, "train", add_noise=False)).eeg
    n_channels, n_time = fwd.shape[0], 500
    differences, realised_vs_nominal = [], []
    for i in range(plan.n_samples):
        x0, x1 = clean[i].astype(np.float64), noisy[i]
        a = np.sum(x0 * x1) / np.sum(x0 * x0)
        measured = 10 * np.log10(np.sum((a * x0) ** 2) / np.sum((x1 - a * x0) ** 2))
        _, eeg = reference_clean(fwd, clips, plan, i)
        sigma2 = 10 ** (-plan.sensor_snr[i] / 10) * np.sum(eeg**2, axis=1) / n_time / 2
        centred = eeg - eeg.mean(axis=1, keepdims=True)
        centred = centred - centred.mean(axis=0, keepdims=True)
        expected_noise = (1 - 1 / n_channels) * (n_time - 1) * sigma2.sum()
        differences.append(measured - 10 * np.log10(np.sum(centred**2) / expected_noise))
        # Uncentred, per channel: the nominal SNR + 3.01 dB (DeepSIF's factor 1/2).
        realised_vs_nominal.append(
            10 * np.log10(np.sum(eeg**2) / (n_time * sigma2.sum())) - plan.sensor_snr[i]
        )
    assert abs(np.mean(differences)) < 0.05 and np.max(np.abs(differences)) < 0.3
    np.testing.assert_allclose(realised_vs_nominal, 10 * np.log10(2), atol=1e-9)


def test_add_white_noise_follows_deepsif_convention():
    """sigma^2 = 10^(-snr/10) P / 2, so the realised per-channel SNR is nominal + 3.01 dB."""
    gen = np.random.default_rng(3)
    t = np.arange(500) / 500
    eeg = np.stack([np.sin(2 * np.pi * (3 + c) * t) * (1 + c) + 0.5 for c in range(64)])
    for snr in (5.0, 10.0, 20.0):
        noisy = add_white_noise(eeg, snr, gen)
        noise = noisy - eeg
        realised = 10 * np.log10(np.sum(eeg**2, axis=1) / np.sum(noise**2, axis=1))
        assert abs(realised.mean() - (snr + 10 * np.log10(2))) < 0.1


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_normalisation_scales_by_the_largest_excursion_of_either_sign(sign):
    """A negative spike as large as a positive one sets the scale: x / max |x|, as DeepSIF."""
    eeg = np.random.default_rng(5).standard_normal((16, 500)) + 3.0
    eeg[4, 120] += sign * 40.0
    x = eeg.T - eeg.T.mean(axis=0, keepdims=True)
    x = x - x.mean(axis=1, keepdims=True)
    expected = (x / np.abs(x).max()).astype(np.float32)
    out = normalise_eeg(eeg)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out[120, 4] == pytest.approx(sign * np.abs(out).max())


def test_normalisation_labels_shapes(eeg_case):
    fwd, plan = eeg_case.anatomy.leadfield, eeg_case.plan
    n_channels = fwd.shape[0]
    with Library(eeg_case.library) as library:
        block = next(synthesize(fwd, library, plan, 0, 11, "train", label_pad=-7))
    assert block.eeg.dtype == np.float32 and block.eeg.shape == (48, 500, n_channels)
    assert block.labels.dtype == np.int32 and block.labels.shape == (48, 2, 70)
    eeg = block.eeg.astype(np.float64)
    np.testing.assert_allclose(eeg.mean(axis=1), 0, atol=1e-6)  # over time, per channel
    np.testing.assert_allclose(eeg.mean(axis=2), 0, atol=1e-6)  # over channels, per time
    np.testing.assert_allclose(np.abs(eeg).max(axis=(1, 2)), 1, atol=1e-6)
    for i in range(48):
        labelled = set()
        for k in range(2):
            size = plan.patch_size[i, k]
            assert np.all(block.labels[i, k, size:] == -7)
            np.testing.assert_array_equal(block.labels[i, k, :size], plan.patch[i, k, :size])
            assert block.labels[i, k, 0] == plan.centre[i, k]
            labelled |= set(plan.patch[i, k, :size].tolist())
        dense = _dense(block, i, fwd.shape[1])
        assert set(np.flatnonzero(np.any(dense != 0, axis=0)).tolist()) <= labelled
        assert dense.max() == pytest.approx(1.0)


def test_synthesis_is_deterministic_and_block_independent(eeg_case):
    fwd, plan = eeg_case.anatomy.leadfield, eeg_case.plan
    with Library(eeg_case.library) as library:
        whole = next(synthesize(fwd, library, plan, 0, 11, "train"))
        part = next(synthesize(fwd, library, plan.select(10, 20), 10, 11, "train"))
    np.testing.assert_array_equal(whole.eeg[10:20], part.eeg)
    np.testing.assert_array_equal(whole.labels[10:20], part.labels)


def test_shards_of_several_blocks_match_the_reference(demo_anatomy, demo_case, tmp_path):
    """Every real run writes shards of more than BLOCK_SAMPLES samples: 300 samples (two
    blocks) against the reference, noise on, across the block boundary and at the end."""
    fwd = demo_anatomy.leadfield
    cfg = PlanConfig(n_samples=300, samples_per_region=25, centre_regions=demo_case.regions)
    with Library(demo_case.library) as library:
        plan = generate_plan(demo_anatomy, library, cfg, seed=5, split="test")
        synthesize_shard(tmp_path / "shard.h5", fwd, library, plan, 1000, 5, "test")
    assert plan.n_samples > BLOCK_SAMPLES
    clips = all_clips(demo_case.library)
    with h5py.File(tmp_path / "shard.h5", "r") as shard:
        np.testing.assert_array_equal(shard["index"][()], np.arange(1000, 1300))
        for i in (0, BLOCK_SAMPLES - 1, BLOCK_SAMPLES, BLOCK_SAMPLES + 1, 299):
            drawn = literal_noise(5, "test", 1000 + i, (fwd.shape[0], 500))
            eeg_ref, source_ref = reference_sample(fwd, clips, plan, i, drawn)
            np.testing.assert_allclose(shard["eeg"][i], eeg_ref, atol=1e-5, rtol=0)
            a, z = shard["source_ptr"][i], shard["source_ptr"][i + 1]
            np.testing.assert_allclose(
                source_ref[:, shard["source_regions"][a:z]], shard["source_timecourses"][a:z].T,
                atol=1e-5,
            )  # fmt: skip


def shard_by_hand(path, row):
    """A sample read from the shard's datasets as the README describes them."""
    with h5py.File(path, "r") as f:
        a, b = f["source_ptr"][row], f["source_ptr"][row + 1]
        source = np.zeros((500, int(f.attrs["n_regions"])), np.float32)
        source[:, f["source_regions"][a:b]] = f["source_timecourses"][a:b].T
        return {
            "eeg_data": f["eeg"][row],
            "source_data": source,
            "labels": f["labels"][row],
            "snr": np.array([[f["snr"][row]]]),
            "index": np.array([[f["index"][row]]]),
        }


def test_shard_loader_and_mat_files_agree_with_the_layout(eeg_case, tmp_path):
    """EEGShard.sample and the MAT files (scipy.io.loadmat) against the datasets read by
    hand; EEGDataset across two shards: positions, bounds, iteration."""
    fwd, plan = eeg_case.anatomy.leadfield, eeg_case.plan
    n_channels, n_regions = fwd.shape
    with Library(eeg_case.library) as library:
        for k, (a, b) in enumerate([(0, 12), (12, 20)]):
            blocks = synthesize(fwd, library, plan.select(a, b), 30 + a, 11, "train")
            write_hdf5_shard(
                tmp_path / f"shard_{k:04d}.h5", blocks, b - a, 500, n_channels, 2,
                {"n_regions": n_regions, "first_index": 30 + a, "split": "train",
                 "n_channels": n_channels},
            )  # fmt: skip
    written = write_mat_samples(tmp_path / "shard_0000.h5", tmp_path / "mat")
    assert [p.name for p in written] == [f"sample_{i:05d}.mat" for i in range(30, 42)]
    with EEGShard(tmp_path / "shard_0000.h5") as shard:
        for pos, path in enumerate(written):
            mat = scipy.io.loadmat(path)
            by_hand = shard_by_hand(tmp_path / "shard_0000.h5", pos)
            assert mat["eeg_data"].dtype == mat["source_data"].dtype == np.float32
            assert mat["source_data"].shape == (500, n_regions) and mat["labels"].shape == (2, 70)
            for key in ("eeg_data", "source_data", "labels", "snr", "index"):
                np.testing.assert_array_equal(mat[key], by_hand[key])
                np.testing.assert_array_equal(shard.sample(pos)[key], by_hand[key])
    write_split_index(
        tmp_path / "index.json", [tmp_path / "shard_0001.h5", tmp_path / "shard_0000.h5"]
    )
    with EEGDataset.from_folder(tmp_path) as dataset:
        assert len(dataset) == 20
        assert [int(s["index"][0, 0]) for s in dataset] == list(range(30, 50))
        np.testing.assert_array_equal(
            dataset[13]["eeg_data"], shard_by_hand(tmp_path / "shard_0001.h5", 1)["eeg_data"]
        )
        for bad in (20, -1):
            with pytest.raises(IndexError):
                dataset[bad]


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_compressed_shards_hold_the_same_samples(eeg_case, tmp_path, compression):
    fwd, plan = eeg_case.anatomy.leadfield, eeg_case.plan.select(0, 8)
    with Library(eeg_case.library) as library:
        synthesize_shard(tmp_path / "none.h5", fwd, library, plan, 0, 11, "train")
        synthesize_shard(
            tmp_path / "c.h5", fwd, library, plan, 0, 11, "train", compression=compression
        )
    with h5py.File(tmp_path / "none.h5") as plain, h5py.File(tmp_path / "c.h5") as packed:
        assert packed["eeg"].compression == compression and plain["eeg"].compression is None
        assert packed["source_timecourses"].compression == compression
        for key in plain:
            np.testing.assert_array_equal(packed[key][()], plain[key][()])
        if compression == "gzip":
            assert packed["eeg"].compression_opts == 1  # the default level
    if compression == "gzip":
        with Library(eeg_case.library) as library:
            synthesize_shard(tmp_path / "c6.h5", fwd, library, plan, 0, 11, "train",
                             compression="gzip", level=6)  # fmt: skip
        with h5py.File(tmp_path / "c6.h5") as packed:
            assert (
                packed["eeg"].compression_opts == packed["source_timecourses"].compression_opts == 6
            )


def test_shard_layout_as_documented(eeg_case, tmp_path):
    """The dataset types and shapes of the README's shard table; source_ptr starts at 0 and
    each sample stores exactly its labelled regions (the union of its patches); snr is the
    plan's sensor SNR; the attributes say how the shard was made."""
    fwd, plan = eeg_case.anatomy.leadfield, eeg_case.plan.select(3, 13)
    n_channels, n_regions = fwd.shape
    with Library(eeg_case.library) as library:
        synthesize_shard(tmp_path / "s.h5", fwd, library, plan, 3, 11, "test", label_pad=-5)
    with h5py.File(tmp_path / "s.h5") as shard:
        layout = {key: (shard[key].shape, shard[key].dtype) for key in shard}
        nnz = shard["source_regions"].shape[0]
        assert layout == {
            "eeg": ((10, 500, n_channels), np.float32),
            "labels": ((10, 2, 70), np.int32),
            "snr": ((10,), np.float64),
            "index": ((10,), np.int64),
            "source_ptr": ((11,), np.int64),
            "source_regions": ((nnz,), np.int32),
            "source_timecourses": ((nnz, 500), np.float32),
        }
        ptr = shard["source_ptr"][()]
        unions = [
            np.unique(np.concatenate([plan.patch_of(i, k) for k in range(2)])) for i in range(10)
        ]
        assert ptr[0] == 0 and np.diff(ptr).tolist() == [u.size for u in unions]
        for i, union in enumerate(unions):
            np.testing.assert_array_equal(shard["source_regions"][ptr[i] : ptr[i + 1]], union)
        np.testing.assert_array_equal(shard["snr"][()], plan.sensor_snr)
        assert dict(shard.attrs) == {
            "n_regions": n_regions, "n_channels": n_channels, "split": "test", "seed": 11,
            "noise": True, "label_pad": -5, "first_index": 3,
        }  # fmt: skip


def test_rewritten_shard_is_byte_identical(eeg_case, tmp_path):
    fwd, plan = eeg_case.anatomy.leadfield, eeg_case.plan
    for name in ("a.h5", "b.h5"):
        with Library(eeg_case.library) as library:
            synthesize_shard(tmp_path / name, fwd, library, plan, 0, 11, "train")
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_synthesize_shard_is_synthesis_streamed_into_a_shard(eeg_case, tmp_path):
    fwd, plan = eeg_case.anatomy.leadfield, eeg_case.plan
    n_channels, n_regions = fwd.shape
    with Library(eeg_case.library) as library:
        blocks = synthesize(fwd, library, plan, 5, 11, "test", label_pad=-3)
        write_hdf5_shard(tmp_path / "direct.h5", blocks, 48, 500, n_channels, 2, {})
        synthesize_shard(tmp_path / "a.h5", fwd, library, plan, 5, 11, "test", label_pad=-3)
    with h5py.File(tmp_path / "direct.h5") as direct, h5py.File(tmp_path / "a.h5") as shard:
        for key in direct:
            np.testing.assert_array_equal(shard[key][()], direct[key][()])
        assert shard["eeg"].chunks is not None
        assert dict(shard.attrs) == {
            "n_regions": n_regions, "n_channels": n_channels, "split": "test", "seed": 11,
            "noise": True, "label_pad": -3, "first_index": 5,
        }  # fmt: skip


def fake_shard(path, first, n, split="train", n_regions=994, n_channels=75):
    """Just what a split index reads from a shard: its attributes and its index dataset."""
    with h5py.File(path, "w") as f:
        f["index"] = np.arange(first, first + n)
        f["eeg"] = np.full((n, 4, 3), first, np.float32) + np.arange(n)[:, None, None]
        f["labels"] = np.zeros((n, 2, 70), np.int32)
        f["snr"] = np.full(n, 5.0)
        f["source_ptr"] = np.zeros(n + 1, np.int64)
        f["source_regions"] = np.zeros(0, np.int32)
        f["source_timecourses"] = np.zeros((0, 4), np.float32)
        f.attrs.update(first_index=first, split=split, n_regions=n_regions, n_channels=n_channels)
    return path


def test_split_index_lists_shards_in_sample_order(tmp_path):
    paths = [fake_shard(tmp_path / f"shard_{k}.h5", first, n)
             for k, (first, n) in enumerate([(130, 5), (100, 10), (110, 20)])]  # fmt: skip
    index = write_split_index(tmp_path / "index.json", paths)
    assert json.loads((tmp_path / "index.json").read_text()) == index == {
        "split": "train", "first_index": 100, "n_samples": 35,
        "shards": [{"file": "shard_1.h5", "first_index": 100, "n_samples": 10},
                   {"file": "shard_2.h5", "first_index": 110, "n_samples": 20},
                   {"file": "shard_0.h5", "first_index": 130, "n_samples": 5}],
    }  # fmt: skip
    assert write_split_index(tmp_path / "empty.json", []) == {
        "split": None,
        "first_index": 0,
        "n_samples": 0,
        "shards": [],
    }


@pytest.mark.parametrize(
    "third, message",
    [
        ({"first": 21}, "c.h5 starts at sample 21, b.h5 ends at 20"),
        ({"split": "test"}, "c.h5 has split test, b.h5 train: shards of different runs"),
        ({"n_regions": 200}, "c.h5 has n_regions 200, b.h5 994: shards of different runs"),
        ({"n_channels": 64}, "c.h5 has n_channels 64, b.h5 75: shards of different runs"),
    ],
)
def test_split_index_refuses_shards_that_do_not_continue(tmp_path, third, message):
    """The third shard is the odd one, so a check of the first pair alone would miss it."""
    options = {"first": 20, **third}
    paths = [fake_shard(tmp_path / "a.h5", 0, 10), fake_shard(tmp_path / "b.h5", 10, 10),
             fake_shard(tmp_path / "c.h5", options.pop("first"), 10, **options)]  # fmt: skip
    with pytest.raises(ValueError) as error:
        write_split_index(tmp_path / "index.json", paths)
    assert str(error.value) == f"{tmp_path / 'index.json'}: {message}"
    assert not (tmp_path / "index.json").exists()


def test_dataset_from_a_folder_with_and_without_its_index(tmp_path):
    """With index.json: the listed shards, in the listed order, and no other. Without: every
    shard_*.h5 in name order, which must continue each other; a clear error naming the file for
    the rest."""
    fake_shard(tmp_path / "shard_0000.h5", 0, 10)
    fake_shard(tmp_path / "shard_0001.h5", 10, 5)
    with EEGDataset.from_folder(tmp_path) as dataset:  # no index
        assert len(dataset) == 15 and int(dataset[12]["index"][0, 0]) == 12
        assert dataset[12]["eeg_data"][0, 0] == 12
    fake_shard(tmp_path / "shard_0002.h5", 40, 5)  # another run's leftover
    with pytest.raises(ValueError) as error:
        EEGDataset.from_folder(tmp_path)
    assert (
        str(error.value)
        == f"{tmp_path}: shard_0002.h5 starts at sample 40, shard_0001.h5 ends at 15"
    )
    write_split_index(
        tmp_path / "index.json", [tmp_path / "shard_0001.h5", tmp_path / "shard_0000.h5"]
    )
    # the leftover is not listed: refused, named
    with pytest.raises(
        InputError, match=r"index\.json: shards in the folder but not listed .*'shard_0002\.h5'"
    ):
        EEGDataset.from_folder(tmp_path)
    (tmp_path / "shard_0002.h5").unlink()
    with EEGDataset.from_folder(tmp_path) as dataset:
        assert [int(s["index"][0, 0]) for s in dataset] == list(range(15))
    # a truncated shard: the error names it
    data = (tmp_path / "shard_0000.h5").read_bytes()
    (tmp_path / "shard_0000.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"shard_0000\.h5: (cannot be opened|is not a complete)"):
        EEGDataset.from_folder(tmp_path)
    (tmp_path / "shard_0000.h5").write_bytes(data)
    (tmp_path / "shard_0001.h5").unlink()
    with pytest.raises(FileNotFoundError) as error:
        EEGDataset.from_folder(tmp_path)
    assert (
        str(error.value) == f"{tmp_path / 'index.json'}: listed shards missing: ['shard_0001.h5']"
    )
    with pytest.raises(FileNotFoundError) as error:
        EEGDataset.from_folder(tmp_path / "empty")
    assert str(error.value) == f"{tmp_path / 'empty'}: no index.json and no shard_*.h5"

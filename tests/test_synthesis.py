"""Synthesis against an independent, straightforward implementation of docs/eeg-chain.md §6."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io

from spikeforge.eeg.export.hdf5 import EEGShard, synthesize_shard, write_hdf5_shard
from spikeforge.eeg.export.mat import write_mat_samples
from spikeforge.eeg.library import Library
from spikeforge.eeg.synthesis import add_white_noise, noise_rng, synthesize


def reference_sample(fwd, clips, plan, i, noise_rng_or_none):
    """docs/eeg-chain.md §6, one sample, dense and literal (as DeepSIF's loader does it)."""
    n_regions = fwd.shape[1]
    src = np.zeros((500, n_regions))
    all_labels = []
    for k in range(plan.n_sources):
        size = plan.patch_size[i, k]
        patch = plan.patch[i, k, :size]
        clip = clips[plan.clip[i, k]].astype(np.float64).copy()
        w = clip[:, patch[0]]
        w = w / np.max(w) * plan.scale[i, k]
        clip[:, patch] = w[:, None] * plan.mag_change[i, k, :size][None, :]
        src = src + clip
        all_labels.extend(patch.tolist())
    eeg = fwd @ src.T
    if noise_rng_or_none is not None:
        snr = plan.sensor_snr[i]
        power = np.sum(eeg**2, axis=1) / eeg.shape[1]
        sigma = np.sqrt(10 ** (-snr / 10) * power / 2)
        noise = noise_rng_or_none.standard_normal(eeg.shape, dtype=np.float32)
        eeg = eeg + sigma[:, None] * noise
    x = eeg.T
    x = x - np.mean(x, axis=0, keepdims=True)
    x = x - np.mean(x, axis=1, keepdims=True)
    x = x / np.max(np.abs(x))
    label_source = np.zeros_like(src)
    label_source[:, all_labels] = src[:, all_labels]
    label_source = label_source / np.max(label_source)
    return x.astype(np.float32), label_source.astype(np.float32)


def _dense(block, b, n_regions):
    a, z = block.source_ptr[b], block.source_ptr[b + 1]
    dense = np.zeros((500, n_regions), np.float32)
    dense[:, block.source_regions[a:z]] = block.source_timecourses[a:z].T
    return dense


@pytest.mark.parametrize("noise", [False, True])
def test_synthesis_matches_reference_on_real_leadfield(
    real_anatomy, real_library, real_plan, noise
):
    fwd = real_anatomy.leadfield
    with Library(real_library) as library:
        clips = np.stack([library.clip(r) for r in range(library.n_clips)])
        blocks = list(
            synthesize(fwd, library, real_plan, 100, seed=11, split="train", add_noise=noise)
        )
    block = blocks[0]
    assert block.eeg.shape == (real_plan.n_samples, 500, 75)
    for i in range(real_plan.n_samples):
        rng = noise_rng(11, "train", 100 + i) if noise else None
        eeg_ref, source_ref = reference_sample(fwd, clips, real_plan, i, rng)
        np.testing.assert_allclose(block.eeg[i], eeg_ref, atol=1e-5, rtol=0)
        np.testing.assert_allclose(_dense(block, i, fwd.shape[1]), source_ref, atol=1e-5, rtol=0)


def test_realised_snr_follows_deepsif_convention():
    """sigma^2 = 10^(-snr/10) P / 2, so the realised per-channel SNR is nominal + 3.01 dB."""
    gen = np.random.default_rng(3)
    t = np.arange(500) / 500
    eeg = np.stack([np.sin(2 * np.pi * (3 + c) * t) * (1 + c) + 0.5 for c in range(64)])
    for snr in (5.0, 10.0, 20.0):
        noisy = add_white_noise(eeg, snr, gen)
        noise = noisy - eeg
        realised = 10 * np.log10(np.sum(eeg**2, axis=1) / np.sum(noise**2, axis=1))
        assert abs(realised.mean() - (snr + 10 * np.log10(2))) < 0.1


def test_realised_snr_in_pipeline(real_anatomy, real_library, real_plan):
    """The pipeline adds exactly the documented noise: compare noisy and clean EEG before
    normalisation is undone through the reference (same generator, independent code)."""
    fwd = real_anatomy.leadfield
    with Library(real_library) as library:
        clips = np.stack([library.clip(r) for r in range(library.n_clips)])
    i = 5
    clean_eeg = None
    src = np.zeros((500, fwd.shape[1]))
    for k in range(real_plan.n_sources):
        size = real_plan.patch_size[i, k]
        patch = real_plan.patch[i, k, :size]
        clip = clips[real_plan.clip[i, k]].astype(np.float64).copy()
        w = clip[:, patch[0]] / clip[:, patch[0]].max() * real_plan.scale[i, k]
        clip[:, patch] = np.outer(w, real_plan.mag_change[i, k, :size])
        src += clip
    clean_eeg = fwd @ src.T
    noisy = add_white_noise(clean_eeg, real_plan.sensor_snr[i], noise_rng(11, "train", i))
    noise = noisy - clean_eeg
    realised = 10 * np.log10(np.sum(clean_eeg**2, axis=1) / np.sum(noise**2, axis=1))
    assert abs(realised.mean() - (real_plan.sensor_snr[i] + 3.0103)) < 0.15


def test_normalisation_labels_shapes(real_anatomy, real_library, real_plan):
    with Library(real_library) as library:
        block = next(
            synthesize(real_anatomy.leadfield, library, real_plan, 0, 11, "train", label_pad=-7)
        )
    assert block.eeg.dtype == np.float32 and block.eeg.shape == (48, 500, 75)
    assert block.labels.dtype == np.int32 and block.labels.shape == (48, 2, 70)
    eeg = block.eeg.astype(np.float64)
    np.testing.assert_allclose(eeg.mean(axis=1), 0, atol=1e-6)  # over time, per channel
    np.testing.assert_allclose(eeg.mean(axis=2), 0, atol=1e-6)  # over channels, per time
    np.testing.assert_allclose(np.abs(eeg).max(axis=(1, 2)), 1, atol=1e-6)
    for i in range(48):
        labelled = set()
        for k in range(2):
            size = real_plan.patch_size[i, k]
            assert np.all(block.labels[i, k, size:] == -7)
            np.testing.assert_array_equal(block.labels[i, k, :size], real_plan.patch[i, k, :size])
            assert block.labels[i, k, 0] == real_plan.centre[i, k]
            labelled |= set(real_plan.patch[i, k, :size].tolist())
        dense = _dense(block, i, real_anatomy.n_regions)
        assert set(np.flatnonzero(np.any(dense != 0, axis=0)).tolist()) <= labelled
        assert dense.max() == pytest.approx(1.0)


def test_synthesis_is_deterministic_and_block_independent(real_anatomy, real_library, real_plan):
    with Library(real_library) as library:
        whole = next(synthesize(real_anatomy.leadfield, library, real_plan, 0, 11, "train"))
        part = next(
            synthesize(real_anatomy.leadfield, library, real_plan.select(10, 20), 10, 11, "train")
        )
    np.testing.assert_array_equal(whole.eeg[10:20], part.eeg)
    np.testing.assert_array_equal(whole.labels[10:20], part.labels)


def test_hdf5_loader_agrees_with_mat_files(real_anatomy, real_library, real_plan, tmp_path):
    fwd = real_anatomy.leadfield
    with Library(real_library) as library:
        blocks = synthesize(fwd, library, real_plan.select(0, 12), 30, 11, "train")
        write_hdf5_shard(tmp_path / "shard.h5", blocks, 12, 500, 75, 2, {"n_regions": fwd.shape[1]})
    written = write_mat_samples(tmp_path / "shard.h5", tmp_path / "mat")
    assert [p.name for p in written] == [f"sample_{i:05d}.mat" for i in range(30, 42)]
    with EEGShard(tmp_path / "shard.h5") as shard:
        for pos, path in enumerate(written):
            mat = scipy.io.loadmat(path)
            sample = shard.sample(pos)
            assert mat["eeg_data"].shape == (500, 75) and mat["eeg_data"].dtype == np.float32
            assert mat["source_data"].shape == (500, 994)
            assert mat["source_data"].dtype == np.float32
            assert mat["labels"].shape == (2, 70)
            assert mat["snr"].shape == (1, 1) and mat["index"].shape == (1, 1)
            assert mat["index"][0, 0] == 30 + pos
            for key in ("eeg_data", "source_data", "labels", "snr", "index"):
                np.testing.assert_array_equal(mat[key], sample[key])
    with h5py.File(tmp_path / "shard.h5") as f:
        assert f["eeg"].chunks is not None


def test_rewritten_shard_is_byte_identical(real_anatomy, real_library, real_plan, tmp_path):
    fwd = real_anatomy.leadfield
    digests = []
    for name in ("a.h5", "b.h5"):
        with Library(real_library) as library:
            blocks = synthesize(fwd, library, real_plan, 0, 11, "train")
            write_hdf5_shard(tmp_path / name, blocks, 48, 500, 75, 2, {"n_regions": 994})
        digests.append((tmp_path / name).read_bytes())
    assert digests[0] == digests[1]


def test_synthesize_shard_is_synthesis_streamed_into_a_shard(
    real_anatomy, real_library, real_plan, tmp_path
):
    fwd = real_anatomy.leadfield
    with Library(real_library) as library:
        blocks = synthesize(fwd, library, real_plan, 5, 11, "test", label_pad=-3)
        write_hdf5_shard(tmp_path / "direct.h5", blocks, 48, 500, 75, 2, {})
        for name in ("a.h5", "b.h5"):
            synthesize_shard(tmp_path / name, fwd, library, real_plan, 5, 11, "test", label_pad=-3)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    with h5py.File(tmp_path / "direct.h5") as direct, h5py.File(tmp_path / "a.h5") as shard:
        for key in direct:
            np.testing.assert_array_equal(shard[key][()], direct[key][()])
        assert dict(shard.attrs) == {
            "n_regions": 994, "n_channels": 75, "split": "test", "seed": 11, "noise": True,
            "label_pad": -3, "first_index": 5,
        }  # fmt: skip

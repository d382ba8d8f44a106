"""Sample plans (docs/eeg-chain.md §5) and DeepSIF's loader format."""

from __future__ import annotations

from collections import deque

import h5py
import numpy as np
import pytest
import scipy.io

from conftest import CLIP_REGIONS
from spikeforge.core.errors import InputError
from spikeforge.eeg.export.deepsif import (
    import_deepsif_plan,
    write_deepsif_clips,
    write_deepsif_metadata,
)
from spikeforge.eeg.library import Library
from spikeforge.eeg.plan import PlanConfig, generate_plan
from spikeforge.eeg.synthesis import synthesize


def _connected(regions, neighbours):
    regions = set(int(r) for r in regions)
    start = next(iter(regions))
    seen, queue = {start}, deque([start])
    while queue:
        for v in neighbours[queue.popleft()]:
            if int(v) in regions and int(v) not in seen:
                seen.add(int(v))
                queue.append(int(v))
    return seen == regions


def test_patches_and_weights(real_anatomy, real_plan):
    sigma = 0.8493 * real_plan.attrs["point_05_mm"]
    assert 40 <= real_plan.attrs["point_05_mm"] <= 60
    for i in range(real_plan.n_samples):
        # Region-major: each centre region leads samples_per_region (4) consecutive samples.
        assert real_plan.centre[i, 0] == CLIP_REGIONS[i // 4]
        first = set(real_plan.patch_of(i, 0).tolist())
        second = set(real_plan.patch_of(i, 1).tolist())
        assert not first & second
        for k in range(2):
            patch = real_plan.patch_of(i, k)
            assert patch[0] == real_plan.centre[i, k]
            assert len(set(patch.tolist())) == patch.size <= 70
            assert np.all(real_plan.patch[i, k, patch.size :] == -1)
            assert _connected(patch, real_anatomy.neighbours)
            d = real_anatomy.distances[patch[0], patch]
            np.testing.assert_allclose(
                real_plan.weights_of(i, k), np.exp(-(d**2) / (2 * sigma**2)), rtol=1e-12
            )
            assert real_plan.weights_of(i, k)[0] == 1.0
    np.testing.assert_array_equal(real_plan.sensor_snr[:8], [5, 10, 15, 20, 5, 10, 15, 20])


def test_scale_ratio_reaches_target_source_snr(real_anatomy, real_library, real_plan):
    """Recompute the source-space SNR densely from the definition: the chosen ratio gives one
    of the target SNRs, and every stored ratio gives its own target."""
    fwd = real_anatomy.leadfield
    targets = real_plan.attrs["target_snrs_db"]
    with Library(real_library) as library:
        clips = np.stack([library.clip(r) for r in range(library.n_clips)])
    for i, k in [(0, 0), (7, 1), (21, 0), (46, 1)]:
        patch = real_plan.patch_of(i, k)
        clip = clips[real_plan.clip[i, k]].astype(np.float64)
        w = clip[:, patch[0]] / clip[:, patch[0]].max()
        peak = int(np.argmax(w))
        win = slice(max(0, peak - 100), min(500, peak + 101))
        signal = fwd[:, patch] @ np.outer(w, real_plan.weights_of(i, k)).T
        others = np.setdiff1d(np.arange(fwd.shape[1]), patch)
        background = fwd[:, others] @ clip[:, others].T

        def power(x, win=win):
            x = x[:, win]
            x = x - x.mean(axis=1, keepdims=True)
            return np.sum(x**2) / x.shape[1]

        ps, pn = power(signal), power(background)
        realised = 10 * np.log10(real_plan.scale_ratios[i, k] ** 2 * ps / pn)
        np.testing.assert_allclose(realised, targets, atol=1e-9)
        chosen = 10 * np.log10(real_plan.scale[i, k] ** 2 * ps / pn)
        assert np.min(np.abs(targets - chosen)) < 1e-9


def test_plan_is_seeded(real_anatomy, real_library):
    cfg = PlanConfig(n_samples=12, samples_per_region=1, centre_regions=CLIP_REGIONS)
    with Library(real_library) as library:
        a = generate_plan(real_anatomy, library, cfg, seed=3, split="test")
        b = generate_plan(real_anatomy, library, cfg, seed=3, split="test")
        c = generate_plan(real_anatomy, library, cfg, seed=4, split="test")
    np.testing.assert_array_equal(a.patch, b.patch)
    np.testing.assert_array_equal(a.scale, b.scale)
    assert not np.array_equal(a.scale, c.scale)


def test_disk_patches(real_anatomy, real_library):
    cfg = PlanConfig(
        n_samples=12,
        samples_per_region=1,
        centre_regions=CLIP_REGIONS,
        patch_method="disk",
        disk_radius_mm=15.0,
    )
    with Library(real_library) as library:
        plan = generate_plan(real_anatomy, library, cfg, seed=3, split="test")
    for i in range(12):
        patch = plan.patch_of(i, 0)
        expected = np.flatnonzero(real_anatomy.distances[patch[0]] <= 15.0)
        assert set(patch.tolist()) == set(expected.tolist()) or patch.size == 70


def test_region_without_clips_is_a_clear_error(real_anatomy, real_library):
    cfg = PlanConfig(n_samples=4, samples_per_region=1, centre_regions=(0, 1))
    with Library(real_library) as library, pytest.raises(InputError, match="region 1 has no"):
        generate_plan(real_anatomy, library, cfg, seed=3, split="test")


def deepsif_loader_sample(meta, nmm, fwd, index):
    """DeepSIF's SpikeEEGBuild.__getitem__ without noise, following its published code path."""
    raw_lb = meta["selected_region"][index].astype(int)
    lb = raw_lb[raw_lb < 15213]
    raw_nmm = np.zeros((500, fwd.shape[1]))
    for kk in range(raw_lb.shape[0]):
        curr_lb = raw_lb[kk, raw_lb[kk] < 15213]
        current_nmm = nmm[meta["nmm_idx"][index][kk]]
        ssig = current_nmm[:, [curr_lb[0]]]
        ssig = ssig / np.max(ssig) * meta["scale_ratio"][index][kk][0]
        weight_decay = meta["mag_change"][index][kk]
        weight_decay = weight_decay[weight_decay < 15213]
        current_nmm[:, curr_lb] = ssig.reshape(-1, 1) * weight_decay
        raw_nmm = raw_nmm + current_nmm
    eeg = np.matmul(fwd, raw_nmm.transpose()).transpose()
    eeg = eeg - np.mean(eeg, axis=0, keepdims=True)
    eeg = eeg - np.mean(eeg, axis=1, keepdims=True)
    eeg = eeg / np.max(np.abs(eeg))
    empty_nmm = np.zeros_like(raw_nmm)
    empty_nmm[:, lb] = raw_nmm[:, lb]
    return eeg.astype("float32"), (empty_nmm / np.max(empty_nmm)).astype("float32")


def test_deepsif_format_drives_deepsif_loader(real_anatomy, real_library, real_plan, tmp_path):
    fwd = real_anatomy.leadfield
    write_deepsif_metadata(real_plan, tmp_path / "train_sample_source1.mat")
    write_deepsif_clips(real_library, tmp_path / "train_sample_nmm.h5")
    meta = scipy.io.loadmat(tmp_path / "train_sample_source1.mat")
    n = real_plan.n_samples
    assert meta["selected_region"].shape == (n, 2, 70)
    assert meta["mag_change"].shape == (n, 2, 70)
    assert meta["scale_ratio"].shape == (n, 2, 1)
    assert meta["sensor_snr"].shape == (n, 1)
    assert meta["nmm_idx"].shape == (n, 2) and np.issubdtype(meta["nmm_idx"].dtype, np.integer)
    assert np.all(meta["selected_region"][0, 0, real_plan.patch_size[0, 0] :] == 15213)
    with Library(real_library) as library:
        ours = next(synthesize(fwd, library, real_plan, 0, 11, "train", add_noise=False))
    with h5py.File(tmp_path / "train_sample_nmm.h5") as f:
        nmm = f["data"]
        for i in (0, 9, 30, 47):
            eeg, source = deepsif_loader_sample(meta, nmm, fwd, i)
            np.testing.assert_allclose(ours.eeg[i], eeg, atol=1e-5)
            a, z = ours.source_ptr[i], ours.source_ptr[i + 1]
            np.testing.assert_allclose(
                source[:, ours.source_regions[a:z]], ours.source_timecourses[a:z].T, atol=1e-6
            )


def test_import_deepsif_metadata_reproduces_plan(real_anatomy, real_library, real_plan, tmp_path):
    write_deepsif_metadata(real_plan, tmp_path / "meta.mat")
    # The released script saves current_snr where the loader reads sensor_snr: accept both.
    meta = {k: v for k, v in scipy.io.loadmat(tmp_path / "meta.mat").items() if k[0] != "_"}
    meta["current_snr"] = meta.pop("sensor_snr")
    scipy.io.savemat(tmp_path / "meta_current.mat", meta)
    with Library(real_library) as library:
        for name in ("meta.mat", "meta_current.mat"):
            plan = import_deepsif_plan(tmp_path / name, library, 994, seed=11, split="train")
            np.testing.assert_array_equal(plan.patch, real_plan.patch)
            np.testing.assert_array_equal(plan.clip, real_plan.clip)
            np.testing.assert_allclose(plan.scale, real_plan.scale)
            np.testing.assert_allclose(plan.mag_change, real_plan.mag_change)
            np.testing.assert_allclose(plan.sensor_snr, real_plan.sensor_snr)


def test_plan_in_pieces_equals_plan_in_one(real_anatomy, real_library, real_plan, tmp_path):
    from spikeforge.eeg.plan import read_plan, write_plan

    cfg = PlanConfig(n_samples=48, samples_per_region=4, centre_regions=CLIP_REGIONS)
    with Library(real_library) as library:
        pieces = [
            generate_plan(real_anatomy, library, cfg, 11, "train", first, first + 20)
            for first in (0, 20, 40)
        ]
    write_plan(iter(pieces), tmp_path / "pieces.h5")
    write_plan(real_plan, tmp_path / "whole.h5")
    a, b = read_plan(tmp_path / "pieces.h5"), read_plan(tmp_path / "whole.h5")
    for name in ("centre", "patch", "patch_size", "mag_change", "clip", "scale", "sensor_snr"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(read_plan(tmp_path / "pieces.h5", 10, 30).clip, b.clip[10:30])

"""Sample plans (docs/eeg-chain.md §5) and DeepSIF's loader format."""

from __future__ import annotations

import zlib
from collections import deque

import h5py
import numpy as np
import pytest
import scipy.io

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


def test_patches_and_weights(eeg_case):
    anatomy, case_plan = eeg_case.anatomy, eeg_case.plan
    sigma = 0.8493 * case_plan.attrs["point_05_mm"]
    assert 40 <= case_plan.attrs["point_05_mm"] <= 60
    for i in range(case_plan.n_samples):
        # Region-major: each centre region leads samples_per_region (4) consecutive samples.
        assert case_plan.centre[i, 0] == eeg_case.regions[i // 4]
        first = set(case_plan.patch_of(i, 0).tolist())
        second = set(case_plan.patch_of(i, 1).tolist())
        assert not first & second
        for k in range(2):
            patch = case_plan.patch_of(i, k)
            assert patch[0] == case_plan.centre[i, k]
            assert len(set(patch.tolist())) == patch.size <= 70
            assert np.all(case_plan.patch[i, k, patch.size :] == -1)
            assert _connected(patch, anatomy.neighbours)
            d = anatomy.distances[patch[0], patch]
            np.testing.assert_allclose(
                case_plan.weights_of(i, k), np.exp(-(d**2) / (2 * sigma**2)), rtol=1e-12
            )
            assert case_plan.weights_of(i, k)[0] == 1.0
    np.testing.assert_array_equal(case_plan.sensor_snr[:8], [5, 10, 15, 20, 5, 10, 15, 20])


def test_scale_ratio_reaches_target_source_snr(eeg_case):
    """Recompute the source-space SNR densely from the definition: the chosen ratio gives one
    of the target SNRs, and every stored ratio gives its own target."""
    anatomy, library_path, case_plan = eeg_case.anatomy, eeg_case.library, eeg_case.plan
    fwd = anatomy.leadfield
    targets = case_plan.attrs["target_snrs_db"]
    with Library(library_path) as library:
        clips = np.stack([library.clip(r) for r in range(library.n_clips)])
    for i, k in [(0, 0), (7, 1), (21, 0), (46, 1)]:
        patch = case_plan.patch_of(i, k)
        clip = clips[case_plan.clip[i, k]].astype(np.float64)
        w = clip[:, patch[0]] / clip[:, patch[0]].max()
        peak = int(np.argmax(w))
        win = slice(max(0, peak - 100), min(500, peak + 101))
        signal = fwd[:, patch] @ np.outer(w, case_plan.weights_of(i, k)).T
        others = np.setdiff1d(np.arange(fwd.shape[1]), patch)
        background = fwd[:, others] @ clip[:, others].T

        def power(x, win=win):
            x = x[:, win]
            x = x - x.mean(axis=1, keepdims=True)
            return np.sum(x**2) / x.shape[1]

        ps, pn = power(signal), power(background)
        realised = 10 * np.log10(case_plan.scale_ratios[i, k] ** 2 * ps / pn)
        np.testing.assert_allclose(realised, targets, atol=1e-9)
        chosen = 10 * np.log10(case_plan.scale[i, k] ** 2 * ps / pn)
        assert np.min(np.abs(targets - chosen)) < 1e-9


def test_plan_is_seeded(eeg_case):
    anatomy, library_path = eeg_case.anatomy, eeg_case.library
    cfg = PlanConfig(n_samples=12, samples_per_region=1, centre_regions=eeg_case.regions)
    with Library(library_path) as library:
        a = generate_plan(anatomy, library, cfg, seed=3, split="test")
        b = generate_plan(anatomy, library, cfg, seed=3, split="test")
        c = generate_plan(anatomy, library, cfg, seed=4, split="test")
    np.testing.assert_array_equal(a.patch, b.patch)
    np.testing.assert_array_equal(a.scale, b.scale)
    assert not np.array_equal(a.scale, c.scale)


def test_disk_patches(eeg_case):
    anatomy, library_path = eeg_case.anatomy, eeg_case.library
    cfg = PlanConfig(
        n_samples=12,
        samples_per_region=1,
        centre_regions=eeg_case.regions,
        patch_method="disk",
        disk_radius_mm=15.0,
    )
    with Library(library_path) as library:
        plan = generate_plan(anatomy, library, cfg, seed=3, split="test")
    for i in range(12):
        patch = plan.patch_of(i, 0)
        expected = np.flatnonzero(anatomy.distances[patch[0]] <= 15.0)
        assert set(patch.tolist()) == set(expected.tolist()) or patch.size == 70


def test_disk_includes_regions_at_the_radius(eeg_case):
    """A disk of radius r holds every region at graph distance <= r, the boundary included."""
    from spikeforge.eeg.plan import disk_patch

    distances = eeg_case.anatomy.distances
    centre = eeg_case.regions[0]
    radius = float(np.sort(distances[centre])[6])  # the sixth-nearest region sits on the rim
    expected = {v for v in range(len(distances)) if distances[centre, v] <= radius}
    assert disk_patch(centre, eeg_case.anatomy, radius) == expected
    assert len(expected) >= 7


def test_region_without_clips_is_a_clear_error(eeg_case):
    anatomy, library_path = eeg_case.anatomy, eeg_case.library
    cfg = PlanConfig(n_samples=4, samples_per_region=1, centre_regions=(0, 1))
    with Library(library_path) as library, pytest.raises(InputError, match="region 1 has no"):
        generate_plan(anatomy, library, cfg, seed=3, split="test")


def deepsif_loader_sample(meta, nmm, fwd, index, pick=None):
    """DeepSIF's SpikeEEGBuild.__getitem__ without noise, following its published code path;
    `pick(ratios, source)` stands for its random choice of a source's scale ratio."""
    raw_lb = meta["selected_region"][index].astype(int)
    lb = raw_lb[raw_lb < 15213]
    raw_nmm = np.zeros((500, fwd.shape[1]))
    for kk in range(raw_lb.shape[0]):
        curr_lb = raw_lb[kk, raw_lb[kk] < 15213]
        current_nmm = nmm[meta["nmm_idx"][index][kk]]
        ssig = current_nmm[:, [curr_lb[0]]]
        ratios = meta["scale_ratio"][index][kk]
        ssig = ssig / np.max(ssig) * (ratios[0] if pick is None else pick(ratios, kk))
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


def test_deepsif_format_drives_deepsif_loader(eeg_case, tmp_path):
    anatomy, library_path, case_plan = eeg_case.anatomy, eeg_case.library, eeg_case.plan
    fwd = anatomy.leadfield
    write_deepsif_metadata(case_plan, tmp_path / "train_sample_source1.mat")
    write_deepsif_clips(library_path, tmp_path / "train_sample_nmm.h5")
    meta = scipy.io.loadmat(tmp_path / "train_sample_source1.mat")
    n = case_plan.n_samples
    assert meta["selected_region"].shape == (n, 2, 70)
    assert meta["mag_change"].shape == (n, 2, 70)
    # every target SNR's ratio, so the loader's random pick varies the amplitude per epoch
    assert meta["scale_ratio"].shape == (n, 2, 6)
    np.testing.assert_array_equal(meta["scale_ratio"], case_plan.scale_ratios)
    assert np.all(np.diff(meta["scale_ratio"], axis=2) > 0)  # higher SNR, larger source
    assert meta["sensor_snr"].shape == (n, 1)
    assert meta["nmm_idx"].shape == (n, 2) and np.issubdtype(meta["nmm_idx"].dtype, np.integer)
    assert np.all(meta["selected_region"][0, 0, case_plan.patch_size[0, 0] :] == 15213)
    with Library(library_path) as library:
        ours = next(synthesize(fwd, library, case_plan, 0, 11, "train", add_noise=False))
    with h5py.File(tmp_path / "train_sample_nmm.h5") as f:
        nmm = f["data"]
        for i in (0, 9, 30, 47):
            # when the loader picks the ratio spikeforge chose, it makes spikeforge's sample
            chosen = lambda ratios, k, i=i: case_plan.scale[i, k]  # noqa: E731
            assert all(case_plan.scale[i, k] in meta["scale_ratio"][i, k] for k in (0, 1))
            eeg, source = deepsif_loader_sample(meta, nmm, fwd, i, pick=chosen)
            np.testing.assert_allclose(ours.eeg[i], eeg, atol=1e-5)
            a, z = ours.source_ptr[i], ours.source_ptr[i + 1]
            np.testing.assert_allclose(
                source[:, ours.source_regions[a:z]], ours.source_timecourses[a:z].T, atol=1e-6
            )


def literal_choice(seed: int, split: str, index: int, n_ratios: int) -> int:
    """The README's seed table: an imported plan's ratio choice is (seed, split, i, 0)."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(split.encode()), index, 0])
    return int(np.random.default_rng(sequence).integers(n_ratios))


def deepsif_metadata_by_hand(plan, n_ratios: int = 4) -> dict:
    """A metadata file as DeepSIF's script saves it (float arrays, padding 15213, several
    scale ratios, `current_snr`), written here without spikeforge's writer."""
    n, s = plan.centre.shape
    selected = np.full((n, s, 70), 15213.0)
    mag = np.full((n, s, 70), 15213.0)
    for i in range(n):
        for k in range(s):
            size = plan.patch_size[i, k]
            selected[i, k, :size] = plan.patch[i, k, :size]
            mag[i, k, :size] = plan.mag_change[i, k, :size]
    ratios = 1.0 + np.arange(n)[:, None, None] + 10.0 * np.arange(s)[None, :, None]
    ratios = ratios + 100.0 * np.arange(n_ratios)[None, None, :]
    return {
        "selected_region": selected,
        "mag_change": mag,
        "scale_ratio": ratios,
        "nmm_idx": plan.clip.astype(np.float64),  # the released script saves floats
        "current_snr": plan.sensor_snr[:, None].astype(np.float64),
    }


def test_import_deepsif_metadata(eeg_case, tmp_path):
    """Patches, weights, clips and SNRs as stored; one of several ratios per sample, chosen by
    the documented seed (the same for every source of a sample, spanning the choices)."""
    plan = eeg_case.plan
    meta = deepsif_metadata_by_hand(plan)
    scipy.io.savemat(tmp_path / "meta.mat", meta)
    with Library(eeg_case.library) as library:
        imported = import_deepsif_plan(
            tmp_path / "meta.mat", library, eeg_case.anatomy.n_regions, seed=11, split="train"
        )
    np.testing.assert_array_equal(imported.patch, plan.patch)
    np.testing.assert_array_equal(imported.patch_size, plan.patch_size)
    np.testing.assert_array_equal(imported.centre, plan.centre)
    np.testing.assert_array_equal(imported.clip, plan.clip)
    np.testing.assert_allclose(imported.mag_change, plan.mag_change)
    np.testing.assert_allclose(imported.sensor_snr, plan.sensor_snr)
    np.testing.assert_array_equal(imported.scale_ratios, meta["scale_ratio"])
    choices = [literal_choice(11, "train", i, 4) for i in range(plan.n_samples)]
    assert len(set(choices)) > 1
    for i, j in enumerate(choices):
        np.testing.assert_array_equal(imported.scale[i], meta["scale_ratio"][i, :, j])


def test_import_deepsif_single_source_and_errors(eeg_case, tmp_path):
    plan = eeg_case.plan
    meta = deepsif_metadata_by_hand(plan, n_ratios=1)
    n = plan.n_samples
    single = dict(
        meta, selected_region=meta["selected_region"][:, 0], mag_change=meta["mag_change"][:, 0],
        scale_ratio=meta["scale_ratio"][:, :1], nmm_idx=meta["nmm_idx"][:, :1],
    )  # fmt: skip
    scipy.io.savemat(tmp_path / "single.mat", single)
    n_regions = eeg_case.anatomy.n_regions
    with Library(eeg_case.library) as library:
        imported = import_deepsif_plan(tmp_path / "single.mat", library, n_regions, 11, "train")
        assert imported.patch.shape == (n, 1, 70) and imported.n_sources == 1
        np.testing.assert_array_equal(imported.patch[:, 0], plan.patch[:, 0])
        np.testing.assert_array_equal(imported.scale[:, 0], meta["scale_ratio"][:, 0, 0])
        n_clips = library.n_clips
        no_region = meta["selected_region"].copy()
        no_region[2, 1] = 15213
        broken = {
            "no nmm_idx": ({k: v for k, v in meta.items() if k != "nmm_idx"},
                           "[nmm_idx]: variable missing from DeepSIF metadata"),
            "no snr": ({k: v for k, v in meta.items() if k != "current_snr"},
                       "[sensor_snr]: variable missing (neither sensor_snr nor current_snr)"),
            "fractional clip": (dict(meta, nmm_idx=meta["nmm_idx"] + 0.5),
                                f"[nmm_idx]: clip rows must be integers in 0..{n_clips - 1}"),
            "clip past the library": (dict(meta, nmm_idx=meta["nmm_idx"] * 0 + n_clips),
                                      f"[nmm_idx]: clip rows must be integers in 0..{n_clips - 1}"),
            "region past the head": (dict(meta, selected_region=np.where(
                meta["selected_region"] == 15213, 15213, n_regions)),
                "[selected_region]: sample 0 source 0: bad region ids"),
            "source without regions": (dict(meta, selected_region=no_region),
                                       "[selected_region]: sample 2 source 1: bad region ids"),
            "snr count": (dict(meta, current_snr=np.ones((3, 1))), "[current_snr]: 3 SNRs for"),
        }  # fmt: skip
        for name, (variables, message) in broken.items():
            path = tmp_path / f"{name}.mat"
            scipy.io.savemat(path, variables)
            with pytest.raises(InputError) as error:
                import_deepsif_plan(path, library, n_regions, 11, "train")
            assert str(error.value).startswith(f"{path} {message}"), name


def test_import_deepsif_one_snr_one_region_sources(eeg_case, tmp_path):
    """One SNR for every sample; a source of one region; integer-typed indices and provenance
    (source file, seed, split) in the written plan."""
    from spikeforge.eeg.plan import read_plan, write_plan

    plan = eeg_case.plan
    meta = deepsif_metadata_by_hand(plan)
    meta["current_snr"] = np.array([[7.5]])
    meta["selected_region"][1, 0, 1:] = 15213
    scipy.io.savemat(tmp_path / "meta.mat", meta)
    with Library(eeg_case.library) as library:
        imported = import_deepsif_plan(
            tmp_path / "meta.mat", library, eeg_case.anatomy.n_regions, seed=11, split="test"
        )
    np.testing.assert_array_equal(imported.sensor_snr, np.full(plan.n_samples, 7.5))
    assert imported.patch_size[1, 0] == 1 and imported.patch[1, 0, 0] == plan.centre[1, 0]
    assert (imported.patch[1, 0, 1:] == -1).all()
    for name in ("centre", "patch", "patch_size", "clip"):
        assert getattr(imported, name).dtype.kind == "i", name
    write_plan(imported, tmp_path / "plan.h5")
    attrs = read_plan(tmp_path / "plan.h5").attrs
    assert attrs["source"] == str(tmp_path / "meta.mat")
    assert (attrs["seed"], attrs["split"], attrs["patch_method"]) == (11, "test", "imported")
    assert np.isnan(attrs["point_05_mm"]) and attrs["target_snrs_db"].size == 0
    two = {k: v[:2] for k, v in meta.items() if k != "current_snr"}
    scipy.io.savemat(tmp_path / "two.mat", dict(two, sensor_snr=np.array([[7.5]])))
    with Library(eeg_case.library) as library:
        imported = import_deepsif_plan(
            tmp_path / "two.mat", library, eeg_case.anatomy.n_regions, seed=11, split="test"
        )
    np.testing.assert_array_equal(imported.sensor_snr, [7.5, 7.5])


def test_plan_in_pieces_equals_plan_in_one(eeg_case, tmp_path):
    from spikeforge.eeg.plan import read_plan, write_plan

    anatomy, library_path, case_plan = eeg_case.anatomy, eeg_case.library, eeg_case.plan
    cfg = PlanConfig(n_samples=48, samples_per_region=4, centre_regions=eeg_case.regions)
    with Library(library_path) as library:
        pieces = [
            generate_plan(anatomy, library, cfg, 11, "train", first, first + 20)
            for first in (0, 20, 40)
        ]
    write_plan(iter(pieces), tmp_path / "pieces.h5")
    write_plan(case_plan, tmp_path / "whole.h5")
    a, b = read_plan(tmp_path / "pieces.h5"), read_plan(tmp_path / "whole.h5")
    for name in ("centre", "patch", "patch_size", "mag_change", "clip", "scale", "sensor_snr"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(read_plan(tmp_path / "pieces.h5", 10, 30).clip, b.clip[10:30])


def literal_grow(centre, neighbours, centres, n_layers, rng):
    """docs/eeg-chain.md §5 patch growth and smoothing, one region at a time."""

    def around(region):
        return [int(v) for v in neighbours[region]]

    patch = {centre, *around(centre)}
    added = patch - {centre}
    v = rng.standard_normal(3)
    direction = v / np.sqrt(v @ v)
    for _layer in range(2, n_layers + 1):
        candidates = sorted({u for a in added for u in around(a)} - patch)
        if not candidates:
            break
        draws = rng.random(len(candidates))
        added = set()
        for region, draw in zip(candidates, draws, strict=True):
            offset = centres[region] - centres[centre]
            length = np.sqrt(offset @ offset)
            cosine = offset @ direction / length if length > 0 else 0.0
            if draw < (1 + cosine) / 2:
                added.add(region)
        patch |= added
    for region in sorted({u for p in patch for u in around(p)} - patch):
        inside = sum(u in patch for u in around(region))
        if len(around(region)) > 1 and inside >= len(around(region)) - 1:
            patch.add(region)
    for region in sorted(patch - {centre}):
        if sum(u in patch for u in around(region)) == 1:
            patch.discard(region)
    return patch


def test_plan_rows_follow_the_documented_draws(eeg_case):
    """Every row of the case's plan (grow patches, 2 sources, 6 targets) rebuilt from §5 and the
    README's seed table: one generator per row, (seed, split, row, 0), drawing per source
    [its centre (sources after the first, redrawn while patches overlap)], the number of
    layers, the direction, one uniform per candidate and layer, the clip, the target SNR."""
    anatomy, plan, regions = eeg_case.anatomy, eeg_case.plan, eeg_case.regions
    beyond_first_layer = 0
    with Library(eeg_case.library) as library:
        for i in range(plan.n_samples):
            sequence = np.random.SeedSequence([11, zlib.crc32(b"train"), i, 0])
            rng = np.random.default_rng(sequence)
            used = set()
            for k in range(2):
                for _attempt in range(50):
                    if k == 0:
                        centre = regions[(i // 4) % len(regions)]
                    else:
                        centre = regions[int(rng.integers(len(regions)))]
                    layers = int(rng.choice([2, 3]))
                    grown = literal_grow(centre, anatomy.neighbours, anatomy.centres, layers, rng)
                    others = sorted(grown - {centre}, key=lambda r, c=centre: (
                        anatomy.distances[c, r], r))  # fmt: skip
                    patch = [centre, *others[:69]]
                    if k == 0 or used.isdisjoint(patch):
                        break
                used |= set(patch)
                assert plan.patch_of(i, k).tolist() == patch, (i, k)
                rows = library.clips_of(centre)
                assert plan.clip[i, k] == rows[int(rng.integers(len(rows)))]
                target = int(rng.integers(6))
                assert plan.scale[i, k] == plan.scale_ratios[i, k, target]
                beyond_first_layer += len(grown) > 1 + len(anatomy.neighbours[centre])
    assert beyond_first_layer > 0
    sequence = np.random.SeedSequence([11, zlib.crc32(b"train"), 0, 2])  # drawn once per split
    point_05 = np.random.default_rng(sequence).uniform(40.0, 60.0)
    assert plan.attrs["point_05_mm"] == point_05
    assert {k: plan.attrs[k] for k in ("seed", "split", "source", "patch_method")} == {
        "seed": 11, "split": "train", "source": "generated", "patch_method": "grow"
    }  # fmt: skip
    np.testing.assert_array_equal(plan.attrs["target_snrs_db"], [10, 12, 14, 16, 18, 20])


def test_plan_select_and_config_from_settings(eeg_case):
    import dataclasses

    from spikeforge.eeg.plan import Plan

    plan = eeg_case.plan
    part = plan.select(5, 9)
    for field in dataclasses.fields(Plan):
        if field.name == "attrs":
            assert part.attrs == plan.attrs and part.attrs is not plan.attrs
        else:
            np.testing.assert_array_equal(getattr(part, field.name), getattr(plan, field.name)[5:9])
    settings = {"n_samples": 4, "grow_layers": [2], "target_snrs_db": [10, 15],
                "centre_regions": [1, 2], "patch_method": "disk"}  # fmt: skip
    assert PlanConfig.from_settings(settings) == PlanConfig(
        4, grow_layers=(2,), target_snrs_db=(10, 15), centre_regions=(1, 2), patch_method="disk"
    )


def test_patch_order_width_and_snr_window():
    from spikeforge.eeg.plan import order_patch, snr_window

    distances = np.abs(np.arange(120)[:, None] - np.arange(120)[None, :]).astype(float)
    ordered = order_patch(set(range(120)), 60, distances)
    assert ordered.size == 70 and ordered.dtype == np.int32
    assert ordered[:5].tolist() == [60, 59, 61, 58, 62]  # by distance, ties by id
    early, late = np.zeros(500), np.zeros(500)
    early[50], late[450] = 1.0, 1.0
    assert snr_window(early) == slice(0, 151) and snr_window(late) == slice(350, 500)


def test_centre_regions_are_checked(demo_case, tmp_path):
    """Configured centres must be region ids; without a list, the regions with clips are the
    centres, even when only one region has any."""
    from spikeforge.core.seeding import rng
    from spikeforge.eeg.library import build_library, mock_clip
    from spikeforge.io.mat import save_mat

    anatomy = demo_case.anatomy
    with Library(demo_case.library) as library:
        for bad in [(), (3, anatomy.n_regions), (-1, 3)]:
            with pytest.raises(InputError) as error:
                generate_plan(anatomy, library, PlanConfig(4, centre_regions=bad), 1, "train")
            assert str(error.value) == "plan.centre_regions: must be region ids in 0..199"
    clip = mock_clip(anatomy.n_regions, 7, rng(7, "test", 7, 1))
    save_mat(tmp_path / "clips" / "a7" / "nmm_1.mat", {"data": clip})
    build_library(tmp_path / "clips", anatomy.leadfield, tmp_path / "one.h5")
    with Library(tmp_path / "one.h5") as library:
        plan = generate_plan(anatomy, library, PlanConfig(3, n_sources=1), 1, "train")
    assert plan.centre[:, 0].tolist() == [7, 7, 7]


def test_held_out_clips_keep_the_splits_apart(demo_case):
    """held_out_clips 0.5 with 2 clips a region: the test split draws only each region's
    second clip, the training split only its first; without it both draw from both."""
    anatomy = demo_case.anatomy
    with Library(demo_case.library) as library:
        first_clip = {library.clips_of(r)[0] for r in demo_case.regions}

        def clips(split: str, held_out: float) -> set[int]:
            cfg = PlanConfig(n_samples=96, samples_per_region=8, held_out_clips=held_out,
                             use_held_out=split == "test")  # fmt: skip
            return set(generate_plan(anatomy, library, cfg, 5, split).clip.ravel().tolist())

        assert clips("train", 0.5) == first_clip
        assert clips("test", 0.5) == {row + 1 for row in first_clip}
        assert clips("train", 0.0) & clips("test", 0.0) - first_clip  # shared without it
        one_clip = PlanConfig(n_samples=4, held_out_clips=0.5, centre_regions=(0,))
        with pytest.raises(InputError, match="held_out_clips: region 0 has 1 clip"):
            library_one = Library(demo_case.library)
            try:
                rows = range(library_one.clips_of(0).start, library_one.clips_of(0).start + 1)
                library_one.clips_of = lambda region: rows  # a region with one clip
                generate_plan(anatomy, library_one, one_clip, 5, "train")
            finally:
                library_one.close()

"""The fused simulate -> clips job (spikeforge.eeg.simulated_clips) against the existing
extraction reading the raw layout of the same simulated signal, on DeepSIF's real 998-region
connectivity with its fsaverage remap."""

from __future__ import annotations

import filecmp
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from spikeforge.eeg.clips import Detection, process_region, write_region_clips
from spikeforge.eeg.library import clip_info_path
from spikeforge.eeg.raw import (
    Decimator,
    Preprocessing,
    connectivity_region,
    decimated_chunks,
    decimated_row_ends,
)
from spikeforge.eeg.simulated_clips import simulate_region_clips
from spikeforge.io.mat import save_mat

CONNECTIVITY = (
    Path(__file__).resolve().parents[2] / "shared/data/deepsif/anatomy/connectivity_998.zip"
)
FWD = np.random.default_rng(3).standard_normal((16, 994))
DETECTION = {"threshold_mv": 8.0, "target_snr_db": 15.0}


def needs_simulation():
    if importlib.util.find_spec("numba") is None:
        pytest.skip("numba not installed")
    if not CONNECTIVITY.is_file():
        pytest.skip(f"{CONNECTIVITY} not found (../shared/data absent)")


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("n_raw", "chunk_raw", "prep"),
    [
        (9000, 2000, Preprocessing()),
        (9001, 1999, Preprocessing(burn_in=7, factor=3)),
        (5000, 700, Preprocessing(decimation="antialias")),
        (800, 300, Preprocessing(burn_in=1000)),
        (4100, 4100, Preprocessing(burn_in=0, factor=1, decimation="antialias")),
    ],
)
def test_row_ends_are_where_the_file_reader_ends_its_pieces(tmp_path, n_raw, chunk_raw, prep):
    """decimated_row_ends against decimated_chunks itself on real chunk files."""
    data = np.random.default_rng(0).standard_normal((n_raw, 3)).astype(np.float32)
    paths = []
    for k, start in enumerate(range(0, n_raw, chunk_raw)):
        paths.append(tmp_path / f"c{k}.mat")
        save_mat(paths[-1], {"data": data[start : start + chunk_raw]})
    pieces = [rows.shape[0] for rows in decimated_chunks(paths, prep)]
    assert decimated_row_ends(n_raw, chunk_raw, prep) == list(np.cumsum(pieces))


def test_decimator_rows_do_not_depend_on_the_pieces_it_is_fed():
    data = np.random.default_rng(1).standard_normal((7000, 4)).astype(np.float32)
    for prep in (Preprocessing(), Preprocessing(decimation="antialias", burn_in=13)):
        outputs = []
        for piece in (7000, 1000, 333):
            decimator = Decimator(prep)
            rows = [decimator.push(data[i : i + piece]) for i in range(0, 7000, piece)]
            rows.append(decimator.finish())
            outputs.append(np.concatenate([r for r in rows if r is not None]))
        assert outputs[0].shape == ((7000 - prep.burn_in + 3) // 4, 4)
        for other in outputs[1:]:
            np.testing.assert_array_equal(other, outputs[0])


def test_remapped_regions_spike_in_the_column_that_becomes_them():
    assert [connectivity_region(r, True) for r in (7, 325, 921, 949, 100)] == [
        994, 997, 996, 995, 100,
    ]  # fmt: skip
    assert connectivity_region(7, False) == 7


@pytest.mark.parametrize(("decimation", "seconds"), [("take", 24.0), ("antialias", 12.0)])
def test_fused_clips_equal_the_extraction_from_the_raw_layout(tmp_path, decimation, seconds):
    """One job: regions 100 and 7 (a remapped one) x 3 noise settings on DeepSIF's
    connectivity, the raw layout written too. extract_clips' code path on that layout gives
    byte-identical clips and provenance; the spiking region fires and region 7 gets clips."""
    needs_simulation()
    prep = {"burn_in": 1000, "factor": 4, "decimation": decimation, "fsaverage_remap": True}
    batch = tmp_path / "batch"
    counts = simulate_region_clips(
        CONNECTIVITY, [100, 7], [0, 1, 2], FWD, prep, DETECTION, batch, seconds, seed=11,
        write_raw=True, chunk_s=4.0,
    )  # fmt: skip
    assert counts[100] >= 3 and counts[7] >= 3, counts
    assert not (batch / ".decimated").exists()
    raw = sorted(p.name for p in (batch / "raw_nmm" / "a7").iterdir())
    assert raw == sorted(f"mean_iter_{m}_a_iter_7_{k}.mat" for m in range(3)
                         for k in range(int(seconds / 4)))  # fmt: skip
    for region in (100, 7):
        reference = tmp_path / "reference"
        write_region_clips(
            region,
            lambda on_clip, region=region: process_region(
                batch / "raw_nmm", region, [0, 1, 2], FWD, Preprocessing(**prep), Detection(),
                on_clip=on_clip, expected_chunks=int(seconds / 4),
            ),
            reference / f"a{region}",
            clip_info_path(reference, region),
        )  # fmt: skip
        names = sorted(p.name for p in (reference / f"a{region}").iterdir())
        assert len(names) == counts[region]
        assert sorted(p.name for p in (batch / f"a{region}").iterdir()) == names
        for name in names:
            assert filecmp.cmp(reference / f"a{region}" / name, batch / f"a{region}" / name, False)
        assert filecmp.cmp(clip_info_path(reference, region), clip_info_path(batch, region), False)


def test_a_rebuilt_job_is_byte_identical_and_a_region_does_not_depend_on_its_job(tmp_path):
    """The same job twice gives the same bytes; region 100 simulated alone (another batch
    size, so another compiled kernel) gives the same clips as beside region 7."""
    needs_simulation()
    prep = {"burn_in": 1000, "factor": 4, "decimation": "take", "fsaverage_remap": True}
    args = ([0, 2], FWD, prep, DETECTION)
    simulate_region_clips(
        CONNECTIVITY, [100, 7], *args, tmp_path / "first", 12.0, seed=4, chunk_s=4.0
    )
    simulate_region_clips(
        CONNECTIVITY, [100, 7], *args, tmp_path / "again", 12.0, seed=4, chunk_s=4.0
    )
    simulate_region_clips(CONNECTIVITY, [100], *args, tmp_path / "alone", 12.0, seed=4, chunk_s=4.0)
    first = tree_digest(tmp_path / "first")
    assert any(name.startswith("a100/nmm_") for name in first)
    assert tree_digest(tmp_path / "again") == first
    alone = tree_digest(tmp_path / "alone")
    assert alone == {k: v for k, v in first.items() if "a100" in k}
    simulate_region_clips(
        CONNECTIVITY, [100], *args, tmp_path / "other_seed", 12.0, seed=5, chunk_s=4.0
    )
    assert tree_digest(tmp_path / "other_seed") != alone


def test_wrong_connectivity_width_is_named(tmp_path):
    needs_simulation()
    prep = {"burn_in": 1000, "factor": 4, "decimation": "take", "fsaverage_remap": False}
    with pytest.raises(ValueError, match="connectivity has 998 regions, the leadfield 994"):
        simulate_region_clips(CONNECTIVITY, [1], [0], FWD, prep, DETECTION, tmp_path / "b",
                              1.0, seed=1)  # fmt: skip
    assert not (tmp_path / "b").exists()

"""TVB Jansen-Rit simulation in DeepSIF's raw layout, on the real 76-region connectivity."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from spikeforge.core.errors import InputError
from spikeforge.eeg.tvb import connectivity_regions, simulate_region
from spikeforge.io.mat import load_mat

ANATOMY = Path(__file__).resolve().parents[2] / "shared" / "data" / "deepsif" / "anatomy"
CONNECTIVITY_76 = ANATOMY / "connectivity_76.zip"

# ~1 s per 0.5 s run of 76 regions, plus ~3 s to import TVB (numba compiles JansenRit).
pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("tvb") is None,
        reason="tvb-library not installed (pip install -e .[tvb])",
    ),
]

DURATION_S = 0.5
CHUNK_S = 0.25
# TVB's Raw monitor returns one sample per 0.5 ms step and not the initial state:
# 0.25 s = 500 steps -> times 0.5, 1.0, ..., 250.0 ms, then 250.5 ... 500.0 ms.
SAMPLES_PER_CHUNK = 500


@pytest.fixture(scope="module")
def connectivity() -> Path:
    if not CONNECTIVITY_76.is_file():
        pytest.skip(f"real TVB connectivity not found at {CONNECTIVITY_76} (../shared/data absent)")
    return CONNECTIVITY_76


@pytest.fixture(scope="module")
def runs(connectivity, tmp_path_factory):
    """Spiking regions 0 and 1 (iteration 0, seed 0) into one folder."""
    out = tmp_path_factory.mktemp("raw_nmm")
    paths = {
        region: simulate_region(
            connectivity, region, 0, out, duration_s=DURATION_S, chunk_s=CHUNK_S, seed=0
        )
        for region in (0, 1)
    }
    return out, paths


def test_connectivity_regions(connectivity):
    assert connectivity_regions(connectivity) == 76
    big = connectivity.with_name("connectivity_998.zip")
    if big.is_file():
        assert connectivity_regions(big) == 998


def test_layout_keys_shapes(runs):
    out, paths = runs
    for region in (0, 1):
        expected = [out / f"a{region}" / f"mean_iter_0_a_iter_{region}_{k}.mat" for k in (0, 1)]
        assert paths[region] == expected
        assert all(p.is_file() for p in expected)
    assert sorted(p.name for p in out.rglob("*")) == [
        "a0",
        "a1",
        "mean_iter_0_a_iter_0_0.mat",
        "mean_iter_0_a_iter_0_1.mat",
        "mean_iter_0_a_iter_1_0.mat",
        "mean_iter_0_a_iter_1_1.mat",
    ], "no temporary files left behind"

    for region in (0, 1):
        chunks = [load_mat(p) for p in paths[region]]
        for chunk in chunks:
            assert set(chunk) == {"data", "time", "A"}
            assert chunk["data"].shape == (SAMPLES_PER_CHUNK, 76)
            assert chunk["data"].dtype == np.float32
            assert chunk["time"].shape == (1, SAMPLES_PER_CHUNK)
            assert chunk["time"].dtype == np.float64
            a = chunk["A"].ravel()
            assert a.shape == (76,)
            assert a[region] == 3.5
            assert np.all(np.delete(a, region) == 3.25)
            assert np.isfinite(chunk["data"]).all()

        time = np.concatenate([c["time"].ravel() for c in chunks])
        np.testing.assert_allclose(time, 0.5 * np.arange(1, 2 * SAMPLES_PER_CHUNK + 1))

        # The first ~0.25 s is the transient from TVB's random initial history (thousands of mV);
        # afterwards y1 - y2 stays in the Jansen-Rit range of a few to ~15 mV.
        assert np.abs(chunks[0]["data"]).max() < 1e5
        settled = chunks[1]["data"]
        assert -50 < settled.min() and settled.max() < 50
        assert settled.std() > 0.01, "noise-driven activity, not a flat line"


def test_spiking_region_is_where_a_acts(connectivity, tmp_path, monkeypatch):
    """With the noise and the initial history shared (one noise seed for both runs), spiking
    region 0 and spiking region 1 differ only in where A = 3.5 sits: for the first 25 ms
    (shorter than any coupling delay) exactly those two regions' traces differ."""
    import spikeforge.eeg.tvb as tvb

    monkeypatch.setattr(tvb, "noise_seed", lambda seed, region, iteration: 12345)
    first = {
        region: load_mat(
            simulate_region(connectivity, region, 0, tmp_path / f"r{region}",
                            duration_s=DURATION_S, chunk_s=CHUNK_S, seed=0)[0]
        )["data"][:50]
        for region in (0, 1)
    }  # fmt: skip
    differs = np.abs(first[0].astype(np.float64) - first[1]) > 1e-4
    assert np.flatnonzero(differs.any(axis=0)).tolist() == [0, 1]
    assert differs[:, 0].all() and differs[:, 1].all()


def test_same_seed_is_byte_identical_other_seed_differs(runs, connectivity, tmp_path):
    _, paths = runs
    again = simulate_region(
        connectivity, 0, 0, tmp_path / "same", duration_s=DURATION_S, chunk_s=CHUNK_S, seed=0
    )
    for first, second in zip(paths[0], again, strict=True):
        assert first.read_bytes() == second.read_bytes()

    other = simulate_region(
        connectivity, 0, 0, tmp_path / "other", duration_s=DURATION_S, chunk_s=CHUNK_S, seed=1
    )
    for first, second in zip(paths[0], other, strict=True):
        assert not np.array_equal(load_mat(first)["data"], load_mat(second)["data"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spiking_region": 76}, "out of range"),
        ({"spiking_region": -1}, "out of range"),
        ({"iteration": 3}, "iteration"),
        ({"chunk_s": 0.3}, "whole chunks"),
        ({"chunk_s": 0.0001}, "whole number"),
        ({"duration_s": 0}, "whole number"),
        ({"seed": -1}, "seed"),
    ],
)
def test_validation(connectivity, tmp_path, kwargs, message):
    args = {"spiking_region": 0, "iteration": 0, "duration_s": 0.5, "chunk_s": 0.25, "seed": 0}
    args.update(kwargs)
    with pytest.raises(InputError, match=message):
        simulate_region(connectivity, out_dir=tmp_path, **args)
    assert not any(tmp_path.iterdir())

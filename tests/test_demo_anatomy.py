"""The demo head model: DeepSIF file layout, a sound region graph, a physically sane leadfield."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest
import scipy.io

from spikeforge.eeg.demo_anatomy import write_demo_anatomy

N_REGIONS = 200
N_CHANNELS = 75
NAMES = ("leadfield.mat", "region_mapping.mat", "centres.mat")


def _write(folder: Path, **kwargs) -> list[Path]:
    paths = [folder / "anatomy" / name for name in NAMES]
    write_demo_anatomy(*paths, **kwargs)
    return paths


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Default demo files, loaded back with plain scipy (not the project's own reader)."""
    paths = _write(tmp_path_factory.mktemp("demo"))
    lf = scipy.io.loadmat(paths[0])
    nbs = scipy.io.loadmat(paths[1])["nbs"]
    centre = scipy.io.loadmat(paths[2])["centre"]
    names = [str(np.asarray(cell).ravel()[0]) for cell in lf["channel_names"].ravel()]
    neighbours = [np.asarray(cell, dtype=np.float64).ravel() for cell in nbs.ravel()]
    return {
        "paths": paths,
        "fwd": lf["fwd"],
        "names": names,
        "nbs": nbs,
        "neighbours": neighbours,
        "centre": centre,
    }


@pytest.fixture(scope="module")
def geometry(demo):
    """Sphere fitted to the region centres, and electrode directions from its centre.

    Electrode positions come straight from MNE's montage (head coordinates, mm), independent
    of the module's sphere fit.
    """
    centre = demo["centre"]
    # Algebraic least-squares sphere: |x|^2 = 2 x.o + (r^2 - |o|^2).
    design = np.column_stack([2.0 * centre, np.ones(len(centre))])
    solution = np.linalg.lstsq(design, (centre**2).sum(axis=1), rcond=None)[0]
    origin = solution[:3]
    radius = float(np.sqrt(solution[3] + origin @ origin))

    montage = mne.channels.make_standard_montage(
        "colin27_1005" if "colin27_1005" in mne.channels.get_builtin_montages() else "standard_1005"
    )
    info = mne.create_info(demo["names"], 1000.0, "eeg")
    info.set_montage(montage)
    electrodes = np.array([ch["loc"][:3] for ch in info["chs"]]) * 1000.0
    directions = electrodes - origin
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    dipoles = (centre - origin) / np.linalg.norm(centre - origin, axis=1, keepdims=True)
    return {"origin": origin, "radius": radius, "electrodes": directions, "dipoles": dipoles}


def test_files_have_deepsif_layout(demo):
    assert demo["fwd"].shape == (N_CHANNELS, N_REGIONS)
    assert demo["fwd"].dtype == np.float64
    assert demo["nbs"].shape == (1, N_REGIONS) and demo["nbs"].dtype == object
    for cell in demo["nbs"].ravel():
        assert cell.ndim == 2 and cell.shape[0] == 1 and cell.shape[1] >= 1
        ids = cell.ravel()
        assert np.all(ids == np.round(ids)) and ids.min() >= 1 and ids.max() <= N_REGIONS
    assert demo["centre"].shape == (N_REGIONS, 3) and demo["centre"].dtype == np.float64
    assert len(demo["names"]) == N_CHANNELS and len(set(demo["names"])) == N_CHANNELS
    assert {"Fp1", "Fz", "Cz", "Pz", "Oz", "T7", "T8"} <= set(demo["names"])
    for path in demo["paths"]:
        assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_project_reader_accepts_the_files(demo):
    from spikeforge.eeg.anatomy import load_anatomy

    anatomy = load_anatomy(*demo["paths"])
    assert anatomy.leadfield.shape == (N_CHANNELS, N_REGIONS)
    assert len(anatomy.neighbours) == N_REGIONS
    assert np.all(np.isfinite(anatomy.distances))  # the region graph is connected


def test_neighbours_symmetric_and_at_least_three(demo):
    neighbours = [{int(i) - 1 for i in ids} for ids in demo["neighbours"]]
    for region, nb in enumerate(neighbours):
        assert region not in nb
        assert len(nb) >= 3
        for other in nb:
            assert region in neighbours[other]


def test_neighbours_are_geometrically_close(demo):
    centre = demo["centre"]
    dist = np.linalg.norm(centre[:, None] - centre[None], axis=2)
    pairs = [(r, int(i) - 1) for r, ids in enumerate(demo["neighbours"]) for i in ids]
    neighbour_dist = np.array([dist[a, b] for a, b in pairs])
    median_all = np.median(dist[np.triu_indices(N_REGIONS, 1)])
    assert neighbour_dist.mean() < 0.3 * median_all
    np.fill_diagonal(dist, np.inf)
    nearest = dist.argmin(axis=1)
    # The triangulation contains each region's nearest region...
    assert all(nearest[r] + 1 in demo["neighbours"][r] for r in range(N_REGIONS))
    # ...and no long edge (evenly spread lattice: edges within 2x the closest spacing).
    assert neighbour_dist.max() < 2.0 * dist.min(axis=1).min()


def test_centres_on_cortex_like_shell(demo, geometry):
    radial = np.linalg.norm(demo["centre"] - geometry["origin"], axis=1)
    np.testing.assert_allclose(radial, geometry["radius"], rtol=1e-6)
    # Plausible adult cortex: shell radius 55-80 mm, top of the sphere kept, bottom dropped.
    assert 55.0 < geometry["radius"] < 80.0
    height = geometry["dipoles"][:, 2]
    assert height.max() > 0.95 and -0.35 < height.min() < -0.2


def test_leadfield_finite_nonzero_and_deepsif_scale(demo):
    fwd = demo["fwd"]
    assert np.all(np.isfinite(fwd))
    assert np.all(np.abs(fwd).max(axis=0) > 0)
    assert 50.0 < fwd.std() < 200.0


def test_top_dipole_drives_vertex_more_than_side_dipole(demo, geometry):
    fwd, names, dipoles = demo["fwd"], demo["names"], geometry["dipoles"]
    cz = names.index("Cz")
    top = int(np.argmax(dipoles[:, 2]))
    lateral = np.abs(dipoles[:, 0]) * (np.abs(dipoles[:, 2]) < 0.3)
    side = int(np.argmax(lateral))
    assert dipoles[top, 2] > 0.95 and abs(dipoles[side, 0]) > 0.9
    near_side = names.index("T8" if dipoles[side, 0] > 0 else "T7")
    vertex_area = {"Cz", "C1", "C2", "FCz", "CPz", "FC1", "FC2", "CP1", "CP2"}
    assert names[int(np.argmax(np.abs(fwd[:, top])))] in vertex_area
    assert abs(fwd[cz, top]) > 3.0 * abs(fwd[cz, side])
    assert abs(fwd[near_side, side]) > 3.0 * abs(fwd[cz, side])


def test_radial_dipole_peaks_under_nearest_electrodes(demo, geometry):
    fwd = demo["fwd"]
    cosine = geometry["dipoles"] @ geometry["electrodes"].T  # R x C
    closest3 = np.argsort(-cosine, axis=1)[:, :3]
    peak = np.argmax(np.abs(fwd), axis=0)
    for region in range(0, N_REGIONS, 25):  # a fixed handful spread over the shell
        assert peak[region] in closest3[region], region
        # An outward radial dipole makes the scalp above it positive.
        assert fwd[peak[region], region] > 0
    # Electrodes are not exactly on a sphere, so allow a few misses overall.
    hits = np.mean([peak[r] in closest3[r] for r in range(N_REGIONS)])
    assert hits >= 0.95


def test_byte_identical_reruns_and_seed_changes_lattice(demo, tmp_path):
    again = _write(tmp_path / "a")
    for first, second in zip(demo["paths"], again, strict=True):
        assert first.read_bytes() == second.read_bytes()
    other = _write(tmp_path / "b", seed=1)
    centre_other = scipy.io.loadmat(other[2])["centre"]
    assert centre_other.shape == (N_REGIONS, 3)
    assert not np.allclose(centre_other, demo["centre"])


def test_small_model_and_bad_sizes(tmp_path):
    paths = _write(tmp_path, n_regions=30, n_channels=21)
    assert scipy.io.loadmat(paths[0])["fwd"].shape == (21, 30)
    assert scipy.io.loadmat(paths[1])["nbs"].shape == (1, 30)
    with pytest.raises(ValueError, match="n_channels"):
        write_demo_anatomy(*[tmp_path / "x" / n for n in NAMES], n_channels=1000)
    with pytest.raises(ValueError, match="n_regions"):
        write_demo_anatomy(*[tmp_path / "x" / n for n in NAMES], n_regions=2)
    assert not (tmp_path / "x").exists()

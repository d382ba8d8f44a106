"""Reading head models: MATLAB v5 and v7.3, key choice, validation, graph distances."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io

from spikeforge.core.errors import InputError
from spikeforge.eeg.anatomy import graph_distances, load_anatomy, load_leadfield, load_neighbours


def write_v73(path, variables):
    """A MATLAB v7.3 file as MATLAB writes it: 512-byte header, column-major datasets,
    cell arrays as object references into #refs#."""
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        for name, value in variables.items():
            if value.dtype == object:
                ref_array = np.empty(value.shape[::-1], dtype=h5py.ref_dtype)
                for index, cell in np.ndenumerate(value):
                    ds = refs.create_dataset(f"{name}_{len(refs)}", data=np.asarray(cell).T)
                    ref_array[index[::-1]] = ds.ref
                f.create_dataset(name, data=ref_array)
            else:
                f.create_dataset(name, data=value.T)
    with open(path, "r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116, b" "))


def ring_graph(n):
    cells = np.empty((1, n), dtype=object)
    for r in range(n):
        cells[0, r] = np.array([[(r - 1) % n + 1, (r + 1) % n + 1]], dtype=np.float64)
    return cells


def test_v73_and_v5_leadfields_read_the_same(tmp_path):
    fwd = np.random.default_rng(0).standard_normal((6, 9))
    scipy.io.savemat(tmp_path / "v5.mat", {"fwd": fwd})
    write_v73(tmp_path / "v73.mat", {"fwd": fwd})
    np.testing.assert_array_equal(load_leadfield(tmp_path / "v5.mat"), fwd)
    np.testing.assert_array_equal(load_leadfield(tmp_path / "v73.mat"), fwd)


def test_v73_neighbour_cells(tmp_path):
    write_v73(tmp_path / "rm.mat", {"nbs": ring_graph(7)})
    neighbours = load_neighbours(tmp_path / "rm.mat", 7)
    assert [sorted(nb.tolist()) for nb in neighbours] == [
        sorted([(r - 1) % 7, (r + 1) % 7]) for r in range(7)
    ]


def test_leadfield_key_order_and_explicit_key(tmp_path):
    a, b = np.ones((3, 4)), np.zeros((3, 4))
    scipy.io.savemat(tmp_path / "two.mat", {"L": b, "forward": a})
    np.testing.assert_array_equal(load_leadfield(tmp_path / "two.mat"), a)  # forward before L
    np.testing.assert_array_equal(load_leadfield(tmp_path / "two.mat", key="L"), b)
    with pytest.raises(InputError, match=r"\[gain\]: variable not found"):
        load_leadfield(tmp_path / "two.mat", key="gain")
    scipy.io.savemat(tmp_path / "none.mat", {"gain": a})
    with pytest.raises(InputError, match="expected one of fwd, forward, leadfield, L"):
        load_leadfield(tmp_path / "none.mat")


def test_bad_leadfields(tmp_path):
    bad = np.ones((3, 4))
    bad[1, 2] = np.nan
    scipy.io.savemat(tmp_path / "nan.mat", {"fwd": bad})
    with pytest.raises(InputError, match="non-finite.*channel 1, region 2"):
        load_leadfield(tmp_path / "nan.mat")
    (tmp_path / "corrupt.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(300))
    with pytest.raises(InputError, match="corrupt.mat: not a readable MATLAB file"):
        load_leadfield(tmp_path / "corrupt.mat")
    with pytest.raises(InputError, match="file not found"):
        load_leadfield(tmp_path / "absent.mat")


def test_neighbour_validation_and_symmetrisation(tmp_path):
    cells = ring_graph(5)
    cells[0, 0] = np.array([[2, 3]], dtype=np.float64)  # one-way edge 1 -> 3 (1-based)
    scipy.io.savemat(tmp_path / "rm.mat", {"nbs": cells})
    neighbours = load_neighbours(tmp_path / "rm.mat", 5)
    assert 0 in neighbours[2].tolist()  # made two-way
    with pytest.raises(InputError, match="5 regions, the leadfield has 6"):
        load_neighbours(tmp_path / "rm.mat", 6)
    cells[0, 1] = np.array([[0, 3]], dtype=np.float64)  # 0 is not a 1-based id
    scipy.io.savemat(tmp_path / "bad.mat", {"nbs": cells})
    with pytest.raises(InputError, match="region 2 are not 1-based ids"):
        load_neighbours(tmp_path / "bad.mat", 5)


def test_graph_distances_equal_floyd_warshall():
    gen = np.random.default_rng(1)
    n = 12
    centres = gen.uniform(0, 50, (n, 3))
    edges = {(i, (i + 1) % n) for i in range(n)} | {(0, 6), (3, 9), (2, 7)}
    neighbours = [set() for _ in range(n)]
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    neighbours = tuple(np.array(sorted(s)) for s in neighbours)
    expected = np.full((n, n), np.inf)
    np.fill_diagonal(expected, 0)
    for a, b in edges:
        expected[a, b] = expected[b, a] = np.linalg.norm(centres[a] - centres[b])
    for k in range(n):
        expected = np.minimum(expected, expected[:, [k]] + expected[[k], :])
    np.testing.assert_allclose(graph_distances(neighbours, centres), expected)


def test_distance_file_shape_is_checked(tmp_path):
    scipy.io.savemat(tmp_path / "fwd.mat", {"fwd": np.ones((3, 5))})
    scipy.io.savemat(tmp_path / "rm.mat", {"nbs": ring_graph(5)})
    scipy.io.savemat(tmp_path / "c.mat", {"centre": np.arange(15.0).reshape(5, 3)})
    scipy.io.savemat(tmp_path / "d.mat", {"dis": np.ones((4, 4))})
    with pytest.raises(InputError, match=r"d.mat \[dis\]: distance matrix must be 5 x 5"):
        load_anatomy(
            tmp_path / "fwd.mat", tmp_path / "rm.mat", tmp_path / "c.mat", tmp_path / "d.mat"
        )
    anatomy = load_anatomy(tmp_path / "fwd.mat", tmp_path / "rm.mat", tmp_path / "c.mat")
    assert anatomy.distances.shape == (5, 5) and np.all(np.diag(anatomy.distances) == 0)

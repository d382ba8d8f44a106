"""Head model inputs: leadfield, region graph (neighbours + centres) and region distances."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_path
from spikeforge.io.hdf5 import open_hdf5
from spikeforge.io.mat import list_mat_keys, load_mat

LEADFIELD_KEYS = ("fwd", "forward", "leadfield", "L")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Anatomy:
    """Everything synthesis needs of the head: C x R leadfield and the R-region graph."""

    leadfield: np.ndarray  # (C, R) float64
    neighbours: tuple[np.ndarray, ...]  # R arrays of 0-based region ids
    centres: np.ndarray  # (R, 3) float64, mm
    distances: np.ndarray  # (R, R) float64, mm

    @cached_property
    def neighbour_lists(self) -> tuple[tuple[int, ...], ...]:
        """The neighbours as Python ints: set arithmetic on them runs in C (patch growth)."""
        return tuple(tuple(nb.tolist()) for nb in self.neighbours)

    @property
    def n_channels(self) -> int:
        return int(self.leadfield.shape[0])

    @property
    def n_regions(self) -> int:
        return int(self.leadfield.shape[1])


def load_leadfield(path: str | Path, key: str | None = None) -> np.ndarray:
    """Read a C x R leadfield; without `key`, the first of fwd, forward, leadfield, L."""
    keys = list_mat_keys(path)
    if key is None:
        found = [k for k in LEADFIELD_KEYS if k in keys]
        if not found:
            raise InputError(
                path,
                f"no leadfield variable: expected one of {', '.join(LEADFIELD_KEYS)}, "
                f"found {', '.join(keys) or 'nothing'} (set eeg.anatomy.files.leadfield_key)",
            )
        key = found[0]
    elif key not in keys:
        raise InputError(path, f"variable not found; file has {', '.join(keys)}", key=key)
    value = np.asarray(load_mat(path, [key])[key])
    if value.ndim != 2 or not np.issubdtype(value.dtype, np.number):
        raise InputError(
            path, f"leadfield must be a numeric 2-D matrix, got {value.shape}", key=key
        )
    if not np.all(np.isfinite(value)):
        bad = np.argwhere(~np.isfinite(value))
        raise InputError(
            path,
            f"leadfield has {len(bad)} non-finite values (first at channel {bad[0][0]}, "
            f"region {bad[0][1]})",
            key=key,
        )
    return value.astype(np.float64)


def _load_array(path: str | Path, key: str) -> np.ndarray:
    keys = list_mat_keys(path)
    if key not in keys:
        raise InputError(path, f"variable not found; file has {', '.join(keys)}", key=key)
    return load_mat(path, [key])[key]


def load_neighbours(path: str | Path, n_regions: int, key: str = "nbs") -> tuple[np.ndarray, ...]:
    """DeepSIF's `nbs`: a 1 x R cell of 1-based neighbour lists -> 0-based arrays."""
    cells = np.asarray(_load_array(path, key), dtype=object).ravel()
    if cells.size != n_regions:
        raise InputError(
            path, f"region graph has {cells.size} regions, the leadfield has {n_regions}", key=key
        )
    neighbours = []
    for region, cell in enumerate(cells):
        ids = np.asarray(cell, dtype=np.float64).ravel()
        if ids.size and (np.any(ids != np.round(ids)) or ids.min() < 1 or ids.max() > n_regions):
            raise InputError(
                path,
                f"neighbours of region {region + 1} are not 1-based ids in 1..{n_regions}",
                key=key,
            )
        neighbours.append(ids.astype(np.int64) - 1)
    return symmetrise(neighbours)


def symmetrise(neighbours: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Adjacency as an undirected graph without self-loops.

    DeepSIF's real `nbs` lists 212 one-way pairs; a one-way edge would let a patch grow into a
    region that does not touch it back, so both directions are kept.
    """
    sets = [set(nb.tolist()) for nb in neighbours]
    for region, nb in enumerate(neighbours):
        for other in nb.tolist():
            sets[other].add(region)
    return tuple(np.array(sorted(s - {r}), dtype=np.int64) for r, s in enumerate(sets))


def load_centres(path: str | Path, n_regions: int, key: str = "centre") -> np.ndarray:
    centres = np.asarray(_load_array(path, key), dtype=np.float64)
    if centres.shape != (n_regions, 3):
        raise InputError(
            path, f"region centres must be {n_regions} x 3, got {centres.shape}", key=key
        )
    if not np.all(np.isfinite(centres)):
        raise InputError(path, "region centres contain non-finite values", key=key)
    return centres


def graph_distances(neighbours: tuple[np.ndarray, ...], centres: np.ndarray) -> np.ndarray:
    """Shortest paths on the neighbour graph, edges weighted by centre-to-centre distance."""
    n = len(neighbours)
    rows = np.concatenate([np.full(len(nb), i) for i, nb in enumerate(neighbours)])
    cols = np.concatenate(neighbours) if n else np.array([], dtype=np.int64)
    weights = np.linalg.norm(centres[rows] - centres[cols], axis=1)
    # A zero-length edge would vanish from the sparse matrix; keep it as a tiny positive weight.
    weights = np.maximum(weights, 1e-9)
    import scipy.sparse.csgraph  # here: synthesis jobs import this module but never need it

    graph = scipy.sparse.csr_matrix((weights, (rows, cols)), shape=(n, n))
    return scipy.sparse.csgraph.dijkstra(graph, directed=False)


def load_distances(path: str | Path, n_regions: int, key: str | None = None) -> np.ndarray:
    keys = list_mat_keys(path)
    if key is None:
        if len(keys) != 1:
            raise InputError(path, f"several variables ({', '.join(keys)}): set the key")
        key = keys[0]
    dist = np.asarray(_load_array(path, key), dtype=np.float64)
    if dist.shape != (n_regions, n_regions):
        raise InputError(
            path, f"distance matrix must be {n_regions} x {n_regions}, got {dist.shape}", key=key
        )
    if not np.all(np.isfinite(dist)) or np.any(dist < 0):
        raise InputError(path, "distance matrix has negative or non-finite values", key=key)
    return dist


def load_anatomy(
    leadfield_path: str | Path,
    region_mapping_path: str | Path,
    centres_path: str | Path,
    distance_path: str | Path | None = None,
    leadfield_key: str | None = None,
    neighbours_key: str = "nbs",
    centres_key: str = "centre",
    distances_key: str | None = None,
) -> Anatomy:
    leadfield = load_leadfield(leadfield_path, leadfield_key)
    n_regions = leadfield.shape[1]
    neighbours = load_neighbours(region_mapping_path, n_regions, neighbours_key)
    centres = load_centres(centres_path, n_regions, centres_key)
    if distance_path:
        distances = load_distances(distance_path, n_regions, distances_key)
    else:
        distances = graph_distances(neighbours, centres)
    return Anatomy(leadfield, neighbours, centres, distances)


def write_anatomy(anatomy: Anatomy, path: str | Path) -> None:
    """Consolidate the validated anatomy into one HDF5 file that later stages read."""
    offsets = np.cumsum([0] + [len(nb) for nb in anatomy.neighbours])
    flat = np.concatenate(anatomy.neighbours) if anatomy.neighbours else np.zeros(0)
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as out:
        out["leadfield"] = anatomy.leadfield
        out["neighbours"] = flat.astype(np.int32)
        out["neighbour_offsets"] = offsets.astype(np.int64)
        out["centres"] = anatomy.centres
        out["distances"] = anatomy.distances


def consolidate_anatomy(
    out_path: str | Path,
    leadfield: str | Path,
    region_mapping: str | Path,
    centres: str | Path,
    distances: str | Path | None = None,
    **keys: str | None,
) -> Anatomy:
    """The anatomy job: read and validate the head model files (`keys`: load_anatomy's
    variable names), write them as one HDF5 file."""
    anatomy = load_anatomy(leadfield, region_mapping, centres, distances, **keys)
    log.info("leadfield %d channels x %d regions", anatomy.n_channels, anatomy.n_regions)
    write_anatomy(anatomy, out_path)
    return anatomy


def read_anatomy(path: str | Path) -> Anatomy:
    with open_hdf5(path, "head model (anatomy.h5)") as src:
        flat = src["neighbours"][()].astype(np.int64)
        offsets = src["neighbour_offsets"][()]
        neighbours = tuple(flat[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True))
        return Anatomy(src["leadfield"][()], neighbours, src["centres"][()], src["distances"][()])

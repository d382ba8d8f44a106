"""A small, realistic demo EEG head model, written in DeepSIF's anatomy file layout.

`write_demo_anatomy` builds everything from data shipped with MNE-Python (no download):

* electrodes: the first `n_channels` names of `CHANNEL_ORDER`, positioned by MNE's built-in
  10-05 montage (`standard_1005`, renamed `colin27_1005` in MNE 1.13; same file);
* head: a concentric-sphere conductor (`mne.make_sphere_model`, MNE's default relative
  radii and conductivities) whose centre and radius are fitted to those electrodes;
* sources: one radial dipole per region on a cortex-like shell of radius
  `SHELL_RELATIVE_RADIUS` x head radius, evenly spread by a golden-spiral (Fibonacci) lattice
  with the bottom of the sphere (relative height below `BOTTOM_CUTOFF`) left out;
* region graph: the edges of the lattice's triangulation (its convex hull) among kept points.

The three MATLAB v5 files it writes are what `spikeforge.eeg.anatomy.load_anatomy` reads for
DeepSIF's real anatomy:

* leadfield file: `fwd` (C x R float64) and `channel_names` (C x 1 cell of strings);
* region mapping file: `nbs`, a 1 x R cell whose entries are 1 x k arrays of 1-based ids;
* centres file: `centre`, R x 3 float64, millimetres (MNE head coordinates).

The output is deterministic: the same arguments give byte-identical files (the MAT-file
header, which scipy stamps with the current time, is replaced by a fixed text).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial import ConvexHull

from spikeforge.core.seeding import rng
from spikeforge.io.mat import save_mat

# Electrode names in a fixed order chosen so that every prefix is a well-spread, left/right
# symmetric cap: first the 21 positions of the 10-20 system (with Fpz and Oz), then the other
# 40 positions of the 10-10 system (61 in all), then the inferior 10-10 ring, then a few more.
# The default of 75 channels is the 61 10-10 positions plus the 14 inferior-ring electrodes.
# fmt: off
CHANNEL_ORDER: tuple[str, ...] = (
    # 10-20 (21)
    "Fp1", "Fpz", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
    "P7", "P3", "Pz", "P4", "P8", "O1", "Oz", "O2",
    # rest of 10-10 (40)
    "AF7", "AF3", "AFz", "AF4", "AF8", "F5", "F1", "F2", "F6",
    "FT7", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "FT8",
    "C5", "C1", "C2", "C6",
    "TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "TP8",
    "P5", "P1", "P2", "P6", "PO7", "PO3", "POz", "PO4", "PO8",
    # inferior 10-10 ring (14)
    "F9", "F10", "T9", "T10", "P9", "P10", "FT9", "FT10", "TP9", "TP10",
    "PO9", "PO10", "AF9", "AF10",
    # further 10-05 positions (11)
    "I1", "Iz", "I2", "AF5", "AF6", "PO5", "PO6", "AF1", "AF2", "PO1", "PO2",
)
# fmt: on

SHELL_RELATIVE_RADIUS = 0.7  # dipole shell radius / fitted head radius
BOTTOM_CUTOFF = -0.3  # keep lattice points whose height (z / radius) is at least this

# MNE returns the gain in V per A·m, which is also µV per µA·m.  The demo writes the MNE gain
# times 2, i.e. the potential in µV of a 2 µA·m dipole: with the default 75 channels and 200
# regions its standard deviation is about 104 (about 52 unscaled), the magnitude of DeepSIF's
# real leadfield (std about 100), so source amplitudes tuned for DeepSIF give EEG of similar
# amplitude on the demo head.
LEADFIELD_SCALE = 2.0

_MIN_CHANNELS = 4  # the sphere fit needs at least four electrodes
_MIN_REGIONS = 4


def standard_montage():
    """MNE's built-in 10-05 montage, under its current name (no deprecation warning)."""
    import mne

    builtin = mne.channels.get_builtin_montages()
    kind = "colin27_1005" if "colin27_1005" in builtin else "standard_1005"
    return mne.channels.make_standard_montage(kind)


def _fibonacci_sphere(n_points: int, azimuth: float) -> np.ndarray:
    """`n_points` evenly spread unit vectors, ordered from top (z near 1) to bottom."""
    index = np.arange(n_points, dtype=np.float64)
    z = 1.0 - (2.0 * index + 1.0) / n_points
    ring = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    phi = azimuth + index * np.pi * (3.0 - np.sqrt(5.0))  # golden angle steps
    return np.column_stack([ring * np.cos(phi), ring * np.sin(phi), z])


def _shell_lattice(n_regions: int, azimuth: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals of the `n_regions` kept lattice points, and the full lattice.

    The lattice heights are evenly spaced and decreasing, so the kept points are the first
    ones; the number kept grows by 0 or 1 per added lattice point (by 0.65 on average), so
    the smallest lattice keeping exactly `n_regions` is found by counting up.
    """
    for n_points in range(n_regions, 2 * n_regions + 8):
        heights = 1.0 - (2.0 * np.arange(n_points) + 1.0) / n_points
        if np.count_nonzero(heights >= BOTTOM_CUTOFF) == n_regions:
            full = _fibonacci_sphere(n_points, azimuth)
            return full[:n_regions], full
    raise ValueError(f"no source lattice keeps exactly {n_regions} points")  # not expected


def _shell_neighbours(full: np.ndarray, n_kept: int) -> list[np.ndarray]:
    """Sorted 0-based neighbours of each kept point along the lattice's triangulation."""
    hull = ConvexHull(full)
    edges = set()
    for a, b, c in hull.simplices:
        for i, j in ((a, b), (b, c), (c, a)):
            if i < n_kept and j < n_kept:
                edges.add((min(i, j), max(i, j)))
    neighbours: list[list[int]] = [[] for _ in range(n_kept)]
    for i, j in sorted(edges):
        neighbours[i].append(int(j))
        neighbours[j].append(int(i))
    return [np.array(sorted(nb), dtype=np.int64) for nb in neighbours]


def _radial_leadfield(channel_names: list[str], normals: np.ndarray, radius_rel: float):
    """Fixed-orientation C x R gain (V per A·m) and dipole positions (m, head coordinates)."""
    import mne

    with mne.utils.use_log_level("ERROR"):
        info = mne.create_info(channel_names, sfreq=1000.0, ch_types="eeg", verbose=False)
        info.set_montage(standard_montage(), verbose=False)
        head_radius, centre, _ = mne.bem.fit_sphere_to_headshape(
            info, dig_kinds=("eeg",), units="m", verbose=False
        )
        sphere = mne.make_sphere_model(r0=centre, head_radius=head_radius, verbose=False)
        positions = np.asarray(centre, dtype=np.float64) + radius_rel * head_radius * normals
        src = mne.setup_volume_source_space(
            pos={"rr": positions, "nn": normals}, sphere=sphere, verbose=False
        )
        # trans=None: MRI and head coordinates coincide (identity), so the source positions
        # are in the electrodes' head coordinates.  No average-reference projector is added.
        fwd = mne.make_forward_solution(
            info, trans=None, src=src, bem=sphere, meg=False, eeg=True, n_jobs=1, verbose=False
        )
    if list(fwd["sol"]["row_names"]) != list(channel_names):
        raise RuntimeError("MNE reordered or dropped EEG channels in the forward solution")
    if fwd["nsource"] != len(normals):
        raise RuntimeError(f"MNE kept {fwd['nsource']} of {len(normals)} demo dipoles")
    gain = np.asarray(fwd["sol"]["data"], dtype=np.float64)  # C x 3R, x/y/z per dipole
    # Discrete (position-list) source spaces only get free-orientation forward solutions: MNE's
    # convert_forward_solution(force_fixed=True) needs a surface source space.  The gain is
    # linear in the dipole moment, so the fixed-orientation gain of dipole k is its three
    # Cartesian columns projected onto its unit normal.
    gain = gain.reshape(gain.shape[0], len(normals), 3)
    fixed = np.einsum("crk,rk->cr", gain, normals)
    return fixed, positions


def write_demo_anatomy(
    leadfield_path: str | Path,
    region_mapping_path: str | Path,
    centres_path: str | Path,
    n_regions: int = 200,
    n_channels: int = 75,
    seed: int = 0,
) -> None:
    """Write a demo head model (leadfield, region graph, region centres) as DeepSIF files.

    `n_channels` electrodes are the first names of `CHANNEL_ORDER`; `n_regions` radial dipoles
    (one per region) sit on a shell inside a fitted spherical head.  The leadfield is
    `LEADFIELD_SCALE` (2) x MNE's gain in V/(A·m), i.e. µV per 2 µA·m of dipole moment, with
    a standard deviation near 100 like DeepSIF's; centres are in millimetres.  `seed`
    rotates the source lattice about the vertical axis (electrodes and head do not depend on
    it); equal arguments give byte-identical files.
    """
    n_regions = int(n_regions)
    n_channels = int(n_channels)
    if not _MIN_CHANNELS <= n_channels <= len(CHANNEL_ORDER):
        raise ValueError(
            f"n_channels must be between {_MIN_CHANNELS} and {len(CHANNEL_ORDER)} "
            f"(the demo electrode list), got {n_channels}"
        )
    if n_regions < _MIN_REGIONS:
        raise ValueError(f"n_regions must be at least {_MIN_REGIONS}, got {n_regions}")

    # The root draw of the seeding scheme (no keys): the rotation of the source lattice.
    azimuth = float(rng(seed).uniform(0.0, 2.0 * np.pi))
    normals, full = _shell_lattice(n_regions, azimuth)
    neighbours = _shell_neighbours(full, n_regions)
    lonely = [i + 1 for i, nb in enumerate(neighbours) if nb.size == 0]
    if lonely:
        raise ValueError(f"n_regions={n_regions} leaves regions without neighbours: {lonely}")

    channel_names = list(CHANNEL_ORDER[:n_channels])
    gain, positions = _radial_leadfield(channel_names, normals, SHELL_RELATIVE_RADIUS)
    leadfield = np.ascontiguousarray(gain * LEADFIELD_SCALE, dtype=np.float64)
    centres = np.ascontiguousarray(positions * 1000.0, dtype=np.float64)  # m -> mm

    nbs = np.empty((1, n_regions), dtype=object)
    for region, nb in enumerate(neighbours):
        nbs[0, region] = (nb + 1).astype(np.float64).reshape(1, -1)  # 1-based, like MATLAB
    names = np.empty((n_channels, 1), dtype=object)
    for i, name in enumerate(channel_names):
        names[i, 0] = name

    # Everything is computed before the first file is written.
    save_mat(leadfield_path, {"fwd": leadfield, "channel_names": names})
    save_mat(region_mapping_path, {"nbs": nbs})
    save_mat(centres_path, {"centre": centres})

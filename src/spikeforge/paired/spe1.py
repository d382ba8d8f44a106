"""The SPE-1 dataset layout (Marques-Smith et al. 2018, CRCNS spe-1): per-cell folders of raw
binaries, the probe's channel map (Kilosort `chanMap.mat` or the dataset's own `npx_map.csv`)
and `Data Summary.xlsx`.

  Recordings/<cell>/<...>npx_raw.bin           int16 x 384 interleaved, 30 kHz, 2.34375 uV/count
  Recordings/<cell>/<...>patch_ch1.bin         float64 patch trace at the cell's patch rate
  Recordings/<cell>/<...>wc_spike_samples.npy  optional: patch-clock spike samples (ground truth)
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import probeinterface
import spikeinterface.core as sc

from spikeforge.core.errors import InputError
from spikeforge.io.mat import load_mat

log = logging.getLogger(__name__)

NPX_CHANNELS = 384
NPX_SAMPLING_HZ = 30_000.0
NPX_GAIN_UV = 2.34375  # uV per int16 count of the SPE-1 AP-band binaries
NPX_DTYPE = np.dtype("<i2")
DEFAULT_PATCH_RATE_HZ = 50_023.0  # the conversion's constant; the summary has per-cell rates
SPE1_DATASET = "Marques-Smith et al. (2018) — CRCNS spe-1"
SPE1_MODE = "spe1_paired_recording"

NPX_SUFFIX = "npx_raw.bin"
PATCH_SUFFIX = "patch_ch1.bin"
WC_SPIKE_SUFFIX = "wc_spike_samples.npy"

SUMMARY_CELL = "Cell"
SUMMARY_CHANNEL = "chan_predicted"
SUMMARY_PATCH_RATE = "Patch Samp. Freq. (Hz)"

# The 10 reference (not connected) channels of a Neuropixels Phase3A probe, as in Kilosort's
# neuropixPhase3A_kilosortChanMap.mat; the mock cells flatten them the same way.
PHASE3A_REFERENCE_CHANNELS = (36, 75, 112, 151, 188, 227, 264, 303, 340, 379)

# npx_map.csv is a schematic: one row per pair of sites (tip last), four site columns. Laid out
# with Neuropixels 1.0's pitch: columns 16 um apart from x = 11 um, rows 20 um apart.
NPX_MAP_X0_UM = 11.0
NPX_MAP_COLUMN_UM = 16.0
NPX_MAP_ROW_UM = 20.0


@dataclass(frozen=True)
class ChannelMap:
    """Probe geometry in recorded-channel order.

    locations: [n, 2] float32 (x, y) in um; row c is recorded channel c.
    connected: [n] bool; False for reference / unconnected sites (all True when the file has
               no `connected` variable).
    """

    locations: np.ndarray
    connected: np.ndarray
    path: str

    @property
    def n_channels(self) -> int:
        return int(self.locations.shape[0])


def _column(values: Any) -> np.ndarray:
    return np.asarray(values).reshape(-1)


def read_channel_map(
    path: str | Path, reference_channels: Sequence[int] | None = None
) -> ChannelMap:
    """The probe's channel map: a Kilosort `.mat` (read_kilosort_channel_map) or SPE-1's own
    `npx_map.csv` (read_npx_map_csv).

    `reference_channels` are marked unconnected in addition to the map's own `connected == 0`
    sites. The csv has no such flag: without `reference_channels` its unconnected sites are
    Neuropixels Phase3A's ten reference channels, the probe SPE-1 was recorded with.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        if reference_channels is None and _csv_channel_count(path) == NPX_CHANNELS:
            reference_channels = PHASE3A_REFERENCE_CHANNELS
        channel_map = read_npx_map_csv(path)
    else:
        channel_map = read_kilosort_channel_map(path)
    if not reference_channels:
        return channel_map
    channels = np.asarray(list(reference_channels), dtype=np.int64)
    if channels.min() < 0 or channels.max() >= channel_map.n_channels:
        raise InputError(
            "paired.spe1.reference_channels",
            f"channels must be in 0..{channel_map.n_channels - 1} ({path.name})",
        )
    connected = channel_map.connected.copy()
    connected[channels] = False
    return ChannelMap(channel_map.locations, connected, channel_map.path)


def _csv_channel_count(path: Path) -> int | None:
    try:
        return read_npx_map_csv(path).n_channels
    except InputError:
        return None


def read_npx_map_csv(path: str | Path) -> ChannelMap:
    """SPE-1's `npx_map.csv`: a grid of channel numbers (-1 where there is no site), one row
    per pair of sites with the tip in the last row, four site columns; CR, LF or CRLF line
    ends. Positions use Neuropixels 1.0's pitch (NPX_MAP_*); every site counts as connected.
    Raises InputError naming the file when it is not such a grid."""
    path = Path(path)
    expected = "a grid of channel numbers (each of 0..n-1 once, -1 where there is no site)"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable text file ({exc}); expected {expected}") from exc
    # splitlines takes CR (the dataset's own), LF and CRLF line ends alike.
    rows = [[cell.strip() for cell in line.split(",")] for line in text.splitlines()]
    rows = [row for row in rows if any(rows_cell for rows_cell in row)]
    try:
        grid = np.array([[int(cell) for cell in row] for row in rows], dtype=np.int64)
    except ValueError as exc:
        raise InputError(path, f"{exc}; expected {expected}") from exc
    if grid.ndim != 2 or grid.size == 0:
        raise InputError(path, f"rows of unequal length; expected {expected}")
    channels = grid[grid >= 0]
    n = channels.size
    if n == 0 or grid.min() < -1 or not np.array_equal(np.sort(channels), np.arange(n)):
        raise InputError(path, f"expected {expected}")
    n_rows = grid.shape[0]
    locations = np.zeros((n, 2), dtype=np.float32)
    row, column = np.nonzero(grid >= 0)
    order = grid[row, column]
    locations[order, 0] = NPX_MAP_X0_UM + NPX_MAP_COLUMN_UM * column
    locations[order, 1] = NPX_MAP_ROW_UM * (n_rows - row)
    return ChannelMap(locations=locations, connected=np.ones(n, dtype=bool), path=str(path))


def read_kilosort_channel_map(path: str | Path) -> ChannelMap:
    """Read a Kilosort channel map (.mat v5 or v7.3: xcoords, ycoords, optional chanMap0ind /
    chanMap, connected).

    Row i of xcoords / ycoords / connected describes recorded channel chanMap0ind[i] (or
    chanMap[i] - 1 when only the 1-based map is present); without either, row i is channel i.
    Raises InputError naming the file when coordinates are missing, of unequal length or not
    finite, or when the channel map is not a permutation of 0..n-1.
    """
    path = Path(path)
    data = load_mat(path)
    for key in ("xcoords", "ycoords"):
        if key not in data:
            raise InputError(
                path,
                f"no '{key}' variable: a Kilosort channel map (.mat) needs xcoords and "
                f"ycoords, or give SPE-1's npx_map.csv (variables found: "
                f"{', '.join(sorted(data)) or 'none'})",
                key=key,
            )
    x = _column(data["xcoords"]).astype(np.float64)
    y = _column(data["ycoords"]).astype(np.float64)
    if x.size == 0 or x.size != y.size:
        raise InputError(path, f"xcoords has {x.size} entries and ycoords {y.size}", key="ycoords")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError(path, "xcoords / ycoords contain NaN or Inf", key="xcoords")
    n = x.size

    if "chanMap0ind" in data:
        order, key = _column(data["chanMap0ind"]).astype(np.int64), "chanMap0ind"
    elif "chanMap" in data:
        order, key = _column(data["chanMap"]).astype(np.int64) - 1, "chanMap"
    else:
        order, key = np.arange(n), None
    if key is not None and (order.size != n or not np.array_equal(np.sort(order), np.arange(n))):
        raise InputError(path, f"'{key}' is not a permutation of the {n} channels", key=key)

    connected_rows = np.ones(n, dtype=bool)
    if "connected" in data:
        flags = _column(data["connected"])
        if flags.size != n:
            raise InputError(
                path, f"'connected' has {flags.size} entries, expected {n}", key="connected"
            )
        connected_rows = flags.astype(bool)

    locations = np.zeros((n, 2), dtype=np.float32)
    connected = np.ones(n, dtype=bool)
    locations[order, 0] = x
    locations[order, 1] = y
    connected[order] = connected_rows
    return ChannelMap(locations=locations, connected=connected, path=str(path))


def read_summary(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read the SPE-1 `Data Summary.xlsx` as {cell id: row}; rows without a Cell are skipped.

    Missing values (empty cells) become None. Raises InputError naming the file when it is
    missing, unreadable or has no `Cell` column.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        with warnings.catch_warnings():
            # openpyxl warns about Excel extensions it drops; they carry no data we use.
            warnings.simplefilter("ignore", UserWarning)
            frame = pd.read_excel(path)
    except Exception as exc:  # pandas/openpyxl raise many types for a corrupt file
        raise InputError(path, f"not a readable Excel file ({type(exc).__name__}: {exc})") from exc
    if SUMMARY_CELL not in frame.columns:
        raise InputError(path, f"no '{SUMMARY_CELL}' column", key=SUMMARY_CELL)
    summary: dict[str, dict[str, Any]] = {}
    for record in frame.to_dict(orient="records"):
        cell = record.get(SUMMARY_CELL)
        if _missing(cell):
            continue
        summary[str(cell).strip()] = {
            str(k): (None if _missing(v) else v) for k, v in record.items()
        }
    return summary


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


def summary_row(summary: Mapping[str, Mapping[str, Any]], cell_id: str) -> dict[str, Any] | None:
    """The summary row of `cell_id`, or None with a warning (the cell is processed without its
    summary location and with the default patch rate)."""
    row = summary.get(cell_id)
    if row is None:
        log.warning(
            "cell %s is not in the data summary: continuing without its electrode location "
            "(gt_electrode_chan_idx and unit_locations_um will be null)",
            cell_id,
        )
        return None
    return dict(row)


def patch_rate(row: Mapping[str, Any] | None) -> float:
    """The cell's patch sampling rate (Hz) from its summary row; 50,023 Hz with a warning when
    the row or the value is missing (the constant the original conversion used for every cell)."""
    value = None if row is None else row.get(SUMMARY_PATCH_RATE)
    if value is not None:
        try:
            rate = float(value)
        except (TypeError, ValueError):
            rate = float("nan")
        if math.isfinite(rate) and rate > 0:
            return rate
    cell = None if row is None else row.get(SUMMARY_CELL)
    log.warning(
        "no usable '%s' for cell %s: using %.1f Hz",
        SUMMARY_PATCH_RATE,
        cell if cell is not None else "(no summary row)",
        DEFAULT_PATCH_RATE_HZ,
    )
    return DEFAULT_PATCH_RATE_HZ


def summary_channel(row: Mapping[str, Any] | None) -> int | None:
    """The summary's `chan_predicted` (used, as in the original conversion, as a 0-based channel
    index), or None when the row or the value is missing."""
    value = None if row is None else row.get(SUMMARY_CHANNEL)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        log.warning("'%s' is not an integer (%r): ignored", SUMMARY_CHANNEL, value)
        return None


@dataclass(frozen=True)
class CellFiles:
    """The files of one SPE-1 cell folder; `patch` may be None only when `wc_spike` exists."""

    cell_dir: Path
    npx_raw: Path
    patch: Path | None
    wc_spike: Path | None


def find_cell_files(cell_dir: str | Path) -> CellFiles:
    """Find the files ending in npx_raw.bin, patch_ch1.bin and wc_spike_samples.npy.

    The Neuropixels binary is required. The patch trace is required unless
    wc_spike_samples.npy is present: those samples are the authoritative ground truth and the
    patch trace then only fixes the patch-to-Neuropixels length ratio, which the patch sampling
    rate also gives (see ground_truth_spikes). Raises InputError naming the folder and the
    missing (or ambiguous) file.
    """
    cell_dir = Path(cell_dir)
    if not cell_dir.is_dir():
        raise InputError(cell_dir, "cell folder not found")
    found: dict[str, list[Path]] = {NPX_SUFFIX: [], PATCH_SUFFIX: [], WC_SPIKE_SUFFIX: []}
    for entry in sorted(cell_dir.iterdir()):
        for suffix in found:
            if entry.name.endswith(suffix) and entry.is_file():
                found[suffix].append(entry)
    for suffix, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise InputError(cell_dir, f"several files end in {suffix} ({names}); keep one")
    npx = found[NPX_SUFFIX][0] if found[NPX_SUFFIX] else None
    patch = found[PATCH_SUFFIX][0] if found[PATCH_SUFFIX] else None
    wc = found[WC_SPIKE_SUFFIX][0] if found[WC_SPIKE_SUFFIX] else None
    if npx is None:
        raise InputError(cell_dir, f"missing the Neuropixels binary (*{NPX_SUFFIX})")
    if patch is None and wc is None:
        raise InputError(
            cell_dir, f"missing the patch trace (*{PATCH_SUFFIX}) and no *{WC_SPIKE_SUFFIX}"
        )
    return CellFiles(cell_dir=cell_dir, npx_raw=npx, patch=patch, wc_spike=wc)


def check_npx_binary(path: str | Path, n_channels: int = NPX_CHANNELS) -> int:
    """Number of samples of an interleaved int16 binary; InputError naming the file when it is
    missing, empty or not a whole number of n_channels x 2-byte frames."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    size = path.stat().st_size
    frame = n_channels * NPX_DTYPE.itemsize
    if size == 0 or size % frame:
        raise InputError(
            path,
            f"size {size:,} bytes is not a positive multiple of {n_channels} channels x "
            f"{NPX_DTYPE.itemsize} bytes ({frame} bytes per sample): truncated or not an "
            f"interleaved int16 {n_channels}-channel file",
        )
    return size // frame


def probe_from_channel_map(channel_map: ChannelMap) -> probeinterface.Probe:
    """A probeinterface Probe whose contact i is recorded channel i (12 um square sites)."""
    probe = probeinterface.Probe(ndim=2, si_units="um")
    probe.set_contacts(
        positions=channel_map.locations.astype(np.float64),
        shapes="square",
        shape_params={"width": 12.0},
    )
    probe.set_device_channel_indices(np.arange(channel_map.n_channels))
    return probe


def open_spe1_recording(npx_path: str | Path, channel_map: ChannelMap) -> sc.BaseRecording:
    """The SPE-1 Neuropixels binary as a SpikeInterface recording: int16, 384 channels
    interleaved, 30 kHz, 2.34375 uV per count, offset 0, with the channel map as its probe and
    a boolean `connected` channel property."""
    n_samples = check_npx_binary(npx_path)
    if channel_map.n_channels != NPX_CHANNELS:
        raise InputError(
            channel_map.path,
            f"has {channel_map.n_channels} channels but {Path(npx_path).name} has {NPX_CHANNELS}",
        )
    recording = sc.BinaryRecordingExtractor(
        file_paths=[str(npx_path)],
        sampling_frequency=NPX_SAMPLING_HZ,
        num_channels=NPX_CHANNELS,
        dtype=NPX_DTYPE.str,
        time_axis=0,
        gain_to_uV=NPX_GAIN_UV,
        offset_to_uV=0.0,
        is_filtered=False,
    )
    recording.set_probe(probe_from_channel_map(channel_map))
    recording.set_property("connected", channel_map.connected.copy())
    assert recording.get_num_samples() == n_samples
    return recording

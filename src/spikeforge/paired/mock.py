"""Mock paired cells in the SPE-1 layout, with known ground truth: SpikeInterface's
ground-truth generator on a Neuropixels 1.0 geometry, and a patch trace carrying one unit's
action potentials. Deterministic in (seed, cell id); written chunk by chunk, so memory does
not grow with the recording's length."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import spikeinterface.core as sc

from spikeforge.core import seeding
from spikeforge.core.files import atomic_directory, atomic_path, locked
from spikeforge.io.mat import save_mat
from spikeforge.paired.spe1 import (
    NPX_CHANNELS,
    NPX_DTYPE,
    NPX_GAIN_UV,
    NPX_SAMPLING_HZ,
    NPX_SUFFIX,
    PATCH_SUFFIX,
    PHASE3A_REFERENCE_CHANNELS,
    SUMMARY_CELL,
    SUMMARY_CHANNEL,
    SUMMARY_PATCH_RATE,
    WC_SPIKE_SUFFIX,
    ChannelMap,
    probe_from_channel_map,
)

MOCK_PATCH_RATE_HZ = 50_023.9


def np1_geometry(n_channels: int = NPX_CHANNELS) -> np.ndarray:
    """Neuropixels 1.0 site positions (um) in channel order: two sites per 20 um row, columns
    staggered at x = 43, 11, 59, 27 (the layout of Kilosort's Phase3A / 3B channel maps)."""
    index = np.arange(n_channels)
    x = np.array([43.0, 11.0, 59.0, 27.0])[index % 4]
    y = 20.0 * (index // 2 + 1)
    return np.column_stack([x, y]).astype(np.float32)


def mock_channel_map(
    path: str | Path = "", disconnected: Sequence[int] = PHASE3A_REFERENCE_CHANNELS
) -> ChannelMap:
    """The mock probe: Neuropixels 1.0 geometry, `disconnected` sites unconnected."""
    connected = np.ones(NPX_CHANNELS, dtype=bool)
    connected[list(disconnected)] = False
    return ChannelMap(locations=np1_geometry(), connected=connected, path=str(path))


def write_channel_map_mat(path: str | Path, channel_map: ChannelMap) -> None:
    """A Kilosort-format chanMap.mat (chanMap, chanMap0ind, connected, xcoords, ycoords,
    kcoords, shankInd, fs), rows in channel order, written atomically."""
    n = channel_map.n_channels
    save_mat(
        path,
        {
            "chanMap": np.arange(1, n + 1, dtype=np.float64),
            "chanMap0ind": np.arange(n, dtype=np.float64),
            "connected": channel_map.connected.astype(np.float64),
            "xcoords": channel_map.locations[:, 0].astype(np.float64),
            "ycoords": channel_map.locations[:, 1].astype(np.float64),
            "kcoords": np.ones(n),
            "shankInd": np.ones(n),
            "fs": np.array([[NPX_SAMPLING_HZ]]),
        },
    )


def write_mock_channel_map(path: str | Path) -> None:
    """The mock_spe1_probe job: the mock probe's chanMap.mat."""
    write_channel_map_mat(path, mock_channel_map(path))


def _sorted_summary(frame: Any) -> Any:
    return frame.sort_values(
        SUMMARY_CELL, key=lambda s: s.astype(str).str.extract(r"(\d+)")[0].astype(float)
    )


# Excel files carry their creation time twice (document properties, zip entry times): both
# are fixed so that a rebuilt summary is byte-identical.
_FIXED_XLSX_TIME = "2000-01-01T00:00:00Z"
_FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


def _to_xlsx(frame: Any, path: Path) -> None:
    import re
    import zipfile

    frame.to_excel(path, index=False, engine="openpyxl")
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)",
                    rb"\g<1>" + _FIXED_XLSX_TIME.encode() + rb"\g<2>",
                    data,
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            target.writestr(fixed, data)


def write_summary(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """A Data Summary.xlsx holding `rows` (one per cell), ordered by cell number."""
    import pandas as pd

    frame = _sorted_summary(pd.DataFrame([dict(row) for row in rows]))
    with atomic_path(path, suffix=".xlsx") as tmp:
        _to_xlsx(frame, tmp)


def write_summary_from_rows(path: str | Path, row_files: Sequence[str | Path]) -> None:
    """The mock_spe1_summary job: the summary of the cells whose rows (JSON) are given."""
    write_summary(path, [json.loads(Path(p).read_text()) for p in row_files])


def upsert_summary_row(path: str | Path, row: Mapping[str, Any]) -> None:
    """Add or replace the row of row["Cell"] in a Data Summary.xlsx (created when absent),
    atomically and under a lock (several writers may share one summary)."""
    import pandas as pd

    path = Path(path)
    with locked(path):
        if path.is_file():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                frame = pd.read_excel(path)
            frame = frame[frame[SUMMARY_CELL].astype(str) != str(row[SUMMARY_CELL])]
            frame = pd.concat([frame, pd.DataFrame([dict(row)])], ignore_index=True)
        else:
            frame = pd.DataFrame([dict(row)])
        with atomic_path(path, suffix=".xlsx") as tmp:
            _to_xlsx(_sorted_summary(frame), tmp)


@dataclass(frozen=True)
class MockCell:
    """What a mock cell contains, for tests and the demo's report.

    gt_frames: the ground-truth unit's spikes on the Neuropixels clock (absolute frames);
    gt_patch_samples: the same spikes on the patch clock (where the action potentials are);
    gt_peak_channel: argmax over channels of the unit's generator template (|amplitude|).
    """

    cell_id: str
    cell_dir: Path
    npx_path: Path
    patch_path: Path
    wc_spike_path: Path | None
    n_npx: int
    n_patch: int
    patch_rate_hz: float
    gt_unit: int
    gt_frames: np.ndarray
    gt_patch_samples: np.ndarray
    gt_peak_channel: int
    unit_peak_channels: np.ndarray
    channel_map: ChannelMap
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Units:
    recording: sc.BaseRecording  # SpikeInterface's lazy ground-truth recording (uV)
    gt_frames: np.ndarray
    unit_peak_channels: np.ndarray


def _ap_waveform(fs: float) -> tuple[np.ndarray, int]:
    """A juxtacellular action potential on the patch clock: sharp negative peak (at the
    returned index), slower positive repolarisation; peak value -1."""
    t = np.arange(int(-1e-3 * fs), int(3e-3 * fs) + 1) / fs * 1e3  # ms
    wave = -np.exp(-0.5 * (t / 0.12) ** 2) + 0.25 * np.exp(-0.5 * ((t - 0.55) / 0.3) ** 2)
    peak = int(np.argmin(wave))
    return wave / -wave[peak], peak


def _mock_units(
    channel_map: ChannelMap,
    n_npx: int,
    num_units: int,
    firing_rate_hz: float,
    noise_uv: float,
    rng: np.random.Generator,
    base_seed: int,
) -> _Units:
    """`num_units` units; unit 0 (ground truth, the largest) sits 15 um from a connected site
    in the middle third of the probe."""
    fs = NPX_SAMPLING_HZ
    locations, connected = channel_map.locations, channel_map.connected
    candidates = np.flatnonzero(
        connected & (np.arange(NPX_CHANNELS) > 128) & (np.arange(NPX_CHANNELS) < 256)
    )
    site = int(rng.choice(candidates))
    unit_locations = np.zeros((num_units, 3))
    unit_locations[0] = [
        locations[site, 0] + rng.uniform(-4, 4),
        locations[site, 1] + rng.uniform(-4, 4),
        15.0,
    ]
    y_span = (locations[:, 1].min(), locations[:, 1].max())
    for u in range(1, num_units):
        unit_locations[u] = [rng.uniform(0, 70), rng.uniform(*y_span), rng.uniform(20, 50)]
    alpha = np.concatenate([[450.0], rng.uniform(150.0, 300.0, num_units - 1)])
    ms_before, ms_after = 1.5, 3.0
    templates = sc.generate_templates(
        locations.astype(np.float64), unit_locations, fs, ms_before, ms_after,
        seed=base_seed, unit_params={"alpha": alpha},
    )  # fmt: skip
    sorting = sc.generate_sorting(
        num_units=num_units, sampling_frequency=fs, durations=[n_npx / fs],
        firing_rates=firing_rate_hz, refractory_period_ms=4.0, seed=base_seed,
    )  # fmt: skip
    recording, sorting = sc.generate_ground_truth_recording(
        durations=[n_npx / fs], sampling_frequency=fs, sorting=sorting,
        probe=probe_from_channel_map(channel_map), templates=templates,
        ms_before=ms_before, ms_after=ms_after,
        noise_kwargs={"noise_levels": noise_uv, "strategy": "on_the_fly"}, seed=base_seed,
    )  # fmt: skip
    return _Units(
        recording=recording,
        gt_frames=np.sort(sorting.get_unit_spike_train(sorting.unit_ids[0])).astype(np.int64),
        unit_peak_channels=np.argmax(np.max(np.abs(templates), axis=1), axis=1),
    )


def _write_npx(
    path: Path,
    units: _Units,
    connected: np.ndarray,
    n_npx: int,
    common_noise_uv: float,
    rng: np.random.Generator,
    base_seed: int,
) -> None:
    """The int16 binary: the units, white noise common to all channels (what a median
    reference removes; IBL bad-channel detection relies on it), per-channel gains and DC
    offsets, flat unconnected sites; one second at a time."""
    channel_gain = rng.uniform(0.9, 1.1, NPX_CHANNELS).astype(np.float32)
    dc_counts = rng.integers(-40, 40, NPX_CHANNELS).astype(np.float32)
    chunk = int(NPX_SAMPLING_HZ)
    with atomic_path(path, suffix=".bin") as tmp, open(tmp, "wb") as handle:
        for k, s0 in enumerate(range(0, n_npx, chunk)):
            s1 = min(s0 + chunk, n_npx)
            uv = units.recording.get_traces(start_frame=s0, end_frame=s1).astype(np.float32)
            chunk_rng = seeding.rng(base_seed, 1, k)
            common = chunk_rng.standard_normal(s1 - s0).astype(np.float32) * common_noise_uv
            uv += common[:, None] * channel_gain[None, :]
            uv[:, ~connected] = chunk_rng.standard_normal((s1 - s0, int((~connected).sum()))) * 0.5
            counts = np.round(uv / NPX_GAIN_UV + dc_counts)
            np.clip(counts, -32768, 32767, out=counts)
            counts.astype(NPX_DTYPE).tofile(handle)


def _write_patch(
    path: Path, gt_patch: np.ndarray, n_patch: int, patch_rate_hz: float, rng: np.random.Generator
) -> None:
    """Slow drift, 50 Hz hum and white noise (mV), with an action potential at each spike."""
    wave, peak = _ap_waveform(patch_rate_hz)
    t = np.arange(n_patch) / patch_rate_hz
    patch = (
        0.8 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi))
        + 0.3 * np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 2 * np.pi))
        + 0.05 * np.sin(2 * np.pi * 50.0 * t)
        + 0.012 * rng.standard_normal(n_patch)
    )
    amplitudes = rng.uniform(0.6, 1.2, gt_patch.size)
    for sample, amp in zip(gt_patch, amplitudes, strict=True):
        a = sample - peak
        lo, hi = max(a, 0), min(a + wave.size, n_patch)
        patch[lo:hi] += amp * wave[lo - a : hi - a]
    with atomic_path(path, suffix=".bin") as tmp:
        patch.astype("<f8").tofile(tmp)


def write_mock_cell_folder(
    cell_dir: str | Path,
    cell_id: str,
    duration_s: float = 16.0,
    seed: int = 0,
    *,
    num_units: int = 5,
    patch_rate_hz: float = MOCK_PATCH_RATE_HZ,
    firing_rate_hz: float = 10.0,
    noise_uv: float = 6.0,
    common_noise_uv: float = 8.0,
    disconnected: Sequence[int] = PHASE3A_REFERENCE_CHANNELS,
    write_wc_spikes: bool = False,
    channel_map_path: str | Path = "",
) -> MockCell:
    """A mock cell's files in `cell_dir` (write_mock_spe1_cell tells what they hold)."""
    cell_dir = Path(cell_dir)
    fs = NPX_SAMPLING_HZ
    n_npx = int(round(duration_s * fs))
    n_patch = int(round(duration_s * patch_rate_hz))
    # The cell's draws: (seed, cell id), spawned once; SpikeInterface's take an integer seed.
    rng = np.random.default_rng(seeding.seed_sequence(seed, cell_id).spawn(1)[0])
    base_seed = int(rng.integers(0, 2**31 - 1))
    channel_map = mock_channel_map(channel_map_path, disconnected)
    units = _mock_units(channel_map, n_npx, num_units, firing_rate_hz, noise_uv, rng, base_seed)
    cell_dir.mkdir(parents=True, exist_ok=True)
    npx_path = cell_dir / f"{cell_id}_{NPX_SUFFIX}"
    _write_npx(npx_path, units, channel_map.connected, n_npx, common_noise_uv, rng, base_seed)
    gt_frames = units.gt_frames
    gt_patch = -((-gt_frames * n_patch) // n_npx)  # ceil(frame * n_patch / n_npx), exact
    patch_path = cell_dir / f"{cell_id}_{PATCH_SUFFIX}"
    _write_patch(patch_path, gt_patch, n_patch, patch_rate_hz, rng)
    wc_path = None
    if write_wc_spikes:
        wc_path = cell_dir / f"{cell_id}_{WC_SPIKE_SUFFIX}"
        with atomic_path(wc_path, suffix=".npy") as tmp:
            np.save(tmp, gt_patch.astype(np.int64))
    gt_peak = int(units.unit_peak_channels[0])
    row = {
        SUMMARY_CELL: cell_id,
        SUMMARY_CHANNEL: gt_peak,
        SUMMARY_PATCH_RATE: float(patch_rate_hz),
        "Recording Length (mins)": n_npx / fs / 60.0,
        "# Patch Spikes": int(gt_frames.size),
    }
    return MockCell(
        cell_id=cell_id,
        cell_dir=cell_dir,
        npx_path=npx_path,
        patch_path=patch_path,
        wc_spike_path=wc_path,
        n_npx=n_npx,
        n_patch=n_patch,
        patch_rate_hz=float(patch_rate_hz),
        gt_unit=0,
        gt_frames=gt_frames,
        gt_patch_samples=gt_patch.astype(np.int64),
        gt_peak_channel=gt_peak,
        unit_peak_channels=units.unit_peak_channels,
        channel_map=channel_map,
        summary=row,
    )


def write_mock_spe1_cell(
    root: str | Path,
    cell_id: str,
    duration_s: float = 16.0,
    seed: int = 0,
    *,
    update_shared: bool = True,
    **options: Any,
) -> MockCell:
    """Write a mock cell in the SPE-1 layout under `root`:

      root/Recordings/<cell>/<cell>_npx_raw.bin   int16 x 384 interleaved, 30 kHz, 2.34375 uV/count
      root/Recordings/<cell>/<cell>_patch_ch1.bin float64 patch trace (mV) at patch_rate_hz
      root/Recordings/<cell>/<cell>_wc_spike_samples.npy   (write_wc_spikes) patch-clock spikes
      root/chanMap.mat, root/Data Summary.xlsx    (update_shared) shared by all cells

    Neuropixels: spikeinterface's generate_ground_truth_recording on a Neuropixels 1.0 geometry
    (`num_units` units, unit 0 the ground-truth cell: the largest, placed near a site in the
    middle of the probe) plus white noise common to all channels, per-channel DC offsets, and
    flat `disconnected` sites (Phase3A's reference channels; connected = 0 in chanMap.mat).
    Patch: slow drift, 50 Hz hum and white noise with an action potential at each of unit 0's
    spikes, at patch sample ceil(frame * n_patch / n_npx) so that the chain's length-ratio
    mapping returns the spike's frame. The summary row gives Cell, chan_predicted (unit 0's
    peak channel), the patch rate, the length in minutes and the spike count.
    `options`: write_mock_cell_folder's keywords.
    """
    root = Path(root)
    cell = write_mock_cell_folder(
        root / "Recordings" / cell_id, cell_id, duration_s, seed,
        channel_map_path=root / "chanMap.mat", **options,
    )  # fmt: skip
    if update_shared:
        write_channel_map_mat(root / "chanMap.mat", cell.channel_map)
        upsert_summary_row(root / "Data Summary.xlsx", cell.summary)
    return cell


def write_mock_cell_job(
    cell_dir: str | Path, row_path: str | Path, cell_id: str, duration_s: float, seed: int
) -> MockCell:
    """The mock_spe1_cell job: the cell's folder (appearing only when complete) and its
    summary row as JSON, which mock_spe1_summary gathers."""
    with atomic_directory(cell_dir) as staging:
        cell = write_mock_cell_folder(staging, cell_id, duration_s, seed)
    with atomic_path(row_path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(cell.summary, indent=1))
    return cell

"""One (sheet, part, variant) exported as the modelling group's training arrays:

    image_ids/image_ids_<sheet>_<part>.npy       the images in the order shown (str)
    neuron_ids/neuron_ids_<sheet>_<part>.npy     the neurons' source ids (int64)
    spikes/<sheet>/spikes_[trial_<i>_]<sheet>_<part>.npz
        scipy CSR [neurons, images x (blank + image)] of spike counts in `bin_ms` bins (uint8),
        each image's blank first; a segment of d ms has floor(d / bin_ms) + 1 bins and a
        spike at t ms falls in bin floor(t / bin_ms) (the original's int(duration) + 1 and
        truncation to whole ms at 1 ms bins). Train parts have one file without `trial_<i>_`;
        test parts one per trial asked for, numbered from 0.
    windows/<sheet>/spikes_[trial_<i>_]<sheet>_<part>.npz   (when windows are asked for)
        the same spikes cut into one window per image, from `offset_ms` into its blank to
        `offset_ms` into the next blank (the blank's second half, the image, the next
        blank's first half; past the last image there are no spikes) and summed into
        `bin_ms` bins (a window's last, shorter bin dropped): CSR [neurons, images x bins].

The CSR files are built without the dense array: each presentation's spikes become
(neuron, column) keys, spilled to one temporary file per block of neurons, and each block
is sorted and counted in turn, so memory holds one segment and one block, whatever the number
of images. The .npz is written member by member as scipy's save_npz writes it.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.files import staging_directory
from spikeforge.core.progress import Progress
from spikeforge.cortical.parts import PartSource, Presentation, open_part
from spikeforge.cortical.sheets import folder_name

log = logging.getLogger(__name__)

ROWS_PER_BLOCK = 256
COPY_CHUNK = 1 << 22


@dataclass(frozen=True)
class Windows:
    interval_ms: int = 712
    offset_ms: int = 76
    bin_ms: int = 20

    @property
    def bins(self) -> int:
        return self.interval_ms // self.bin_ms


def spikes_name(sheet: str, part: str, trial: int | None) -> str:
    prefix = "spikes_" if trial is None else f"spikes_trial_{trial}_"
    return f"{prefix}{folder_name(sheet)}_{part}.npz"


def output_paths(root: str | Path, sheet: str, part: str, trials: int | None,
                 windows: bool, experanto: bool = False) -> dict[str, Path]:  # fmt: skip
    """Every file one (sheet, part, variant) job writes; `trials` None: a train part. The
    Experanto layout is one folder (experanto/<sheet>/<part>/, a trial_<i>/ per trial)."""
    root, name = Path(root), folder_name(sheet)
    paths = {
        "image_ids": root / "image_ids" / f"image_ids_{name}_{part}.npy",
        "neuron_ids": root / "neuron_ids" / f"neuron_ids_{name}_{part}.npy",
    }
    numbers = [None] if trials is None else list(range(trials))
    for trial in numbers:
        key = "spikes" if trial is None else f"spikes_trial_{trial}"
        paths[key] = root / "spikes" / name / spikes_name(sheet, part, trial)
        if windows:
            paths["windows" + key[6:]] = root / "windows" / name / spikes_name(sheet, part, trial)
    if experanto:
        paths["experanto"] = root / "experanto" / name / part
    return paths


class CSRBuilder:
    """Counts of (row, column) keys added in any order, written as a CSR .npz."""

    def __init__(self, n_rows: int, n_cols: int, scratch: Path) -> None:
        self.n_rows, self.n_cols = n_rows, n_cols
        self.scratch = Path(tempfile.mkdtemp(prefix="csr_", dir=scratch))
        self.blocks: dict[int, Any] = {}

    def add(self, rows: np.ndarray, cols: np.ndarray) -> None:
        if rows.size == 0:
            return
        block = rows // ROWS_PER_BLOCK
        keys = (rows % ROWS_PER_BLOCK).astype(np.int64) * self.n_cols + cols
        order = np.argsort(block, kind="stable")
        block, keys = block[order], keys[order]
        cuts = np.flatnonzero(np.diff(block)) + 1
        for piece_block, piece in zip(
            block[np.r_[0, cuts]].tolist(), np.split(keys, cuts), strict=True
        ):
            handle = self.blocks.get(piece_block)
            if handle is None:
                handle = self.blocks[piece_block] = open(self.scratch / f"{piece_block}.keys", "wb")
            handle.write(piece.tobytes())

    def write_npz(self, path: Path, compressed: bool = True) -> int:
        """The CSR file (scipy.sparse.save_npz's layout); returns the number of non-zeros."""
        for handle in self.blocks.values():
            handle.close()
        indptr = np.zeros(self.n_rows + 1, np.int64)
        indices_file = open(self.scratch / "indices", "wb")
        data_file = open(self.scratch / "data", "wb")
        nnz, largest = 0, 0
        for b in range((self.n_rows + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK):
            keys_path = self.scratch / f"{b}.keys"
            keys = np.fromfile(keys_path, np.int64) if keys_path.exists() else np.empty(0, np.int64)
            keys.sort()
            starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else keys
            counts = np.diff(np.r_[starts, keys.size])
            unique = keys[starts]
            rows = unique // self.n_cols + b * ROWS_PER_BLOCK
            indptr[1:] += (
                np.bincount(rows, minlength=self.n_rows + 1)[: self.n_rows] if rows.size else 0
            )
            largest = max(largest, int(counts.max()) if counts.size else 0)
            indices_file.write((unique % self.n_cols).astype(np.int32).tobytes())
            data_file.write(np.minimum(counts, 255).astype(np.uint8).tobytes())
            nnz += unique.size
        indices_file.close()
        data_file.close()
        if largest > 255:
            raise ValueError(f"{largest} spikes in one bin do not fit uint8: use a smaller bin")
        np.cumsum(indptr, out=indptr)
        index_dtype = np.int32 if max(nnz, self.n_cols) < 2**31 else np.int64
        members = [
            ("indices", self.scratch / "indices", np.dtype(np.int32), (nnz,)),
            ("indptr", indptr.astype(index_dtype), None, None),
            ("format", np.array(b"csr"), None, None),
            ("shape", np.array([self.n_rows, self.n_cols], np.int64), None, None),
            ("data", self.scratch / "data", np.dtype(np.uint8), (nnz,)),
        ]
        _write_npz(path, members, compressed)
        return nnz

    def close(self) -> None:
        for handle in self.blocks.values():
            handle.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _write_npz(path: Path, members: list, compressed: bool) -> None:
    """np.savez(_compressed) of the members, arrays given whole or as a raw file + dtype."""
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method, allowZip64=True) as archive:
        for name, value, dtype, shape in members:
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                if isinstance(value, np.ndarray):
                    np.lib.format.write_array(member, value, allow_pickle=False)
                    continue
                header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                          "shape": shape}  # fmt: skip
                np.lib.format.write_array_header_1_0(member, header)
                with open(value, "rb") as raw:
                    shutil.copyfileobj(raw, member, COPY_CHUNK)


def segment_bins(duration_ms: float, bin_ms: int) -> int:
    return int(duration_ms // bin_ms) + 1


def presentation_keys(p: Presentation, first_col: int, blank_bins: int,
                      bin_ms: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(neuron row, column) of every spike of one presentation, blank then image."""
    counts_b = np.fromiter((t.size for t in p.blank_times), np.int64, len(p.blank_times))
    counts_i = np.fromiter((t.size for t in p.image_times), np.int64, len(p.image_times))
    rows = np.concatenate([np.repeat(np.arange(counts_b.size), counts_b),
                           np.repeat(np.arange(counts_i.size), counts_i)])  # fmt: skip
    blank = np.concatenate(p.blank_times) if counts_b.sum() else np.empty(0)
    image = np.concatenate(p.image_times) if counts_i.sum() else np.empty(0)
    cols = np.concatenate([
        first_col + np.floor(blank / bin_ms).astype(np.int64),
        first_col + blank_bins + np.floor(image / bin_ms).astype(np.int64),
    ])  # fmt: skip
    return rows, cols


def export_trial(source: PartSource, trial: int, images: int | None, bin_ms: int,
                 spikes_path: Path, windows: Windows | None, windows_path: Path | None,
                 scratch: Path, compressed: bool,
                 experanto: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """One trial's CSR file (and windows, and the Experanto trial folder); returns its image
    ids, neuron ids and shape."""
    count = source.count(trial)
    if images is not None:
        count = min(count, images)
    spikes = window_builder = None
    ids: list[str] = []
    neuron_ids = None
    trial_folder = None
    if experanto is not None:
        from spikeforge.cortical.experanto import ExperantoWriter

        trial_folder = ExperantoWriter(experanto, source.sheet, trial, scratch)
    progress = Progress(count, f"{source.sheet} trial {trial}", " images")
    try:
        for k, p in enumerate(source.presentations(trial)):
            if k == count:
                break
            progress.update(k)
            if spikes is None:
                neuron_ids = p.neuron_ids
                blank_bins = segment_bins(p.blank_ms, bin_ms)
                width = blank_bins + segment_bins(p.image_ms, bin_ms)
                spikes = CSRBuilder(neuron_ids.size, count * width, scratch)
                if windows is not None:
                    window_builder = CSRBuilder(neuron_ids.size, count * windows.bins, scratch)
            elif segment_bins(p.blank_ms, bin_ms) + segment_bins(p.image_ms, bin_ms) != width:
                raise InputError(
                    source.where,
                    f"trial {trial}, image {k}: its segments are not as long as the first image's",
                )
            rows, cols = presentation_keys(p, k * width, blank_bins, bin_ms)
            spikes.add(rows, cols)
            if window_builder is not None:
                shifted = cols - windows.offset_ms // bin_ms
                window = shifted // (windows.interval_ms // bin_ms)
                within = (shifted % (windows.interval_ms // bin_ms)) * bin_ms // windows.bin_ms
                keep = (shifted >= 0) & (window < count) & (within < windows.bins)
                window_builder.add(rows[keep], window[keep] * windows.bins + within[keep])
            if trial_folder is not None:
                trial_folder.add(p.image_id, p.blank_ms, p.image_ms, p.blank_times, p.image_times)
            ids.append(p.image_id)
        if spikes is None:
            raise InputError(source.where, f"trial {trial} has no presentations")
        nnz = spikes.write_npz(spikes_path, compressed)
        if window_builder is not None and windows_path is not None:
            window_builder.write_npz(windows_path, compressed)
        if trial_folder is not None:
            trial_folder.finish()
    finally:
        if trial_folder is not None:
            trial_folder.close()
        for builder in (spikes, window_builder):
            if builder is not None:
                builder.close()
    return {
        "image_ids": ids,
        "neuron_ids": neuron_ids,
        "shape": (neuron_ids.size, count * width),
        "nnz": nnz,
    }


def export_part(
    settings: Mapping[str, Any], where: str | Path, out_root: str | Path
) -> dict[str, Path]:
    """The job of one (sheet, part, variant): every file of output_paths, written to a
    staging folder and moved into place only when all are complete."""
    sheet, part = settings["sheet"], str(settings["part"])
    trials = settings["trials"]  # None: a train part (one trial, no trial_ in the name)
    windows = Windows(**settings["windows"]) if settings.get("windows") else None
    if windows is not None and windows.bin_ms % settings["bin_ms"]:
        raise InputError("cortical.windows.bin_ms", "must be a multiple of cortical.bin_ms")
    # Tens of thousands of small arrays a segment and no reference cycles (the reader breaks
    # its own): the garbage collector would only rescan them, again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _export_part(settings, where, out_root, sheet, part, trials, windows)
    finally:
        if collecting:
            gc.enable()


def _export_part(settings: Mapping[str, Any], where: str | Path, out_root: str | Path,
                 sheet: str, part: str, trials: int | None,
                 windows: Windows | None) -> dict[str, Path]:  # fmt: skip
    source = open_part(settings["source"], where, sheet)
    available = source.trials()
    wanted = 1 if trials is None else int(trials)
    if len(available) < wanted:
        raise InputError(
            source.where,
            f"part {part} has {len(available)} trial(s) of sheet {sheet}; {wanted} asked for",
        )
    paths = output_paths(out_root, sheet, part, trials, windows is not None,
                         bool(settings.get("experanto")))  # fmt: skip
    Path(out_root).mkdir(parents=True, exist_ok=True)
    staging = staging_directory(f".{folder_name(sheet)}_{part}.", out_root)
    try:
        first = None
        for number, trial in enumerate(available[:wanted]):
            key = "spikes" if trials is None else f"spikes_trial_{number}"
            result = export_trial(
                source, trial, settings.get("images"), int(settings["bin_ms"]),
                staging / paths[key].name, windows,
                staging / ("w_" + paths[key].name) if windows else None,
                staging, bool(settings.get("compressed", True)),
                staging / "experanto" / f"trial_{number}" if "experanto" in paths else None,
            )  # fmt: skip
            if first is None:
                first = result
                np.save(staging / paths["image_ids"].name, np.array(result["image_ids"]))
                np.save(
                    staging / paths["neuron_ids"].name, np.asarray(result["neuron_ids"], np.int64)
                )
            elif result["image_ids"] != first["image_ids"]:
                raise InputError(
                    source.where, f"trial {trial} shows other images than trial {available[0]}"
                )
            log.info("%s part %s trial %s: %s spikes matrix, %d non-zeros",
                     sheet, part, trial, result["shape"], result["nnz"])  # fmt: skip
        for key, path in paths.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            name = ("w_" + path.name) if key.startswith("windows") else path.name
            if key == "experanto":
                name = "experanto"
                if path.exists():
                    shutil.rmtree(path)
            os.replace(staging / name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def find_part(root: str | Path, part: str, source: str) -> Path:
    """The datastore folder (the one whose name says 'baseline:<part>_') or <part>.h5 of a
    part in a variant's folder."""
    root = Path(root)
    if source == "hdf5":
        path = root / f"{part}.h5"
        if not path.is_file():
            raise InputError(root, f"has no {part}.h5")
        return path
    from spikeforge.cortical.mozaik import part_id

    found = [
        entry.path for entry in os.scandir(root)
        if ":" in entry.name and entry.is_dir() and part_id(entry.name) == part
    ]  # fmt: skip
    if len(found) != 1:
        raise InputError(root, f"{len(found)} datastore folders of part {part}; expected one")
    return Path(found[0])


def export_job(settings: Mapping[str, Any], part: str, root: str | Path) -> dict[str, Path]:
    """A workflow job: the rule's settings, the job's part and the variant's folder (of
    datastores, HDF5 files, or the mock's datastores)."""
    if settings.get("mock_images"):
        from spikeforge.cortical.mock import folder_name as mock_folder

        where = Path(root) / mock_folder(int(part), int(settings["mock_images"]))
    else:
        where = find_part(root, part, settings["source"])
    return export_part({**settings, "part": part}, where, settings["out_root"])

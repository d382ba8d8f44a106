"""The Experanto trial layout upstream Mozaik exports, written from the same pass over a part:

    experanto/<sheet>/<part>/trial_<i>/
      responses/spikes.npy     float64 spike times in s on one continuous timeline (each
                               presentation's blank, then its image), unit after unit
      responses/meta.yml       modality, n_signals, n_signals_layerwise, sheets,
                               sheet_unit_indices, start_time (0), end_time (s), trial_id,
                               sampling_rate, spike_indices (n_signals + 1 offsets into
                               spikes.npy), stimuli_order (image ids), smoothing
      screen/timestamps.npy    float64 s: each blank, each image, and a closing blank at the
                               end of the last image
      screen/meta.yml          {modality: screen}
      screen/meta/NNNNN.yml    one per timestamp: modality (blank or image), image id,
                               duration, first frame index
      screen/combined_meta.json  the same, keyed by NNNNN

Experanto's rule holds: responses' end_time equals the last screen timestamp. The images
themselves (screen/data/) are not in a datastore and are not written.

Spike times are regrouped from presentation order to unit order through the same kind of
per-block spill as the CSR files, so memory does not grow with the number of images.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROWS_PER_BLOCK = 256
SAMPLING_RATE = 1000.0


@dataclass
class ExperantoWriter:
    folder: Path
    sheet: str
    trial: int
    scratch: Path
    offset_ms: float = 0.0
    entries: list[dict[str, Any]] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    n_rows: int = 0

    def __post_init__(self) -> None:
        self.spill = Path(tempfile.mkdtemp(prefix="experanto_", dir=self.scratch))
        self.handles: dict[int, Any] = {}

    def add(self, image_id: str, blank_ms: float, image_ms: float,
            blank_times: list[np.ndarray], image_times: list[np.ndarray]) -> None:  # fmt: skip
        self.n_rows = len(blank_times)
        for times, start, duration, kind in (
            (blank_times, self.offset_ms, blank_ms, "blank"),
            (image_times, self.offset_ms + blank_ms, image_ms, "image"),
        ):
            counts = np.fromiter((t.size for t in times), np.int64, len(times))
            if counts.sum():
                rows = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
                values = (np.concatenate(times) + start) / 1000.0
                self._spill(rows, values)
            self.entries.append({
                "modality": kind,
                "image_id": image_id if kind == "image" else None,
                "start_s": start / 1000.0,
                "duration_s": duration / 1000.0,
            })  # fmt: skip
        self.offset_ms += blank_ms + image_ms
        self.images.append(image_id)

    def _spill(self, rows: np.ndarray, values: np.ndarray) -> None:
        block = rows // ROWS_PER_BLOCK
        for b in np.unique(block).tolist():
            chosen = block == b
            handle = self.handles.get(b)
            if handle is None:
                handle = self.handles[b] = open(self.spill / f"{b}.bin", "wb")
            pairs = np.empty(int(chosen.sum()), dtype=[("row", "<i8"), ("t", "<f8")])
            pairs["row"], pairs["t"] = rows[chosen], values[chosen]
            handle.write(pairs.tobytes())

    def finish(self) -> None:
        for handle in self.handles.values():
            handle.close()
        responses, screen = self.folder / "responses", self.folder / "screen"
        responses.mkdir(parents=True)
        (screen / "meta").mkdir(parents=True)
        counts = np.zeros(self.n_rows, np.int64)
        times_file = self.spill / "times"
        with open(times_file, "wb") as out:
            for b in range((self.n_rows + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK):
                path = self.spill / f"{b}.bin"
                if not path.exists():
                    continue
                pairs = np.fromfile(path, dtype=[("row", "<i8"), ("t", "<f8")])
                order = np.lexsort((pairs["t"], pairs["row"]))
                out.write(pairs["t"][order].tobytes())
                counts += np.bincount(pairs["row"], minlength=self.n_rows)
        total = int(counts.sum())
        with open(responses / "spikes.npy", "wb") as handle:
            np.lib.format.write_array_header_1_0(
                handle, {"descr": "<f8", "fortran_order": False, "shape": (total,)}
            )
            with open(times_file, "rb") as raw:
                shutil.copyfileobj(raw, handle)
        end_s = self.offset_ms / 1000.0
        meta = {
            "modality": "spikes",
            "n_signals": int(self.n_rows),
            "n_signals_layerwise": {self.sheet: int(self.n_rows)},
            "sheets": [self.sheet],
            "sheet_unit_indices": [0, int(self.n_rows)],
            "start_time": 0.0,
            "end_time": end_s,
            "trial_id": int(self.trial),
            "sampling_rate": SAMPLING_RATE,
            "spike_indices": [0, *np.cumsum(counts).tolist()],
            "stimuli_order": list(self.images),
            "smoothing": None,
        }
        (responses / "meta.yml").write_text(yaml.safe_dump(meta, sort_keys=False))
        entries = [
            *self.entries,
            {"modality": "blank", "image_id": None, "start_s": end_s, "duration_s": 0.0},
        ]
        np.save(screen / "timestamps.npy", np.array([e["start_s"] for e in entries], np.float64))
        (screen / "meta.yml").write_text(yaml.safe_dump({"modality": "screen"}))
        combined = {}
        for k, entry in enumerate(entries):
            key = f"{k:05d}"
            record = {
                "modality": entry["modality"],
                "image_id": entry["image_id"],
                "duration": entry["duration_s"],
                "first_frame_idx": k,
                "num_frames": 1,
            }
            (screen / "meta" / f"{key}.yml").write_text(yaml.safe_dump(record, sort_keys=False))
            combined[key] = record
        (screen / "combined_meta.json").write_text(json.dumps(combined, indent=1) + "\n")
        shutil.rmtree(self.spill, ignore_errors=True)

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        shutil.rmtree(self.spill, ignore_errors=True)

"""One part's presentations of one sheet: for each image in the order shown, its id, and the
spike trains of the blank before it and of the image, read from a Mozaik datastore or from the
open HDF5 layout (which needs no pickle).

Open HDF5 layout (one file per part, `<part>.h5`; a group per sheet named as on disk, e.g.
`V1_Exc_L23`):

    <sheet>/neuron_ids          int64 [neurons]
    <sheet>/image_ids           str [presentations]
    <sheet>/trials              int64 [presentations]
    <sheet>/blank_ms, image_ms  float64 [presentations]: the segments' durations
    <sheet>/spike_times         float64 [spikes] ms from the start of their segment
    <sheet>/spike_index         int64 [presentations x neurons x 2]: cumulative end of the
                                spikes of each (presentation, neuron, blank then image)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.cortical.mozaik import SegmentRecord, load_trains, part_id, read_datastore
from spikeforge.cortical.sheets import folder_name


@dataclass(frozen=True)
class Presentation:
    image_id: str
    blank_ms: float
    image_ms: float
    neuron_ids: np.ndarray
    blank_times: list[np.ndarray]  # ms from the blank's start, per neuron
    image_times: list[np.ndarray]  # ms from the image's start, per neuron


class PartSource:
    """A part's presentations of one sheet, trial by trial."""

    where: Path
    sheet: str

    def trials(self) -> list[int]:
        raise NotImplementedError

    def presentations(self, trial: int) -> Iterator[Presentation]:
        raise NotImplementedError

    def count(self, trial: int) -> int:
        raise NotImplementedError


class DatastorePart(PartSource):
    """From a Mozaik datastore: the sheet's NaturalImage segments of each trial, blanks and
    images each in recording order (rec_datetime, then position), paired in that order."""

    def __init__(self, folder: str | Path, sheet: str) -> None:
        self.where = Path(folder)
        self.sheet = sheet
        segments = read_datastore(self.where)
        self.part = part_id(self.where)
        records = [
            r for r in segments
            if r.sheet == sheet and r.stimulus.get("name") == "NaturalImage"
        ]  # fmt: skip
        if not records:
            raise InputError(
                self.where, f"part {self.part} has no NaturalImage segments of sheet {sheet}"
            )
        self.records = records

    def trials(self) -> list[int]:
        return sorted({int(r.stimulus.get("trial", 0)) for r in self.records})

    def _pairs(self, trial: int) -> list[tuple[SegmentRecord, SegmentRecord]]:
        chosen = [r for r in self.records if int(r.stimulus.get("trial", 0)) == trial]

        def order(r: SegmentRecord) -> tuple:
            return (r.rec_datetime is None, r.rec_datetime or 0, r.position)

        blanks = sorted((r for r in chosen if r.null), key=order)
        images = sorted((r for r in chosen if not r.null), key=order)
        if len(blanks) != len(images):
            raise InputError(
                self.where,
                f"part {self.part}, sheet {self.sheet}, trial {trial}: {len(blanks)} blank "
                f"segments but {len(images)} image segments",
            )
        for blank, image in zip(blanks, images, strict=True):
            if blank.image_id != image.image_id:
                raise InputError(
                    self.where,
                    f"part {self.part}, sheet {self.sheet}, trial {trial}: the blank "
                    f"{blank.identifier} precedes image {blank.image_id}, but the image shown "
                    f"next is {image.image_id}",
                )
        return list(zip(blanks, images, strict=True))

    def count(self, trial: int) -> int:
        return len(self._pairs(trial))

    def presentations(self, trial: int) -> Iterator[Presentation]:
        neuron_ids = None
        for blank, image in self._pairs(trial):
            b = load_trains(self.where, blank)
            i = load_trains(self.where, image)
            for record, trains in ((blank, b), (image, i)):
                if neuron_ids is None:
                    neuron_ids = trains.source_ids
                elif not np.array_equal(trains.source_ids, neuron_ids):
                    raise InputError(
                        self.where / f"{record.identifier}.pickle",
                        f"its neurons differ from the part's first segment (sheet {self.sheet})",
                    )
            yield Presentation(image.image_id, b.duration_ms, i.duration_ms, neuron_ids,
                               b.times_ms, i.times_ms)  # fmt: skip


class HDF5Part(PartSource):
    """From the open HDF5 layout (module docstring)."""

    def __init__(self, path: str | Path, sheet: str) -> None:
        import h5py

        self.where = Path(path)
        self.sheet = sheet
        if not self.where.is_file():
            raise InputError(self.where, "no such file")
        self.file = h5py.File(self.where, "r")
        name = folder_name(sheet)
        if name not in self.file:
            raise InputError(self.where, f"has no group {name} (sheet {sheet})")
        self.group = self.file[name]
        for key in (
            "neuron_ids",
            "image_ids",
            "trials",
            "blank_ms",
            "image_ms",
            "spike_times",
            "spike_index",
        ):
            if key not in self.group:
                raise InputError(self.where, f"{name}/{key} is missing")
        self.trial_of = np.asarray(self.group["trials"][:], np.int64)
        self.neuron_ids = np.asarray(self.group["neuron_ids"][:], np.int64)

    def trials(self) -> list[int]:
        return sorted(set(self.trial_of.tolist()))

    def count(self, trial: int) -> int:
        return int(np.count_nonzero(self.trial_of == trial))

    def presentations(self, trial: int) -> Iterator[Presentation]:
        group, n = self.group, self.neuron_ids.size
        index, names = group["spike_index"], group["image_ids"]
        for p in np.flatnonzero(self.trial_of == trial).tolist():
            first = int(index[2 * n * p - 1]) if p else 0
            ends = np.asarray(index[2 * n * p : 2 * n * (p + 1)], np.int64) - first
            times = np.asarray(group["spike_times"][first : first + (int(ends[-1]) if n else 0)])
            starts = np.concatenate([[0], ends[:-1]])
            pieces = [times[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
            name = names[p]
            yield Presentation(
                name.decode() if isinstance(name, bytes) else str(name),
                float(group["blank_ms"][p]),
                float(group["image_ms"][p]),
                self.neuron_ids,
                pieces[0::2],
                pieces[1::2],
            )


def open_part(source: str, where: str | Path, sheet: str) -> PartSource:
    return DatastorePart(where, sheet) if source == "datastore" else HDF5Part(where, sheet)


def write_hdf5_part(source: PartSource, path: str | Path, sheet: str) -> None:
    """Write a part's presentations of one sheet in the open layout (adds the sheet's group)."""
    import h5py

    times, ends, ids, trials, blanks, images = [], [], [], [], [], []
    total = 0
    neuron_ids = None
    for trial in source.trials():
        for p in source.presentations(trial):
            neuron_ids = p.neuron_ids
            for b, i in zip(p.blank_times, p.image_times, strict=True):
                for piece in (b, i):
                    times.append(piece)
                    total += piece.size
                    ends.append(total)
            ids.append(p.image_id)
            trials.append(trial)
            blanks.append(p.blank_ms)
            images.append(p.image_ms)
    with h5py.File(path, "a") as handle:
        group = handle.create_group(folder_name(sheet))
        group["neuron_ids"] = np.asarray(neuron_ids, np.int64)
        group["image_ids"] = np.array(ids, dtype=h5py.string_dtype())
        group["trials"] = np.array(trials, np.int64)
        group["blank_ms"] = np.array(blanks, np.float64)
        group["image_ms"] = np.array(images, np.float64)
        group["spike_times"] = np.concatenate(times) if times else np.empty(0)
        group["spike_index"] = np.array(ends, np.int64)

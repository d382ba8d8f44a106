"""Seeded mock Mozaik datastores: the folders, pickles, class paths and annotations a
simulation of the V1 model leaves, with Poisson spikes whose every time is known.

A part shows `images` natural images per trial, each after a blank: for each trial and image,
first a blank segment (`null=True`) and then the image segment, for every sheet, in the order
Mozaik records them (Segment<N> numbered in that order, `rec_datetime` increasing). Spike
times are Poisson per neuron (rate lognormal around the sheet's median, times multiples of
the 0.1 ms simulation step, below the segment's duration); during an image a neuron's rate is
multiplied by a gain drawn per (neuron, image). Every draw is seeded by (seed, "cortical",
part, sheet, trial, image, blank or image).
"""

from __future__ import annotations

import datetime as dt
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.files import atomic_directory
from spikeforge.core.seeding import rng
from spikeforge.cortical.mozaik import RECORDINGS, dumps_like_mozaik, neo_wrapper_class
from spikeforge.cortical.sheets import SHEETS

# Median rates (Hz) of the model's populations in spontaneous activity: LGN relay cells fire
# faster than cortical excitatory cells; inhibitory cells in between.
MEDIAN_RATE_HZ = {
    "X_ON": 12.0, "X_OFF": 12.0, "V1_Exc_L4": 3.0, "V1_Inh_L4": 8.0,
    "V1_Exc_L2/3": 2.0, "V1_Inh_L2/3": 6.0,
}  # fmt: skip
SIMULATION_STEP_MS = 0.1
STIMULUS_MODULE = "mozaik.stimuli.vision.topographica_based"
IMAGE_FOLDER = "/datasets/natural_images"


@dataclass(frozen=True)
class MockSpec:
    neurons: Mapping[str, int]  # sheet -> neurons
    images: int = 100
    trials: int = 1
    blank_ms: float = 150.0
    image_ms: float = 560.0
    seed: int = 0
    rate_sigma: float = 0.8
    gain_sigma: float = 0.5
    drop_source_id: bool = field(default=False, compare=False)  # for bad-input tests


def folder_name(part: int, images: int) -> str:
    """Mozaik's parameter-search folder name of a part (its part id after 'baseline:')."""
    return (
        f"NewDataset_Images_from_{part}_to_{part + images}_ParameterSearch"
        f"_____baseline:{part}_trial:0"
    )


def image_ids(part: int, images: int) -> list[str]:
    return [str(part + k) for k in range(images)]


def first_neuron_ids(spec: MockSpec) -> dict[str, int]:
    """PyNN numbers neurons across populations: sheet after sheet, from 1."""
    starts, next_id = {}, 1
    for sheet in SHEETS:
        if sheet in spec.neurons:
            starts[sheet] = next_id
            next_id += int(spec.neurons[sheet])
    return starts


def stimulus_text(spec: MockSpec, part: int, image: int, trial: int) -> str:
    """The stimulus annotation, as Mozaik's str(stimulus) writes it."""
    image_id = image_ids(part, spec.images)[image]
    values = {
        "background_luminance": 50.0, "density": 10.0, "direct_stimulation_name": None,
        "direct_stimulation_parameters": None, "duration": spec.image_ms,
        "frame_duration": 7.0, "image_path": f"{IMAGE_FOLDER}/{image_id}_natural.png",
        "location_x": 0.0, "location_y": 0.0, "name": "NaturalImage", "size": 11.0,
        "size_x": 11.0, "size_y": 11.0, "trial": trial,
    }  # fmt: skip
    body = ", ".join(f'"{k}":{v!r}' for k, v in values.items())
    return '{"module_path" :"' + STIMULUS_MODULE + '",' + body + "}"


def draw_segment(
    spec: MockSpec, part: int, sheet: str, trial: int, image: int, blank: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(spike counts per neuron, flat spike times in ms) of one segment."""
    n = int(spec.neurons[sheet])
    rates = rng(spec.seed, "cortical", "rates", sheet).lognormal(
        np.log(MEDIAN_RATE_HZ[sheet]), spec.rate_sigma, n
    )
    if not blank:
        gains = rng(spec.seed, "cortical", "gains", part, sheet, image)
        rates = rates * gains.lognormal(0.0, spec.gain_sigma, n)
    duration = spec.blank_ms if blank else spec.image_ms
    r = rng(spec.seed, "cortical", part, sheet, trial, image, "blank" if blank else "image")
    counts = r.poisson(rates * duration / 1000.0)
    steps = int(round(duration / SIMULATION_STEP_MS))
    flat = r.integers(0, steps, int(counts.sum())).astype(np.float64) * SIMULATION_STEP_MS
    # each neuron's times in order
    owner = np.repeat(np.arange(n), counts)
    flat = flat[np.lexsort((flat, owner))]
    return counts, flat


class _FastSpikeTrain:
    """Pickles exactly as a neo SpikeTrain does (its __reduce__), without building one."""

    __slots__ = ("args",)

    def __init__(self, args: tuple) -> None:
        self.args = args

    def __reduce__(self) -> tuple:
        from neo.core.spiketrain import _new_spiketrain

        return _new_spiketrain, self.args


def _segment_pickle(
    spec: MockSpec, part: int, sheet: str, trial: int, image: int, blank: bool,
    ids: np.ndarray, when: dt.datetime, text: str,
) -> bytes:  # fmt: skip
    import neo
    import quantities as pq
    from neo.core.dataobject import ArrayDict

    counts, flat = draw_segment(spec, part, sheet, trial, image, blank)
    duration = spec.blank_ms if blank else spec.image_ms
    segment = neo.Segment(name="segment", rec_datetime=when)
    segment.annotations.update({"sheet_name": sheet, "stimulus": text})
    t_stop, t_start = duration * pq.ms, 0.0 * pq.ms
    units, rate = 1.0 * pq.ms, 1.0 * pq.Hz
    ends = np.cumsum(counts)
    trains = []
    for k in range(ids.size):
        times = flat[ends[k] - counts[k] : ends[k]]
        annotations = {"source_population": sheet, "source_id": int(ids[k]), "source_index": k}
        if spec.drop_source_id:
            del annotations["source_id"]
        trains.append(_FastSpikeTrain((
            neo.SpikeTrain, times, t_stop, units, np.dtype(np.float64), None, rate, t_start,
            None, None, None, None, None, ArrayDict(times.size), annotations, segment, None,
        )))  # fmt: skip
    segment.spiketrains._items = trains
    return pickle.dumps(segment, protocol=4)


def write_part(
    spec: MockSpec, root: str | Path, part: int, recorded_root: str | Path | None = None
) -> Path:
    """One part's datastore folder under `root`; returns it. The segments record their
    datastore's path as Mozaik does, under `recorded_root` when `root` is a staging folder
    that will be renamed (so the bytes do not depend on the staging folder's random name)."""
    import neo

    folder = Path(root) / folder_name(part, spec.images)
    recorded = Path(recorded_root or root) / folder.name
    wrapper = neo_wrapper_class()
    starts = first_neuron_ids(spec)
    ids = {s: np.arange(starts[s], starts[s] + int(spec.neurons[s])) for s in starts}
    block = neo.Block(name="mock")
    block.annotations["neuron_ids"] = ids
    clock = dt.datetime(2024, 1, 17, 11, 17, 42) + dt.timedelta(days=int(part) % 97)
    with atomic_directory(folder) as staging:
        number = 0
        for trial in range(spec.trials):
            for image in range(spec.images):
                text = stimulus_text(spec, part, image, trial)
                for blank in (True, False):
                    clock += dt.timedelta(milliseconds=spec.blank_ms if blank else spec.image_ms)
                    for sheet in starts:
                        identifier = f"Segment{number}"
                        data = _segment_pickle(
                            spec, part, sheet, trial, image, blank, ids[sheet], clock, text
                        )
                        (staging / f"{identifier}.pickle").write_bytes(data)
                        record = wrapper(name="segment", rec_datetime=clock)
                        record.annotations.update({"sheet_name": sheet, "stimulus": text})
                        record.__dict__.update({"init": False, "identifier": identifier,
                                                "null": blank, "full": False,
                                                "datastore_path": str(recorded)})  # fmt: skip
                        block.segments.append(record)
                        number += 1
        (staging / RECORDINGS).write_bytes(dumps_like_mozaik(block, wrapper))
    return folder


def truth(spec: MockSpec, part: int, sheet: str, trial: int) -> dict[str, Any]:
    """What a part holds for one sheet and trial: neuron ids, image ids, and per image the
    (counts, flat times) of its blank and its image."""
    starts = first_neuron_ids(spec)
    return {
        "neuron_ids": np.arange(starts[sheet], starts[sheet] + int(spec.neurons[sheet])),
        "image_ids": image_ids(part, spec.images),
        "blank": [draw_segment(spec, part, sheet, trial, k, True) for k in range(spec.images)],
        "image": [draw_segment(spec, part, sheet, trial, k, False) for k in range(spec.images)],
    }


def write_parts(spec: MockSpec, root: str | Path, parts: list[int]) -> list[Path]:
    """A variant's mock parts, in one folder that appears only when all are written."""
    with atomic_directory(root) as staging:
        for part in parts:
            write_part(spec, staging, part, recorded_root=root)
    return [Path(root) / folder_name(part, spec.images) for part in parts]

"""Start-up checks: everything a config names (files, folders, ranges, header shapes) checked
before any job runs, every problem reported as one line naming the config key. Plain
functions over the layouts, so they are tested without Snakemake."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spikeforge.core.errors import InputError
from spikeforge.eeg.tvb import chunk_count
from spikeforge.io.mat import mat_variable_shape
from spikeforge.workflow.layout import (
    CorticalLayout,
    EEGLayout,
    PairedLayout,
    SessionsLayout,
    SpikeTrainsLayout,
)


def problem(key: str, text: str) -> str:
    return f"config key {key}: {text}"


def _file(value: Any, key: str, what: str = "file") -> str | None:
    """The problem with a configured file or folder, or None."""
    if not value:
        return problem(key, f"must name a {what}")
    exists = Path(value).is_dir() if what == "folder" else Path(value).exists()
    if not exists:
        return problem(key, f"{what} not found: {value}")
    return None


def eeg_problems(eeg: EEGLayout) -> list[str]:
    """Every problem of the EEG chain's config and inputs."""
    found = _anatomy_problems(eeg)
    if found:
        return found  # the region count (from the leadfield) is needed by what follows
    try:
        n_regions = eeg.n_regions
    except InputError as error:
        hint = ""
        if "none of the variables" in str(error):
            hint = " (set eeg.anatomy.files.leadfield_key)"
        return [problem("eeg.anatomy.files.leadfield", f"{error}{hint}")]
    found += _clip_problems(eeg, n_regions)
    centres = eeg.plan_cfg["centre_regions"] or []
    if any(r >= n_regions for r in centres):
        found.append(problem("eeg.plan.centre_regions", f"regions must be below {n_regions}"))
    held_out = eeg.plan_cfg["held_out_split"]
    if eeg.plan_cfg["held_out_clips"] > 0 and held_out not in eeg.splits:
        found.append(problem(
            "eeg.plan.held_out_split",
            f"{held_out!r} is not a split of eeg.splits ({', '.join(eeg.splits)})",
        ))  # fmt: skip
    if found:
        return found
    for split in eeg.splits:
        found += _split_problems(eeg, split)
    return found


def _anatomy_problems(eeg: EEGLayout) -> list[str]:
    if eeg.anatomy_cfg["source"] == "demo":
        return []
    files = eeg.anatomy_cfg["files"]
    found = []
    for name in ("leadfield", "region_mapping", "centres"):
        found.append(_file(files[name], f"eeg.anatomy.files.{name}"))
    if files["distances"]:
        found.append(_file(files["distances"], "eeg.anatomy.files.distances"))
    return [p for p in found if p]


def _clip_problems(eeg: EEGLayout, n_regions: int) -> list[str]:
    if eeg.clip_source == "folder":
        found = _file(eeg.cfg["spike_library"]["folder"], "eeg.spike_library.folder", "folder")
        return [found] if found else []
    if eeg.clip_source != "raw":
        return []
    raw = eeg.raw_cfg
    regions = eeg.raw_regions()
    found = [
        problem("eeg.raw.regions", f"region {r} is not below {n_regions}")
        for r in regions
        if r >= n_regions
    ]
    if raw["source"] == "folder":
        missing = _file(raw["folder"], "eeg.raw.folder", "folder")
        if missing:
            return found + [missing]
        found += [
            problem("eeg.raw.folder", f"no folder a{r} in {raw['folder']}")
            for r in regions
            if not Path(eeg.raw_input(r)).is_dir()
        ]
    if raw["source"] in ("tvb", "simulate"):
        simulation, keys = raw[raw["source"]], f"eeg.raw.{raw['source']}"
        missing = _file(simulation["connectivity"], f"{keys}.connectivity")
        found += [missing] if missing else _connectivity_problems(eeg, n_regions, raw["source"])
        try:
            chunk_count(simulation["duration_s"], simulation["chunk_s"], keys)
        except ValueError as error:
            found.append(problem(f"{keys}.chunk_s", f"{error} ({keys}.duration_s)"))
    if raw["source"] == "simulate":
        found += _numba_problem()
    return found


def _numba_problem() -> list[str]:
    import importlib.util

    if importlib.util.find_spec("numba") is None:
        return [problem("eeg.raw.source", "'simulate' needs numba (pip install numba)")]
    return []


def _connectivity_problems(eeg: EEGLayout, n_regions: int, source: str) -> list[str]:
    """The TVB connectivity of raw.source `source` must be readable and as wide as the raw
    data the chain expects."""
    from spikeforge.eeg.raw import FSAVERAGE_RAW_REGIONS
    from spikeforge.eeg.tvb import connectivity_regions

    key = f"eeg.raw.{source}.connectivity"
    try:
        n_connectivity = connectivity_regions(eeg.raw_cfg[source]["connectivity"])
    except InputError as error:
        return [problem(key, str(error))]
    remap = eeg.cfg["preprocessing"]["fsaverage_remap"]
    expected = FSAVERAGE_RAW_REGIONS if remap else n_regions
    if n_connectivity == expected:
        return []
    because = "eeg.preprocessing.fsaverage_remap" if remap else "the leadfield"
    return [problem(key, f"has {n_connectivity} regions, {because} needs {expected}")]


def _split_problems(eeg: EEGLayout, split: str) -> list[str]:
    if eeg.plan_cfg["source"] == "deepsif":
        key = f"eeg.plan.deepsif_metadata.{split}"
        metadata = eeg.plan_cfg["deepsif_metadata"].get(split)
        if not metadata:
            return [problem(key, "required when eeg.plan.source is deepsif")]
        missing = _file(metadata, key)
        if missing:
            return [missing]
        try:
            mat_variable_shape(metadata, ["selected_region"])
        except InputError as error:
            return [problem(key, str(error))]
    try:
        eeg.split_range(split)
    except ValueError as error:
        return [problem(f"eeg.splits.{split}.start", str(error))]
    return []


def paired_problems(paired: PairedLayout) -> list[str]:
    """Every problem of the paired chain's config and inputs."""
    cfg = paired.cfg
    if not paired.cells:
        return [problem("paired.cells", "list the cells to convert")]
    found = _bad_channel_problems(cfg["bad_channels"])
    if paired.source == "spe1":
        found += _spe1_problems(paired)
    elif paired.source == "recordings":
        for cell in paired.cells:
            found += _recording_problems(cfg["recordings"], cell)
    return found


def _bad_channel_problems(settings: dict[str, Any]) -> list[str]:
    from spikeforge.paired.badchannels import bad_channel_settings

    try:
        bad_channel_settings(settings)
    except InputError as error:
        return [problem("paired.bad_channels", error.problem)]
    return []


def _spe1_problems(paired: PairedLayout) -> list[str]:
    from spikeforge.paired.spe1 import read_channel_map

    spe1 = paired.cfg["spe1"]
    found = [_file(spe1["recordings"], "paired.spe1.recordings", "folder")]
    chan_map = _file(spe1["chan_map"], "paired.spe1.chan_map")
    if chan_map is None:
        try:
            read_channel_map(spe1["chan_map"], spe1["reference_channels"])
        except InputError as error:
            chan_map = problem("paired.spe1.chan_map", str(error))
    found.append(chan_map)
    if spe1["summary"]:
        found.append(_file(spe1["summary"], "paired.spe1.summary"))
    if found[0] is None:
        found += [
            problem("paired.cells", f"no folder {cell} in {spe1['recordings']}")
            for cell in paired.cells
            if not (Path(spe1["recordings"]) / cell).is_dir()
        ]
    return [p for p in found if p]


def _recording_problems(recordings: dict[str, Any], cell: str) -> list[str]:
    if cell not in recordings:
        return [problem("paired.cells", f"{cell} is not a key of paired.recordings")]
    spec = recordings[cell]
    key = f"paired.recordings.{cell}"
    found = [
        problem(f"{key}.{name}", f"not found: {spec[name]}")
        for name in ("path", "probe", "spike_times")
        if spec.get(name) and not Path(spec[name]).exists()
    ]
    if spec["reader"] == "binary":
        if not spec.get("probe"):
            found.append(problem(f"{key}.probe", "the binary reader needs a probe file"))
        binary = spec.get("binary") or {}
        found += [
            problem(f"{key}.binary.{name}", "required by the binary reader")
            for name in ("sampling_frequency", "num_channels", "dtype")
            if binary.get(name) is None
        ]
    return found


def spiketrain_problems(layout: SpikeTrainsLayout) -> list[str]:
    """Every problem of the spike-train exports' config and inputs."""
    from spikeforge.spiketrains.formats import FORMATS

    cfg = layout.cfg
    if not layout.items():
        return [problem(
            "spiketrains.sources",
            "nothing to export: enable the paired chain (with sources.paired) or the sessions "
            "chain (with sources.sessions), or name files under sources.files",
        )]  # fmt: skip
    found = []
    for name, spec in cfg["sources"]["files"].items():
        key = f"spiketrains.sources.files.{name}.path"
        target = Path(spec["path"])
        if not target.exists():
            found.append(problem(key, f"{target} does not exist"))
            continue
        fmt = spec.get("format")
        readable = [fmt] if fmt else list(FORMATS)
        if not any(FORMATS[f].can_read(target) for f in readable):
            what = f"a {fmt} file" if fmt else "spike trains in any format spikeforge reads"
            found.append(problem(key, f"{target} is not {what}"))
    try:
        from spikeforge.spiketrains.nwb import session_start

        session_start(cfg["nwb"]["session_start_time"])
    except ValueError as error:
        found.append(problem("spiketrains.nwb.session_start_time", str(error)))
    return found


def session_problems(layout: SessionsLayout) -> list[str]:
    """Settings no mock session can satisfy (the first session's spec stands for all)."""
    sessions = layout.sessions()
    if not sessions:
        return [problem("sessions.patients", "list at least one patient with sessions")]
    patients = [p["patient"] for p in layout.cfg["patients"]]
    if len(set(patients)) != len(patients):
        return [problem("sessions.patients", "a patient is listed twice")]
    return [problem(key, text) for key, text in layout.spec(*sessions[0]).problems()]


def cortical_problems(layout: CorticalLayout) -> list[str]:
    """Variants without parts, part folders without a datastore, windows that do not fit."""
    from spikeforge.cortical.mozaik import RECORDINGS

    cfg = layout.cfg
    if not layout.variants():
        what = "mock.train_parts or mock.test_parts" if layout.source == "mock" else "a root"
        return [problem("cortical", f"no variant to export: give train or test {what}")]
    try:
        parts = layout.parts
    except InputError as error:
        return [str(error)]
    found = []
    for variant, found_parts in parts.items():
        if not found_parts:
            found.append(
                problem(f"cortical.{variant}", f"no parts found in {layout.variant_root(variant)}")
            )
        if layout.source == "datastore":
            found += [
                problem(
                    f"cortical.{variant}",
                    f"part {part}: {folder} is not a Mozaik datastore (no {RECORDINGS})",
                )
                for part, folder in found_parts.items()
                if not os.path.isfile(os.path.join(folder, RECORDINGS))
            ]
    windows = cfg["windows"]
    lengths = (windows["bin_ms"], windows["interval_ms"], windows["offset_ms"])
    if windows["enabled"] and any(length % cfg["bin_ms"] for length in lengths):
        found.append(
            problem(
                "cortical.windows",
                "interval_ms, offset_ms and bin_ms must be multiples of cortical.bin_ms",
            )
        )
    return found

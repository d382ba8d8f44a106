"""Every path a run writes or reads, and the arithmetic that names them (splits, shards,
regions), in one place: the rules, the start-up checks, the job count and the size estimate
all ask these objects, never their own copies.

Patterns keep Snakemake's wildcards (`{split}`, `{shard}`, `{region}`, `{iteration}`, `{k}`,
`{cell}`); `path(pattern, **wildcards)` fills them in. Every path lies under the run's folder
(`run_dir`): results/, logs/ and resources/ (generated inputs such as the demo's).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from spikeforge.core.seeding import int_seed
from spikeforge.eeg.anatomy import LEADFIELD_KEYS
from spikeforge.eeg.library import clip_info_path
from spikeforge.eeg.raw import RAW_FS, chunk_name, region_folder_name
from spikeforge.eeg.tvb import chunk_count
from spikeforge.io.mat import mat_variable_shape


def path(pattern: str, **wildcards: Any) -> str:
    """`pattern` with its wildcards filled in."""
    return pattern.format(**wildcards)


def _join(*parts: str) -> str:
    # Normalised so that "./results/x" and "results/x" are the same file to Snakemake.
    return os.path.normpath(os.path.join(*parts))


@dataclass(frozen=True)
class RunFolders:
    """results/, logs/ and resources/ of a run folder."""

    root: str
    results: str
    logs: str
    resources: str

    @classmethod
    def of(cls, run_dir: str | Path = ".") -> RunFolders:
        root = os.path.normpath(str(run_dir))
        return cls(root, _join(root, "results"), _join(root, "logs"), _join(root, "resources"))


def split_range(total: int, start: int, count: int | None) -> tuple[int, int]:
    """[start, stop) of a split's exported samples: `count` from `start` (None: to the end),
    cut at `total`. ValueError when `start` is not below `total`."""
    if start >= total:
        raise ValueError(f"{start} is past the plan's {total} samples")
    stop = total if count is None else min(total, start + count)
    return start, stop


def shard_ranges(start: int, stop: int, per_shard: int) -> list[tuple[int, int]]:
    """[first, stop) of each shard of the samples [start, stop), `per_shard` at most each."""
    if per_shard < 1:
        raise ValueError("samples per shard must be at least 1")
    return [(a, min(stop, a + per_shard)) for a in range(start, stop, per_shard)]


def shard_name(k: int) -> str:
    return f"{k:04d}"


# A plan part holds the plan rows of whole consecutive shards, about this many: few jobs,
# small files, and a split's plan is built by parallel jobs instead of one serial one.
PLAN_PART_SAMPLES = 10_000


def shards_per_plan_part(per_shard: int) -> int:
    return max(1, round(PLAN_PART_SAMPLES / per_shard))


class EEGLayout:
    """The EEG chain of a run: its paths, regions, splits and shards."""

    def __init__(self, eeg: Mapping[str, Any], seed: int, folders: RunFolders) -> None:
        self.cfg = eeg
        self.seed = seed
        self.folders = folders
        results, logs = folders.results, folders.logs
        demo = _join(folders.resources, "demo")
        self.demo_anatomy = {
            "leadfield": f"{demo}/anatomy/leadfield.mat",
            "region_mapping": f"{demo}/anatomy/region_mapping.mat",
            "centres": f"{demo}/anatomy/centres.mat",
        }
        self.anatomy = f"{results}/anatomy/anatomy.h5"
        self.mock_raw_folder = f"{demo}/raw_nmm"
        self.mock_raw_region = f"{demo}/raw_nmm/{region_folder_name('{region}')}"
        self.tvb_folder = f"{results}/raw_nmm"
        self.tvb_chunk = f"{results}/raw_nmm/{region_folder_name('{region}')}/" + chunk_name(
            "{region}", "{iteration}", "{k}"
        )
        self.clip_folder = f"{results}/nmm_spikes"
        self.clips = f"{results}/nmm_spikes/{region_folder_name('{region}')}"
        self.clip_info = str(clip_info_path(self.clip_folder, "{region}"))  # type: ignore[arg-type]
        # source 'simulate': one clip folder (a{r}/, clip_info/) per job of a few regions
        self.simulated_clips = f"{results}/nmm_spikes/batch_{{batch}}"
        self.qc = {
            "samples": f"{results}/qc/eeg/{{split}}_samples.png",
            "snr": f"{results}/qc/eeg/{{split}}_snr.png",
            "plan": f"{results}/qc/eeg/{{split}}_plan.png",
            "clips": f"{results}/qc/eeg/spike_library.png",
        }
        self.mock_clips = f"{demo}/nmm_spikes"
        self.library = f"{results}/spike_library/library.h5"
        self.plan_part = f"{results}/plan/{{split}}/part_{{plan_part}}.h5"
        self.plan_folder = f"{results}/plan/{{split}}"
        self.imported_plan = f"{results}/plan/{{split}}_deepsif.h5"
        self.shard = f"{results}/{{split}}/hdf5/shard_{{shard}}.h5"
        self.split_index = f"{results}/{{split}}/hdf5/index.json"
        self.mat_shard = f"{results}/{{split}}/mat/shard_{{shard}}"
        self.mat_metadata = f"{results}/{{split}}/mat/extraction_metadata.mat"
        self.deepsif_metadata = f"{results}/deepsif/{{split}}_sample_source1.mat"
        self.deepsif_clips = f"{results}/deepsif/{{split}}_sample_nmm.h5"
        self.logs = {
            "demo_anatomy": f"{logs}/anatomy/demo_anatomy.log",
            "anatomy": f"{logs}/anatomy/anatomy.log",
            "mock_raw_nmm": f"{logs}/clips/mock_raw_nmm_{{region}}.log",
            "simulate_tvb": f"{logs}/clips/simulate_tvb_{{region}}_{{iteration}}.log",
            "extract_clips": f"{logs}/clips/extract_clips_{{region}}.log",
            "simulate_clips": f"{logs}/clips/simulate_clips_{{batch}}.log",
            "qc_eeg_split": f"{logs}/qc/eeg_{{split}}.log",
            "qc_eeg_library": f"{logs}/qc/eeg_spike_library.log",
            "mock_spike_clips": f"{logs}/spike_library/mock_spike_clips.log",
            "spike_library": f"{logs}/spike_library/spike_library.log",
            "import_deepsif_plan": f"{logs}/plan/{{split}}_deepsif.log",
            "sample_plan": f"{logs}/plan/{{split}}_{{plan_part}}.log",
            "synthesize_shard": f"{logs}/synthesis/{{split}}_{{shard}}.log",
            "split_index": f"{logs}/synthesis/{{split}}_index.log",
            "export_mat_shard": f"{logs}/export/mat_{{split}}_{{shard}}.log",
            "export_mat_metadata": f"{logs}/export/mat_metadata_{{split}}.log",
            "export_deepsif": f"{logs}/export/deepsif.log",
        }

    # ------------------------------------------------------------------ config views
    @property
    def anatomy_cfg(self) -> Mapping[str, Any]:
        return self.cfg["anatomy"]

    @property
    def raw_cfg(self) -> Mapping[str, Any]:
        return self.cfg["raw"]

    @property
    def clip_source(self) -> str:
        return self.cfg["spike_library"]["source"]

    @property
    def plan_cfg(self) -> Mapping[str, Any]:
        return self.cfg["plan"]

    @property
    def splits(self) -> list[str]:
        return list(self.cfg["splits"])

    @property
    def samples_per_shard(self) -> int:
        return int(self.cfg["synthesis"]["samples_per_shard"])

    # ------------------------------------------------------------------ anatomy and regions
    def anatomy_inputs(self) -> dict[str, str]:
        """The head model files the anatomy job reads."""
        if self.anatomy_cfg["source"] == "demo":
            return dict(self.demo_anatomy)
        files = self.anatomy_cfg["files"]
        inputs = {k: files[k] for k in ("leadfield", "region_mapping", "centres")}
        if files["distances"]:
            inputs["distances"] = files["distances"]
        return inputs

    @cached_property
    def n_regions(self) -> int:
        """Regions of the head model: from the config (demo) or the leadfield's header.
        Raises InputError naming the file when the header cannot be read."""
        if self.anatomy_cfg["source"] == "demo":
            return int(self.anatomy_cfg["demo"]["n_regions"])
        key = self.anatomy_cfg["files"]["leadfield_key"]
        keys = [key] if key else list(LEADFIELD_KEYS)
        return int(mat_variable_shape(self.anatomy_cfg["files"]["leadfield"], keys)[1])

    @property
    def n_channels(self) -> int:
        if self.anatomy_cfg["source"] == "demo":
            return int(self.anatomy_cfg["demo"]["n_channels"])
        key = self.anatomy_cfg["files"]["leadfield_key"]
        keys = [key] if key else list(LEADFIELD_KEYS)
        return int(mat_variable_shape(self.anatomy_cfg["files"]["leadfield"], keys)[0])

    def raw_regions(self) -> list[int]:
        """Spiking regions whose raw recordings become clips."""
        regions = self.raw_cfg["regions"]
        return list(regions) if regions is not None else list(range(self.n_regions))

    def tvb_chunk_count(self) -> int:
        tvb = self.raw_cfg["tvb"]
        return chunk_count(tvb["duration_s"], tvb["chunk_s"])

    def tvb_outputs(self) -> list[str]:
        """simulate_tvb's chunk files, with the {region} and {iteration} wildcards."""
        n_chunks = self.tvb_chunk_count() if self.raw_cfg["source"] == "tvb" else 1
        return [
            path(self.tvb_chunk, region="{region}", iteration="{iteration}", k=k)
            for k in range(n_chunks)
        ]

    def expected_raw_chunks(self) -> int | None:
        """Chunks per simulation the config implies (mock and TVB recordings); None for a
        folder of recordings, whose length the config does not give."""
        source = self.raw_cfg["source"]
        if source == "tvb":
            return self.tvb_chunk_count()
        if source == "mock":
            mock = self.raw_cfg["mock"]
            samples = int(round(mock["duration_s"] * RAW_FS))
            per_chunk = int(round(mock["chunk_s"] * RAW_FS))
            return -(-samples // per_chunk)
        return None

    def raw_folder(self) -> str:
        """The folder holding a{r}/ raw recordings."""
        return {
            "mock": self.mock_raw_folder,
            "folder": self.raw_cfg["folder"],
            "tvb": self.tvb_folder,
            "simulate": self.tvb_folder,  # no raw files are read: simulate_clips makes clips
        }[self.raw_cfg["source"]]

    def raw_input(self, region: int) -> str | list[str]:
        """What extract_clips reads for one region: a folder, or TVB's chunk files."""
        if self.raw_cfg["source"] == "tvb":
            return [
                path(self.tvb_chunk, region=region, iteration=m, k=k)
                for m in self.raw_cfg["iterations"]
                for k in range(self.tvb_chunk_count())
            ]
        if self.raw_cfg["source"] == "mock":
            return path(self.mock_raw_region, region=region)
        return str(Path(self.raw_cfg["folder"]) / region_folder_name(region))

    def simulate_batches(self) -> list[list[int]]:
        """The spiking regions of each simulate_clips job, in order."""
        regions, size = self.raw_regions(), int(self.raw_cfg["simulate"]["regions_per_job"])
        return [regions[i : i + size] for i in range(0, len(regions), size)]

    def simulate_batch_regions(self, batch: str | int) -> list[int]:
        return self.simulate_batches()[int(batch)]

    def simulated_clip_folders(self) -> list[str]:
        return [
            path(self.simulated_clips, batch=f"{b:04d}")
            for b in range(len(self.simulate_batches()))
        ]

    # ------------------------------------------------------------------ spike library
    def library_folder(self) -> str | list[str]:
        if self.clip_source == "raw" and self.raw_cfg["source"] == "simulate":
            return self.simulated_clip_folders()
        return {
            "raw": self.clip_folder,
            "mock": self.mock_clips,
            "folder": self.cfg["spike_library"]["folder"],
        }[self.clip_source]

    def library_regions(self) -> list[int] | None:
        """The region folders the library reads (None: every a{r} of a folder of clips)."""
        return self.raw_regions() if self.clip_source == "raw" else None

    def library_inputs(self) -> dict[str, Any]:
        if self.clip_source == "raw" and self.raw_cfg["source"] == "simulate":
            return {"clips": self.simulated_clip_folders()}
        if self.clip_source == "raw":
            regions = self.raw_regions()
            return {
                "clips": [path(self.clips, region=r) for r in regions],
                "clip_info": [path(self.clip_info, region=r) for r in regions],
            }
        return {"clips": self.library_folder()}

    # ------------------------------------------------------------------ splits and shards
    def split_size(self, split: str) -> int:
        """Samples the split's plan holds (from the config and file headers)."""
        if self.plan_cfg["source"] == "deepsif":
            metadata = self.plan_cfg["deepsif_metadata"][split]
            return int(mat_variable_shape(metadata, ["selected_region"])[0])
        centres = self.plan_cfg["centre_regions"]
        if centres:
            n_centres = len(centres)
        elif self.clip_source == "raw":
            n_centres = len(self.raw_regions())
        else:
            n_centres = self.n_regions
        return n_centres * int(self.cfg["splits"][split]["samples_per_region"])

    def split_range(self, split: str) -> tuple[int, int]:
        settings = self.cfg["splits"][split]
        return split_range(self.split_size(split), settings["start"], settings["count"])

    def shard_ranges(self, split: str) -> list[tuple[int, int]]:
        return shard_ranges(*self.split_range(split), self.samples_per_shard)

    def shards(self, split: str) -> list[str]:
        return [shard_name(k) for k in range(len(self.shard_ranges(split)))]

    def shard_range(self, split: str, shard: str) -> tuple[int, int]:
        return self.shard_ranges(split)[int(shard)]

    @property
    def shards_per_plan_part(self) -> int:
        return shards_per_plan_part(self.samples_per_shard)

    def plan_parts(self, split: str) -> list[str]:
        n_shards = len(self.shard_ranges(split))
        return [shard_name(p) for p in range(-(-n_shards // self.shards_per_plan_part))]

    def plan_part_range(self, split: str, plan_part: str) -> tuple[int, int]:
        """[first, stop) of the plan rows of one part: those of its shards."""
        ranges = self.shard_ranges(split)
        first = int(plan_part) * self.shards_per_plan_part
        last = min(len(ranges), first + self.shards_per_plan_part) - 1
        return ranges[first][0], ranges[last][1]

    def plan_part_of(self, split: str, shard: str) -> str:
        """The plan part holding a shard's rows."""
        return shard_name(int(shard) // self.shards_per_plan_part)

    def plan_part_paths(self, split: str) -> list[str]:
        return [path(self.plan_part, split=split, plan_part=p) for p in self.plan_parts(split)]

    def plan_settings(self, split: str) -> dict[str, Any]:
        """The keywords of eeg.plan.PlanConfig for one split (what its sample_plan job uses)."""
        plan, settings = self.plan_cfg, self.cfg["splits"][split]
        centres = plan["centre_regions"]
        return {
            "n_samples": self.split_size(split),
            "n_sources": plan["n_sources"],
            "samples_per_region": settings["samples_per_region"],
            "patch_method": plan["patch_method"],
            "grow_layers": list(plan["grow_layers"]),
            "disk_radius_mm": plan["disk_radius_mm"],
            "point_05_range_mm": list(plan["point_05_range_mm"]),
            "target_snrs_db": list(settings["target_snrs_db"]),
            "sensor_snrs_db": list(plan["sensor_snrs_db"]),
            "centre_regions": list(centres) if centres else None,
            "held_out_clips": plan["held_out_clips"],
            "use_held_out": split == plan["held_out_split"],
        }

    def mat_splits(self) -> list[str]:
        mat = self.cfg["export"]["mat"]
        if not mat["enabled"]:
            return []
        if mat["splits"] is None:
            return self.splits
        return [s for s in mat["splits"] if s in self.splits]

    # ------------------------------------------------------------------ QC figures
    def qc_targets(self) -> list[str]:
        figures = [
            path(self.qc[k], split=s) for s in self.splits for k in ("samples", "snr", "plan")
        ]
        return figures + [self.qc["clips"]]

    def qc_job_counts(self) -> dict[str, int]:
        return {"qc_eeg_split": len(self.splits), "qc_eeg_library": 1}

    def channel_names(self) -> list[str] | None:
        """Electrode names where the head model knows them (the demo's): for topographies."""
        if self.anatomy_cfg["source"] != "demo":
            return None
        from spikeforge.eeg.demo_anatomy import CHANNEL_ORDER

        return list(CHANNEL_ORDER[: self.n_channels])

    # ------------------------------------------------------------------ what the chain makes
    def targets(self) -> list[str]:
        # Intermediate outputs are named too: Snakemake only notices a deleted file it targets.
        outputs: list[str] = []
        if self.clip_source == "raw":
            inputs = self.library_inputs()
            outputs += inputs["clips"] + inputs.get("clip_info", [])
        for split in self.splits:
            shards = self.shards(split)
            outputs += self.plan_part_paths(split)
            outputs += [path(self.shard, split=split, shard=k) for k in shards]
            outputs.append(path(self.split_index, split=split))
            if split in self.mat_splits():
                outputs += [path(self.mat_shard, split=split, shard=k) for k in shards]
                outputs.append(path(self.mat_metadata, split=split))
            if self.cfg["export"]["deepsif"]["enabled"]:
                outputs.append(path(self.deepsif_metadata, split=split))
                outputs.append(path(self.deepsif_clips, split=split))
        return outputs

    def job_counts(self) -> dict[str, int]:
        """Jobs of every rule this chain's config defines (what a first run executes)."""
        counts: dict[str, int] = {}
        if self.anatomy_cfg["source"] == "demo":
            counts["demo_anatomy"] = 1
        counts["anatomy"] = 1
        if self.clip_source == "raw":
            regions = len(self.raw_regions())
            if self.raw_cfg["source"] == "mock":
                counts["mock_raw_nmm"] = regions
            elif self.raw_cfg["source"] == "tvb":
                counts["simulate_tvb"] = regions * len(self.raw_cfg["iterations"])
            if self.raw_cfg["source"] == "simulate":
                counts["simulate_clips"] = len(self.simulate_batches())
            else:
                counts["extract_clips"] = regions
        elif self.clip_source == "mock":
            counts["mock_spike_clips"] = 1
        counts["spike_library"] = 1
        splits = len(self.splits)
        if self.plan_cfg["source"] == "deepsif":
            counts["import_deepsif_plan"] = splits
        counts["sample_plan"] = sum(len(self.plan_parts(s)) for s in self.splits)
        counts["synthesize_shard"] = sum(len(self.shards(s)) for s in self.splits)
        counts["split_index"] = splits
        mat = self.mat_splits()
        if mat:
            counts["export_mat_shard"] = sum(len(self.shards(s)) for s in mat)
            counts["export_mat_metadata"] = len(mat)
        if self.cfg["export"]["deepsif"]["enabled"]:
            counts["export_deepsif"] = 1
        return {rule: n for rule, n in counts.items() if n}

    def sample_count(self) -> int:
        return sum(stop - start for s in self.splits for start, stop in [self.split_range(s)])


class PairedLayout:
    """The paired-recording chain of a run: its cells, their inputs and outputs."""

    def __init__(self, paired: Mapping[str, Any], seed: int, folders: RunFolders) -> None:
        self.cfg = paired
        self.seed = seed
        self.folders = folders
        results, logs = folders.results, folders.logs
        spe1 = _join(folders.resources, "demo", "spe1")
        self.mock_root = spe1
        self.mock_recordings = f"{spe1}/Recordings"
        self.mock_cell = f"{spe1}/Recordings/{{cell}}"
        self.mock_row = f"{spe1}/summary_rows/{{cell}}.json"
        self.mock_chan_map = f"{spe1}/chanMap.mat"
        self.mock_summary = f"{spe1}/Data Summary.xlsx"
        cell = f"{results}/paired/{{cell}}"
        self.outputs = {
            "train": f"{cell}/train",
            "test": f"{cell}/test",
            "dataset_dict": f"{cell}/dataset_dict.json",
            "metadata": f"{cell}/conversion_metadata.json",
            "templates": f"{cell}/templates.npz",
        }
        self.logs = {
            "mock_spe1_probe": f"{logs}/paired/mock_spe1_probe.log",
            "mock_spe1_cell": f"{logs}/paired/mock_spe1_{{cell}}.log",
            "mock_spe1_summary": f"{logs}/paired/mock_spe1_summary.log",
            "convert_cell": f"{logs}/paired/convert_{{cell}}.log",
            "qc_paired_cell": f"{logs}/qc/paired_{{cell}}.log",
        }
        self.qc_cell = f"{results}/qc/paired/{{cell}}.png"

    @property
    def cells(self) -> list[str]:
        return list(self.cfg["cells"])

    @property
    def source(self) -> str:
        return self.cfg["source"]

    def spe1_paths(self) -> dict[str, Any]:
        """Recordings folder, channel map and summary of the SPE-1 layout (mock or real)."""
        if self.source == "mock":
            return {
                "recordings": self.mock_recordings,
                "chan_map": self.mock_chan_map,
                "summary": self.mock_summary,
                "reference_channels": None,
            }
        return dict(self.cfg["spe1"])

    def cell_inputs(self, cell: str) -> dict[str, Any]:
        """The files the cell's job reads (a summary the mock regenerates when a cell is added
        is marked by the rule as ancient: existing cells' rows do not change)."""
        if self.source == "recordings":
            spec = self.cfg["recordings"][cell]
            inputs = {"recording": spec["path"]}
            for key in ("probe", "spike_times"):
                if spec.get(key):
                    inputs[key] = spec[key]
            return inputs
        paths = self.spe1_paths()
        inputs = {
            "cell": str(Path(paths["recordings"]) / cell),
            "chan_map": paths["chan_map"],
        }
        if paths["summary"]:
            inputs["summary"] = paths["summary"]
        return inputs

    def cell_settings(self, cell: str) -> dict[str, Any]:
        """What convert_cell needs of the config for this cell only (paired.cell.CellSettings),
        so that a change to another cell never marks this one as changed."""
        cfg = self.cfg
        bad_channels = dict(cfg["bad_channels"])
        settings: dict[str, Any] = {
            "cell": cell,
            "skip_s": cfg["window"]["skip_s"],
            "duration_s": cfg["window"]["duration_s"],
            "segment_s": cfg["segment_s"],
            "train_fraction": cfg["train_fraction"],
            "ms_before": cfg["template"]["ms_before"],
            "ms_after": cfg["template"]["ms_after"],
            "min_spikes": cfg["template"]["min_spikes"],
            # The detectors' random chunks: seeded per cell unless the config fixes the seed.
            "bad_channels": {"seed": int_seed(self.seed, "bad_channels", cell), **bad_channels},
            "detect_threshold": cfg["peak_detection"]["detect_threshold"],
            "peak_detection_seed": int_seed(self.seed, "peak_detection", cell),
        }
        if self.source == "recordings":
            spec = dict(cfg["recordings"][cell])
            binary = spec.pop("binary", None) or {}
            # Only the binary reader takes these (the others read them from the files).
            settings["recording"] = {**spec, "binary": binary if spec["reader"] == "binary" else {}}
        else:
            settings["spe1"] = self.spe1_paths()
        return settings

    def targets(self) -> list[str]:
        return [path(p, cell=cell) for cell in self.cells for p in self.outputs.values()]

    def qc_targets(self) -> list[str]:
        return [path(self.qc_cell, cell=cell) for cell in self.cells]

    def qc_job_counts(self) -> dict[str, int]:
        return {"qc_paired_cell": len(self.cells)} if self.cells else {}

    def job_counts(self) -> dict[str, int]:
        counts = {}
        if self.source == "mock" and self.cells:
            counts = {"mock_spe1_probe": 1, "mock_spe1_cell": len(self.cells)}
            counts["mock_spe1_summary"] = 1
        counts["convert_cell"] = len(self.cells)
        return {rule: n for rule, n in counts.items() if n}


class SessionsLayout:
    """The mock-session chain of a run: one job per (patient, session), the movie's labels."""

    def __init__(self, cfg: Mapping[str, Any], seed: int, folders: RunFolders) -> None:
        self.cfg = cfg
        self.seed = seed
        self.folders = folders
        self.root = f"{folders.results}/sessions"
        self.session = f"{self.root}/patient_data/{{patient}}/session_{{session}}"
        self.annotation = f"{self.root}/movie_annotation"
        self.logs = {
            "mock_session": f"{folders.logs}/sessions/patient_{{patient}}_session_{{session}}.log",
            "movie_annotation": f"{folders.logs}/sessions/movie_annotation.log",
        }

    def sessions(self) -> list[tuple[int, int]]:
        return [(int(p["patient"]), int(s)) for p in self.cfg["patients"] for s in p["sessions"]]

    def spec(self, patient: int | str, session: int | str) -> Any:
        from spikeforge.sessions.spec import spec_from_config

        return spec_from_config(self.cfg, int(patient), int(session), self.seed)

    def item(self, patient: int, session: int) -> str:
        """The session's name as a spike-train export item."""
        return f"patient_{patient}_session_{session}"

    def folder_of_item(self, item: str) -> str:
        _, patient, _, session = item.split("_")
        return path(self.session, patient=patient, session=session)

    def targets(self) -> list[str]:
        folders = [path(self.session, patient=p, session=s) for p, s in self.sessions()]
        return folders + [self.annotation]

    def job_counts(self) -> dict[str, int]:
        return {"mock_session": len(self.sessions()), "movie_annotation": 1}


class CorticalLayout:
    """The cortical exports of a run: parts found per variant, one job per (variant, sheet,
    part). Parts are found from folder or file names only (no datastore is opened), so a dry
    run over thousands of parts stays fast."""

    VARIANTS = ("train", "test")
    MOCK_FIRST_PART = {"train": 50_000, "test": 300_000}
    MOCK_PART_STEP = 100

    def __init__(self, cfg: Mapping[str, Any], seed: int, folders: RunFolders) -> None:
        self.cfg = cfg
        self.seed = seed
        self.folders = folders
        self.root = f"{folders.results}/cortical"
        self.mock_root = _join(folders.resources, "demo", "cortical")
        self.mock_variant = f"{self.mock_root}/{{variant}}"
        self.logs = {
            "mock_datastores": f"{folders.logs}/cortical/mock_{{variant}}.log",
            "export": f"{folders.logs}/cortical/{{variant}}/{{sheet}}_{{part}}.log",
            "qc": f"{folders.logs}/qc/cortical_{{variant}}_{{sheet}}.log",
        }

    @property
    def source(self) -> str:
        return self.cfg["source"]

    @property
    def sheets(self) -> list[str]:
        return list(self.cfg["sheets"])

    def sheet_folders(self) -> list[str]:
        from spikeforge.cortical.sheets import folder_name

        return [folder_name(s) for s in self.sheets]

    def variants(self) -> list[str]:
        if self.source == "mock":
            mock = self.cfg["mock"]
            counts = {"train": mock["train_parts"], "test": mock["test_parts"]}
            return [v for v in self.VARIANTS if self.cfg[v]["enabled"] and counts[v]]
        return [v for v in self.VARIANTS if self.cfg[v]["enabled"] and self.cfg[v]["root"]]

    def trials(self, variant: str) -> int | None:
        """Trials exported per part (None: a train part, one file without trial_)."""
        if variant == "train":
            return None
        return int(
            self.cfg["mock"]["test_trials"] if self.source == "mock" else self.cfg["test"]["trials"]
        )

    def variant_root(self, variant: str) -> str:
        return f"{self.mock_root}/{variant}" if self.source == "mock" else self.cfg[variant]["root"]

    @cached_property
    def parts(self) -> dict[str, dict[str, str]]:
        """variant -> {part id: the datastore folder or HDF5 file}. InputError names the
        folder when two entries have the same part id or a named part is missing."""
        from spikeforge.cortical.mock import folder_name as mock_folder
        from spikeforge.cortical.mozaik import part_id

        found: dict[str, dict[str, str]] = {}
        for variant in self.variants():
            root = self.variant_root(variant)
            if self.source == "mock":
                mock = self.cfg["mock"]
                count = mock["train_parts"] if variant == "train" else mock["test_parts"]
                first = self.MOCK_FIRST_PART[variant]
                numbers = [first + k * self.MOCK_PART_STEP for k in range(count)]
                found[variant] = {
                    str(n): f"{root}/{mock_folder(n, mock['images'])}" for n in numbers
                }
                continue
            found[variant] = self._scan(variant, root, part_id)
        return found

    def _scan(self, variant: str, root: str, part_id: Any) -> dict[str, str]:
        import fnmatch

        from spikeforge.core.errors import InputError

        spec = self.cfg[variant]
        folder = Path(root)
        if not folder.is_dir():
            raise InputError(root, "no such folder", key=f"cortical.{variant}.root")
        parts: dict[str, str] = {}
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries if not e.name.startswith("."))
        for name in names:
            if not fnmatch.fnmatch(name, spec["part_pattern"]):
                continue
            if self.source == "hdf5":
                if not name.endswith(".h5"):
                    continue
                part = name[: -len(".h5")]
            else:
                if ":" not in name:
                    continue
                part = part_id(name)
            if part in parts:
                raise InputError(
                    folder / name,
                    f"part {part} again (also {parts[part]})",
                    key=f"cortical.{variant}",
                )
            parts[part] = str(folder / name)
        if spec["parts"] is not None:
            missing = [p for p in spec["parts"] if p not in parts]
            if missing:
                raise InputError(
                    root, f"no part {', '.join(missing)} here", key=f"cortical.{variant}.parts"
                )
            parts = {p: parts[p] for p in spec["parts"]}
        return parts

    def mock_spec(self, variant: str) -> Any:
        from spikeforge.cortical.mock import MockSpec

        mock = self.cfg["mock"]
        return MockSpec(
            neurons={s: int(mock["neurons"][s]) for s in self.sheets if s in mock["neurons"]},
            images=int(mock["images"]),
            trials=1 if variant == "train" else int(mock["test_trials"]),
            blank_ms=float(mock["blank_ms"]),
            image_ms=float(mock["image_ms"]),
            seed=self.seed,
        )

    def rules(self) -> list[tuple[str, str]]:
        """(variant, sheet folder name) of each export rule."""
        return [(v, s) for v in self.variants() for s in self.sheet_folders()]

    @staticmethod
    def rule_name(variant: str, sheet_folder: str) -> str:
        return f"export_cortical_{variant}_{sheet_folder}"

    def outputs(self, variant: str, sheet_folder: str) -> list[str]:
        """An export rule's outputs (wildcard {part})."""
        from spikeforge.cortical.export import output_paths
        from spikeforge.cortical.sheets import sheet_of_folder

        paths = output_paths(f"{self.root}/{variant}", sheet_of_folder(sheet_folder), "{part}",
                             self.trials(variant), self.cfg["windows"]["enabled"],
                             self.cfg["experanto"])  # fmt: skip
        return [str(p) for p in paths.values()]

    def qc_figure(self, variant: str = "{variant}", sheet_folder: str = "{sheet}") -> str:
        return f"{self.folders.results}/qc/cortical/{variant}/{sheet_folder}.png"

    def qc_inputs(self, variant: str, sheet_folder: str) -> dict[str, str]:
        """The first part's image ids and spike counts (trial 0 of a test part)."""
        from spikeforge.cortical.export import output_paths
        from spikeforge.cortical.sheets import sheet_of_folder

        part = sorted(self.parts[variant])[0]
        paths = output_paths(f"{self.root}/{variant}", sheet_of_folder(sheet_folder), part,
                             self.trials(variant), False)  # fmt: skip
        spikes = paths["spikes"] if "spikes" in paths else paths["spikes_trial_0"]
        return {"spikes": str(spikes), "image_ids": str(paths["image_ids"])}

    def qc_targets(self) -> list[str]:
        return [self.qc_figure(v, s) for v, s in self.rules() if self.parts.get(v)]

    def qc_job_counts(self) -> dict[str, int]:
        return {"qc_cortical_sheet": len(self.qc_targets())} if self.qc_targets() else {}

    def directory_outputs(self, variant: str, sheet_folder: str) -> set[str]:
        """The outputs that are folders (the Experanto layout)."""
        from spikeforge.cortical.sheets import folder_name, sheet_of_folder

        if not self.cfg["experanto"]:
            return set()
        name = folder_name(sheet_of_folder(sheet_folder))
        return {f"{self.root}/{variant}/experanto/{name}/{{part}}"}

    def settings(self, variant: str, sheet_folder: str) -> dict[str, Any]:
        """What an export rule's jobs need of the config (the part comes from the job)."""
        from spikeforge.cortical.sheets import sheet_of_folder

        windows = dict(self.cfg["windows"])
        enabled = windows.pop("enabled")
        return {
            "sheet": sheet_of_folder(sheet_folder),
            "trials": self.trials(variant),
            "bin_ms": self.cfg["bin_ms"],
            "images": self.cfg["images"],
            "compressed": self.cfg["compressed"],
            "windows": windows if enabled else None,
            "source": "hdf5" if self.source == "hdf5" else "datastore",
            "out_root": f"{self.root}/{variant}",
            # with the mock, the job's input is the variant's folder of datastores
            "mock_images": self.cfg["mock"]["images"] if self.source == "mock" else None,
            "experanto": self.cfg["experanto"],
        }

    def neurons(self, sheet_folder: str) -> int:
        from spikeforge.cortical.sheets import FULL_SIZES, sheet_of_folder

        sheet = sheet_of_folder(sheet_folder)
        if self.source == "mock":
            return int(self.cfg["mock"]["neurons"].get(sheet, 1))
        return int(self.cfg["neurons"].get(sheet, FULL_SIZES[sheet]))

    def targets(self) -> list[str]:
        targets = []
        for variant, sheet in self.rules():
            for pattern in self.outputs(variant, sheet):
                targets += [path(pattern, part=part) for part in self.parts[variant]]
        return targets

    def job_counts(self) -> dict[str, int]:
        counts = {}
        for variant, parts in self.parts.items():
            if self.source == "mock":
                counts["mock_cortical"] = counts.get("mock_cortical", 0) + 1
            for sheet in self.sheet_folders():
                counts[self.rule_name(variant, sheet)] = len(parts)
        return {rule: n for rule, n in counts.items() if n}


class SpikeTrainsLayout:
    """The spike-train exports of a run: (source, item) pairs, one job per format each."""

    def __init__(
        self,
        cfg: Mapping[str, Any],
        folders: RunFolders,
        paired: PairedLayout | None,
        sessions: SessionsLayout | None = None,
    ) -> None:
        from spikeforge.spiketrains.formats import output_name

        self.cfg = cfg
        self.folders = folders
        self.paired = paired
        self.sessions = sessions
        root = f"{folders.results}/spiketrains/{{source}}/{{item}}"
        self.outputs = {fmt: f"{root}/{output_name(fmt)}" for fmt in self.formats}
        self.logs = {
            fmt: f"{folders.logs}/spiketrains/{{source}}/{{item}}/{fmt}.log" for fmt in self.formats
        }
        self.logs["qc"] = f"{folders.logs}/qc/spiketrains_{{source}}_{{item}}.log"
        self.qc_item = f"{folders.results}/qc/spiketrains/{{source}}/{{item}}.png"

    def qc_format(self) -> str | None:
        """The export the QC figure reads back (an HDF5 style, the project's own loader)."""
        found = [f for f in self.formats if f.startswith("hdf5_")]
        return found[0] if found else None

    def qc_targets(self) -> list[str]:
        if self.qc_format() is None:
            return []
        return [path(self.qc_item, source=s, item=i) for s, i in self.items()]

    def qc_job_counts(self) -> dict[str, int]:
        return {"qc_spiketrains_item": len(self.qc_targets())} if self.qc_targets() else {}

    @property
    def formats(self) -> list[str]:
        return list(self.cfg["formats"])

    def items(self) -> list[tuple[str, str]]:
        """(source, item) of every export: the paired chain's cells, the generated sessions,
        then the named files."""
        found = []
        if self.cfg["sources"]["paired"] and self.paired is not None:
            found += [("paired", cell) for cell in self.paired.cells]
        if self.cfg["sources"]["sessions"] and self.sessions is not None:
            found += [("sessions", self.sessions.item(*ps)) for ps in self.sessions.sessions()]
        found += [("files", name) for name in self.cfg["sources"]["files"]]
        return found

    def inputs(self, source: str, item: str) -> dict[str, str]:
        """What one export job reads: the converted cell's outputs, the session's folder, or
        the named file."""
        if source == "paired" and self.paired is not None:
            return {name: path(p, cell=item) for name, p in self.paired.outputs.items()}
        if source == "sessions" and self.sessions is not None:
            return {"session": self.sessions.folder_of_item(item)}
        return {"spiketrains": self.cfg["sources"]["files"][item]["path"]}

    def settings(self, source: str, item: str) -> dict[str, Any]:
        """What the export job needs of the config (only this item's part of it)."""
        nwb = dict(self.cfg["nwb"])
        nwb["subject_id"] = nwb["subject_id"] or item
        settings: dict[str, Any] = {
            "source": source,
            "item": item,
            "time_unit": self.cfg["time_unit"],
            "raster_bin_ms": self.cfg["raster_bin_ms"],
            "nwb": nwb,
        }
        if source == "files":
            spec = self.cfg["sources"]["files"][item]
            settings["format"] = spec.get("format")
            settings["sampling_frequency"] = spec.get("sampling_frequency")
            settings["file_time_unit"] = spec.get("time_unit")
        return settings

    def targets(self) -> list[str]:
        return [
            path(self.outputs[fmt], source=source, item=item)
            for source, item in self.items()
            for fmt in self.formats
        ]

    def job_counts(self) -> dict[str, int]:
        items = len(self.items())
        return {f"export_{fmt}": items for fmt in self.formats if items}

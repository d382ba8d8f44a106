import math
import os
import sys
from pathlib import Path

from snakemake.utils import validate

import spikeforge
from spikeforge.config_check import config_problems
from spikeforge.errors import InputError
from spikeforge.matio import mat_variable_shape


def fail(*problems):
    """Stop at start-up with one line per problem, before any job runs."""
    for problem in problems:
        print(f"spikeforge: error: {problem}", file=sys.stderr)
    sys.exit(1)


# Jobs run one per core and their matrix products are small: BLAS threads would only compete.
for _blas_threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_blas_threads, "1")

SCHEMA = Path(workflow.current_basedir) / "../schemas/config.schema.yaml"
if problems := config_problems(config, SCHEMA):
    fail(*problems)
validate(config, schema=str(SCHEMA), set_default=True)

SPIKEFORGE_VERSION = spikeforge.__version__
SPLITS = list(config["splits"])
PLAN = config["plan"]
EXPORT = config["export"]
SAMPLES_PER_SHARD = config["synthesis"]["samples_per_shard"]
DEMO = "resources/demo"


wildcard_constraints:
    split="|".join(SPLITS) if SPLITS else "(?!)",
    shard=r"\d{4}",
    region=r"\d+",
    iteration=r"\d+",
    cell=r"[A-Za-z0-9_.-]+",


def config_error(key, problem):
    fail(f"config key {key}: {problem}")


def configured_file(key_path):
    """The file named by a dotted config key; fails at start-up if it is missing."""
    value = config
    for part in key_path.split("."):
        value = value[part]
    if not value:
        config_error(key_path, "must name a file")
    if not Path(value).exists():
        config_error(key_path, f"file not found: {value}")
    return value


def anatomy_inputs():
    if config["anatomy"]["source"] == "demo":
        return {
            "leadfield": f"{DEMO}/anatomy/leadfield.mat",
            "region_mapping": f"{DEMO}/anatomy/region_mapping.mat",
            "centres": f"{DEMO}/anatomy/centres.mat",
        }
    files = {
        "leadfield": configured_file("anatomy.files.leadfield"),
        "region_mapping": configured_file("anatomy.files.region_mapping"),
        "centres": configured_file("anatomy.files.centres"),
    }
    if config["anatomy"]["files"]["distances"]:
        files["distances"] = configured_file("anatomy.files.distances")
    return files


RAW = config["raw"]
CLIP_SOURCE = config["spike_library"]["source"]


def raw_regions():
    """Spiking regions whose raw recordings become clips."""
    return RAW["regions"] if RAW["regions"] is not None else list(range(n_regions()))


def tvb_chunk_count():
    return math.ceil(RAW["tvb"]["duration_s"] / RAW["tvb"]["chunk_s"] - 1e-9)


def raw_input(wildcards):
    """What extract_clips reads for one region: a folder of chunks, or TVB's chunk files."""
    region = int(wildcards.region)
    if RAW["source"] == "mock":
        return f"{DEMO}/raw_nmm/a{region}"
    if RAW["source"] == "folder":
        return str(Path(RAW["folder"]) / f"a{region}")
    return expand(
        "results/raw_nmm/a{region}/mean_iter_{iteration}_a_iter_{region}_{k}.mat",
        region=region,
        iteration=RAW["iterations"],
        k=range(tvb_chunk_count()),
    )


def raw_folder():
    return {
        "mock": f"{DEMO}/raw_nmm",
        "folder": RAW["folder"],
        "tvb": "results/raw_nmm",
    }[RAW["source"]]


def library_clip_inputs():
    """The clip folders the library consolidates."""
    if CLIP_SOURCE == "raw":
        return {
            "clips": expand("results/nmm_spikes/a{region}", region=raw_regions()),
            "clip_info": expand(
                "results/nmm_spikes/clip_info/a{region}.json", region=raw_regions()
            ),
        }
    return {"clips": clip_folder()}


def clip_folder():
    if CLIP_SOURCE == "raw":
        return "results/nmm_spikes"
    if CLIP_SOURCE == "mock":
        return f"{DEMO}/nmm_spikes"
    folder = config["spike_library"]["folder"]
    if not folder or not Path(folder).is_dir():
        config_error("spike_library.folder", f"folder not found: {folder}")
    return folder


def header_shape(key_path, variables):
    """Shape of a variable of the .mat file named by a config key, from its header."""
    try:
        return mat_variable_shape(configured_file(key_path), variables)
    except InputError as error:
        config_error(key_path, str(error))


def n_regions():
    if config["anatomy"]["source"] == "demo":
        return config["anatomy"]["demo"]["n_regions"]
    key = config["anatomy"]["files"]["leadfield_key"]
    keys = [key] if key else ["fwd", "forward", "leadfield", "L"]
    return header_shape("anatomy.files.leadfield", keys)[1]


def deepsif_metadata(split):
    path = PLAN["deepsif_metadata"].get(split)
    if not path:
        config_error(
            f"plan.deepsif_metadata.{split}", "required when plan.source is deepsif"
        )
    if not Path(path).exists():
        config_error(f"plan.deepsif_metadata.{split}", f"file not found: {path}")
    return path


def split_size(split):
    """Number of samples the split's plan holds (known from config and file headers)."""
    if PLAN["source"] == "deepsif":
        deepsif_metadata(split)
        return header_shape(f"plan.deepsif_metadata.{split}", ["selected_region"])[0]
    centres = PLAN["centre_regions"]
    if centres:
        n_centres = len(centres)
    elif CLIP_SOURCE == "raw":
        n_centres = len(raw_regions())
    else:
        n_centres = n_regions()
    return n_centres * config["splits"][split]["samples_per_region"]


def split_range(split):
    """[start, stop) of the samples synthesised and exported for a split."""
    settings = config["splits"][split]
    total = split_size(split)
    start = settings["start"]
    if start >= total:
        config_error(
            f"splits.{split}.start", f"{start} is past the plan's {total} samples"
        )
    count = settings["count"] if settings["count"] is not None else total - start
    return start, min(total, start + count)


def shards(split):
    start, stop = split_range(split)
    return [f"{k:04d}" for k in range(math.ceil((stop - start) / SAMPLES_PER_SHARD))]


def shard_range(split, shard):
    start, stop = split_range(split)
    first = start + int(shard) * SAMPLES_PER_SHARD
    return first, min(stop, first + SAMPLES_PER_SHARD)


def mat_splits():
    if not EXPORT["mat"]["enabled"]:
        return []
    chosen = EXPORT["mat"]["splits"]
    return SPLITS if chosen is None else [s for s in chosen if s in SPLITS]


def final_outputs():
    # Intermediate outputs are named too: Snakemake only notices a deleted file it targets.
    outputs = paired_outputs()
    if CLIP_SOURCE == "raw":
        clip_inputs = library_clip_inputs()
        outputs += clip_inputs["clips"] + clip_inputs["clip_info"]
    for split in SPLITS:
        outputs += expand(
            "results/{split}/hdf5/shard_{shard}.h5", split=split, shard=shards(split)
        )
        if split in mat_splits():
            outputs += expand(
                "results/{split}/mat/shard_{shard}", split=split, shard=shards(split)
            )
            outputs.append(f"results/{split}/mat/extraction_metadata.mat")
        if EXPORT["deepsif"]["enabled"]:
            outputs += [
                f"results/deepsif/{split}_sample_source1.mat",
                f"results/deepsif/{split}_sample_nmm.h5",
            ]
    return outputs


def plan_inputs(wildcards):
    inputs = {
        "anatomy": "results/anatomy/anatomy.h5",
        "library": "results/spike_library/library.h5",
    }
    if PLAN["source"] == "deepsif":
        inputs["metadata"] = deepsif_metadata(wildcards.split)
    return inputs


def check_inputs():
    """Every configured input file and range, checked once at start-up."""
    anatomy_inputs()
    clip_folder()
    if CLIP_SOURCE == "raw":
        for region in raw_regions():
            if region >= n_regions():
                config_error(
                    "raw.regions", f"region {region} is not below {n_regions()}"
                )
        if RAW["source"] == "folder":
            if not RAW["folder"] or not Path(RAW["folder"]).is_dir():
                config_error("raw.folder", f"folder not found: {RAW['folder']}")
            for region in raw_regions():
                if not (Path(RAW["folder"]) / f"a{region}").is_dir():
                    config_error(
                        "raw.folder", f"no folder a{region} in {RAW['folder']}"
                    )
        if RAW["source"] == "tvb":
            configured_file("raw.tvb.connectivity")
    for split in SPLITS:
        split_range(split)


check_inputs()


# --------------------------------------------------------------------------- paired recordings
PAIRED = config["paired"]


def paired_cells():
    return PAIRED["cells"] if PAIRED["enabled"] else []


def spe1_paths():
    """Recordings folder, channel map and summary of the SPE-1 layout (mock or real)."""
    if PAIRED["source"] == "mock":
        root = f"{DEMO}/spe1"
        return {
            "recordings": f"{root}/Recordings",
            "chan_map": f"{root}/chanMap.mat",
            "summary": f"{root}/Data Summary.xlsx",
        }
    return dict(PAIRED["spe1"])


def paired_inputs(wildcards):
    if PAIRED["source"] == "mock":
        return {"spe1": f"{DEMO}/spe1"}
    if PAIRED["source"] == "spe1":
        paths = spe1_paths()
        inputs = {
            "cell": str(Path(paths["recordings"]) / wildcards.cell),
            "chan_map": paths["chan_map"],
        }
        if paths["summary"]:
            inputs["summary"] = paths["summary"]
        return inputs
    recording = PAIRED["recordings"][wildcards.cell]
    inputs = {"recording": recording["path"]}
    for key in ("probe", "spike_times"):
        if recording.get(key):
            inputs[key] = recording[key]
    return inputs


def paired_outputs():
    outputs = []
    for cell in paired_cells():
        folder = f"results/paired/{cell}"
        outputs += [
            f"{folder}/train",
            f"{folder}/test",
            f"{folder}/dataset_dict.json",
            f"{folder}/conversion_metadata.json",
            f"{folder}/templates.npz",
        ]
    return outputs


def check_paired_inputs():
    if not PAIRED["enabled"]:
        return
    if not PAIRED["cells"]:
        config_error("paired.cells", "list the cells to convert")
    if PAIRED["source"] == "spe1":
        for key in ("recordings", "chan_map"):
            configured_file(f"paired.spe1.{key}")
        if PAIRED["spe1"]["summary"]:
            configured_file("paired.spe1.summary")
        for cell in PAIRED["cells"]:
            if not (Path(PAIRED["spe1"]["recordings"]) / cell).is_dir():
                config_error(
                    "paired.cells",
                    f"no folder {cell} in {PAIRED['spe1']['recordings']}",
                )
    if PAIRED["source"] == "recordings":
        for cell in PAIRED["cells"]:
            if cell not in PAIRED["recordings"]:
                config_error(
                    "paired.cells", f"{cell} is not a key of paired.recordings"
                )
            for key in ("path", "probe", "spike_times"):
                value = PAIRED["recordings"][cell].get(key)
                if value and not Path(value).exists():
                    config_error(
                        f"paired.recordings.{cell}.{key}", f"not found: {value}"
                    )


check_paired_inputs()

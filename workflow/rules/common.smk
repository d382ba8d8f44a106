import sys
from pathlib import Path

from spikeforge import __version__ as SPIKEFORGE_VERSION
from spikeforge.core.threads import one_blas_thread
from spikeforge.workflow import resources
from spikeforge.workflow.config import DEMO_CONFIG
from spikeforge.workflow.layout import path
from spikeforge.workflow.startup import start_run

# Jobs run one per core and their matrix products are small: BLAS threads would only compete.
one_blas_thread()


def fail(*problems):
    """Stop at start-up with one line per problem, before any job runs."""
    for problem in problems:
        print(f"spikeforge: error: {problem}", file=sys.stderr)
    sys.exit(1)


SCHEMA = Path(workflow.current_basedir) / "../schemas/config.schema.yaml"
RUN, PROBLEMS = start_run(
    config, workflow.overwrite_configfiles or [DEMO_CONFIG], schema_path=SCHEMA
)
if PROBLEMS:
    fail(*PROBLEMS)
EEG, PAIRED, SESSIONS, CORTICAL = RUN.eeg, RUN.paired, RUN.sessions, RUN.cortical
SPIKETRAINS = RUN.spiketrains
if workflow.is_main_process:
    for warning in RUN.warnings:
        print(f"spikeforge: warning: {warning}", file=sys.stderr)
    print(f"spikeforge: {RUN.summary()}", file=sys.stderr)


onstart:
    RUN.write_record()


wildcard_constraints:
    split="|".join(EEG.splits) if EEG and EEG.splits else "(?!)",
    shard=r"\d{4}",
    plan_part=r"\d{4}",
    batch=r"\d{4}",
    region=r"\d+",
    iteration=r"\d+",
    cell=r"[A-Za-z0-9_.-]+",
    source="paired|sessions|files",
    patient=r"\d+",
    variant="train|test",
    part=r"\d+",
    session=r"\d+",
    item=r"[A-Za-z0-9_.-]+",


def sample_plan_inputs(wildcards):
    """An imported plan's rows are sliced into parts like generated ones."""
    inputs = {"anatomy": EEG.anatomy, "library": EEG.library}
    if EEG.plan_cfg["source"] == "deepsif":
        inputs["imported"] = path(EEG.imported_plan, split=wildcards.split)
    return inputs


def convert_cell_inputs(wildcards):
    inputs = PAIRED.cell_inputs(wildcards.cell)
    if PAIRED.source == "mock":
        # Adding a cell rewrites the mock summary; the other cells' rows stay the same.
        inputs["summary"] = ancient(inputs["summary"])
    return inputs


def spiketrain_inputs(wildcards):
    return SPIKETRAINS.inputs(wildcards.source, wildcards.item)


def spiketrain_settings(wildcards):
    return SPIKETRAINS.settings(wildcards.source, wildcards.item)


def clip_root(clips):
    """The folder holding the library's clip folders (the input's prefix), or the list of
    clip folders simulate_clips jobs wrote."""
    if EEG.raw_cfg["source"] == "simulate" and EEG.clip_source == "raw":
        return list(clips)
    return str(Path(clips[0]).parent) if isinstance(clips, list) else str(clips)


def cortical_outputs(variant, sheet):
    folders = CORTICAL.directory_outputs(variant, sheet)
    return [
        directory(p) if p in folders else p for p in CORTICAL.outputs(variant, sheet)
    ]


def cortical_variant_input(variant):
    root = CORTICAL.variant_root(variant)
    return root if CORTICAL.source == "mock" else ancient(root)

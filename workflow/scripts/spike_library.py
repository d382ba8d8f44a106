import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.library import consolidate_library
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: consolidate_library(
        sm.input.anatomy,
        sm.params.folder,
        sm.output[0],
        sm.params.clip_key,
        sm.params.regions,
        workers=sm.threads,
    ),
)

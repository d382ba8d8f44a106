import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.export.deepsif import import_deepsif_split
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: import_deepsif_split(
        sm.input.metadata,
        sm.input.anatomy,
        sm.input.library,
        sm.output[0],
        sm.params.seed,
        sm.wildcards.split,
    ),
)

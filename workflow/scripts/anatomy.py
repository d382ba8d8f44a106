import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.anatomy import consolidate_anatomy
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: consolidate_anatomy(sm.output[0], **dict(sm.input.items()), **sm.params.variables),
)

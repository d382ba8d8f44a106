import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.cortical.mock import write_parts
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: write_parts(sm.params.spec, sm.output[0], sm.params.parts),
)

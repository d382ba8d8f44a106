import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.paired.mock import write_mock_cell_job
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: write_mock_cell_job(
        sm.output.cell, sm.output.row, sm.wildcards.cell, sm.params.duration_s, sm.params.seed
    ),
)

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.paired.cell import CellSettings, convert_cell
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: convert_cell(
        CellSettings.from_dict(sm.params.settings),
        sm.output.metadata,
        sm.output.templates,
        sm.threads,
    ),
)

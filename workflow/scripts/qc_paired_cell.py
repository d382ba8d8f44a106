import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.qc.paired import cell_figure
from spikeforge.workflow.jobs import run

run(snakemake, lambda sm: cell_figure(sm.params.cell_dir, sm.output[0]))  # noqa: F821

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.qc.spiketrains import item_figure
from spikeforge.workflow.jobs import run

run(snakemake, lambda sm: item_figure(sm.input[0], sm.output[0], sm.params.title))  # noqa: F821

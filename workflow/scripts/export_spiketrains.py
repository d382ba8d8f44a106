import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.spiketrains.export import export_item
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: export_item(sm.params.settings, dict(sm.input), sm.params.fmt, sm.output[0]),
)

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.cortical.export import export_job
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: export_job(sm.params.settings, sm.wildcards.part, sm.input.part),
)

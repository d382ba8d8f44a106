import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.export.mat import export_mat_metadata
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: export_mat_metadata(
        sm.output[0],
        list(sm.input.shards),
        sm.input.anatomy,
        sm.params.plan_folder,
        sm.params.start,
        sm.params.leadfield,
    ),
)

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.export.deepsif import export_deepsif
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: export_deepsif(
        sm.input.library,
        sm.params.plan_parts,
        sm.params.metadata,
        sm.params.clips,
        all_scale_ratios=sm.params.all_scale_ratios,
    ),
)

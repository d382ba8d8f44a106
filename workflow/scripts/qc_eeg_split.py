import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.qc.eeg import split_figures
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: split_figures(
        sm.input.index,
        sm.input.plan,
        sm.input.anatomy,
        sm.params.sensor_snrs_db,
        sm.params.channel_names,
        dict(sm.output.items()),
    ),
)

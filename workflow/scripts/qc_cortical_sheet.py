import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.qc.cortical import sheet_figure
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: sheet_figure(
        sm.input.spikes,
        sm.input.image_ids,
        sm.output[0],
        f"{sm.wildcards.variant} {sm.wildcards.sheet}",
        sm.params.bin_ms,
    ),
)

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.demo_anatomy import write_demo_anatomy
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: write_demo_anatomy(
        sm.output.leadfield,
        sm.output.region_mapping,
        sm.output.centres,
        n_regions=sm.params.n_regions,
        n_channels=sm.params.n_channels,
        seed=sm.params.seed,
    ),
)

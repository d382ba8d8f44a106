import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.demo_anatomy import write_demo_anatomy
from spikeforge.runner import run


def main(sm):
    write_demo_anatomy(
        sm.output.leadfield,
        sm.output.region_mapping,
        sm.output.centres,
        n_regions=sm.params.n_regions,
        n_channels=sm.params.n_channels,
        seed=sm.params.seed,
    )


run(snakemake, main)  # noqa: F821

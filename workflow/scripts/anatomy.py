import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

import logging

from spikeforge.anatomy import load_anatomy, write_anatomy
from spikeforge.runner import run


def main(sm):
    anatomy = load_anatomy(
        sm.input.leadfield,
        sm.input.region_mapping,
        sm.input.centres,
        distance_path=sm.input.get("distances"),
        leadfield_key=sm.params.leadfield_key,
        neighbours_key=sm.params.neighbours_key,
        centres_key=sm.params.centres_key,
        distance_key=sm.params.distances_key,
    )
    logging.info("leadfield %d channels x %d regions", anatomy.n_channels, anatomy.n_regions)
    write_anatomy(anatomy, sm.output[0])


run(snakemake, main)  # noqa: F821

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.anatomy import read_anatomy
from spikeforge.runner import run
from spikeforge.spike_library import build_library


def main(sm):
    leadfield = read_anatomy(sm.input.anatomy).leadfield
    build_library(sm.params.folder, leadfield, sm.output[0], data_key=sm.params.clip_key)


run(snakemake, main)  # noqa: F821

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.anatomy import read_anatomy
from spikeforge.matio import atomic_directory
from spikeforge.runner import run
from spikeforge.spike_library import write_mock_clips


def main(sm):
    n_regions = read_anatomy(sm.input.anatomy).n_regions
    with atomic_directory(sm.output[0]) as staging:
        write_mock_clips(staging, n_regions, sm.params.clips_per_region, sm.params.seed)


run(snakemake, main)  # noqa: F821

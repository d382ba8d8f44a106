import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.matio import atomic_directory
from spikeforge.paired import write_mock_spe1_cell
from spikeforge.runner import run


def main(sm):
    with atomic_directory(sm.output[0]) as staging:
        for cell in sm.params.cells:
            write_mock_spe1_cell(staging, cell, sm.params.duration_s, seed=sm.params.seed)
        for lock in staging.glob(".*.lock"):
            lock.unlink()


run(snakemake, main)  # noqa: F821

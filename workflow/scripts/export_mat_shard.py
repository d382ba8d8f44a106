import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg_export import write_mat_samples
from spikeforge.matio import atomic_directory
from spikeforge.runner import run


def main(sm):
    with atomic_directory(sm.output[0]) as staging:
        write_mat_samples(sm.input[0], staging)


run(snakemake, main)  # noqa: F821

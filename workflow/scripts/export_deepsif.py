import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg_export import write_deepsif_clips, write_deepsif_metadata
from spikeforge.plan import read_plan
from spikeforge.runner import run


def main(sm):
    start, stop = sm.params.sample_range
    write_deepsif_metadata(read_plan(sm.input.plan, start, stop), sm.output.metadata)
    write_deepsif_clips(sm.input.library, sm.output.clips)


run(snakemake, main)  # noqa: F821

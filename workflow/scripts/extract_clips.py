import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.clips import extract_region_clips
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: extract_region_clips(
        sm.params.raw_folder,
        int(sm.wildcards.region),
        sm.params.iterations,
        sm.input.anatomy,
        sm.params.preprocessing,
        sm.params.detection,
        sm.output.clips,
        sm.output.info,
        sm.params.expected_chunks,
    ),
)

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.library import write_mock_clip_folder
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: write_mock_clip_folder(
        sm.output[0],
        sm.input.anatomy,
        sm.params.clips_per_region,
        sm.params.seed,
        workers=sm.threads,
    ),
)

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.raw import write_mock_raw_job
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: write_mock_raw_job(
        sm.output[0],
        sm.input.anatomy,
        int(sm.wildcards.region),
        sm.params.iterations,
        sm.params.duration_s,
        sm.params.chunk_s,
        sm.params.seed,
    ),
)

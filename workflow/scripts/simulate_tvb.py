import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.tvb import simulate_region
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: simulate_region(
        sm.input.connectivity,
        int(sm.wildcards.region),
        int(sm.wildcards.iteration),
        sm.params.out_dir,
        duration_s=sm.params.duration_s,
        chunk_s=sm.params.chunk_s,
        seed=sm.params.seed,
        fsaverage_remap=sm.params.fsaverage_remap,
    ),
)

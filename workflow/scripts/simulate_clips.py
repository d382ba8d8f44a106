import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.simulated_clips import simulate_clips_job
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: simulate_clips_job(
        sm.input.anatomy,
        connectivity_zip=sm.input.connectivity,
        regions=sm.params.regions,
        iterations=sm.params.iterations,
        preprocessing=sm.params.preprocessing,
        detection=sm.params.detection,
        out_dir=sm.output[0],
        duration_s=sm.params.simulate["duration_s"],
        seed=sm.params.seed,
        write_raw=sm.params.simulate["write_raw"],
        chunk_s=sm.params.simulate["chunk_s"],
    ),
)

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.runner import run
from spikeforge.tvb_simulation import simulate_region


def main(sm):
    out_dir = Path(sm.output[0]).parents[1]  # results/raw_nmm
    simulate_region(
        sm.input.connectivity,
        int(sm.wildcards.region),
        int(sm.wildcards.iteration),
        out_dir,
        duration_s=sm.params.duration_s,
        chunk_s=sm.params.chunk_s,
        seed=sm.params.seed,
    )


run(snakemake, main)  # noqa: F821

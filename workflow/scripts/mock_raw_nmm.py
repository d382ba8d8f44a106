import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.anatomy import read_anatomy
from spikeforge.matio import atomic_directory
from spikeforge.nmm import write_mock_raw
from spikeforge.runner import run


def main(sm):
    n_regions = read_anatomy(sm.input.anatomy).n_regions
    with atomic_directory(sm.output[0]) as staging:
        # write_mock_raw writes <folder>/a<region>/...: stage the parent, move the region in.
        write_mock_raw(
            staging,
            int(sm.wildcards.region),
            sm.params.iterations,
            n_regions,
            sm.params.duration_s,
            sm.params.chunk_s,
            sm.params.seed,
        )
        region_dir = staging / f"a{sm.wildcards.region}"
        for path in region_dir.iterdir():
            path.rename(staging / path.name)
        region_dir.rmdir()


run(snakemake, main)  # noqa: F821

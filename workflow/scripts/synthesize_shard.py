import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

import logging

from spikeforge.anatomy import read_anatomy
from spikeforge.eeg_export import synthesize_shard
from spikeforge.plan import read_plan
from spikeforge.runner import run
from spikeforge.spike_library import Library


def main(sm):
    first, stop = sm.params.sample_range
    split = sm.wildcards.split
    fwd = read_anatomy(sm.input.anatomy).leadfield
    plan = read_plan(sm.input.plan, first, stop)
    with Library(sm.input.library) as library:
        synthesize_shard(
            sm.output[0], fwd, library, plan, first, sm.params.seed, split,
            add_noise=sm.params.noise, label_pad=sm.params.label_pad,
            compression=sm.params.compression, level=sm.params.compression_level,
        )  # fmt: skip
    logging.info("%s samples %d..%d written", split, first, stop - 1)


run(snakemake, main)  # noqa: F821

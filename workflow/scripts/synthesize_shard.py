import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

import logging

from spikeforge.anatomy import read_anatomy
from spikeforge.eeg_export import write_hdf5_shard
from spikeforge.plan import read_plan
from spikeforge.runner import run
from spikeforge.spike_library import Library
from spikeforge.synthesis import synthesize


def main(sm):
    first, stop = sm.params.sample_range
    split = sm.wildcards.split
    fwd = read_anatomy(sm.input.anatomy).leadfield
    plan = read_plan(sm.input.plan, first, stop)
    with Library(sm.input.library) as library:
        blocks = synthesize(
            fwd,
            library,
            plan,
            first,
            sm.params.seed,
            split,
            add_noise=sm.params.noise,
            label_pad=sm.params.label_pad,
        )
        write_hdf5_shard(
            sm.output[0],
            blocks,
            plan.n_samples,
            library.n_time,
            fwd.shape[0],
            plan.n_sources,
            attrs={
                "n_regions": fwd.shape[1],
                "n_channels": fwd.shape[0],
                "split": split,
                "seed": sm.params.seed,
                "noise": sm.params.noise,
                "label_pad": sm.params.label_pad,
                "first_index": first,
            },
            compression=sm.params.compression,
            level=sm.params.compression_level,
        )
    logging.info("%s samples %d..%d written", split, first, stop - 1)


run(snakemake, main)  # noqa: F821

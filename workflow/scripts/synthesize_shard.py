import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.export.hdf5 import synthesize_shard_file
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: synthesize_shard_file(
        sm.output[0],
        sm.input.anatomy,
        sm.input.library,
        sm.input.plan,
        sm.params.sample_range,
        sm.params.seed,
        sm.wildcards.split,
        add_noise=sm.params.noise,
        label_pad=sm.params.label_pad,
        compression=sm.params.compression,
        level=sm.params.compression_level,
    ),
)

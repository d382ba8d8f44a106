import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

import h5py

from spikeforge.eeg_export import write_extraction_metadata
from spikeforge.runner import run


def main(sm):
    n_extracted = sum(len(list(Path(folder).glob("sample_*.mat"))) for folder in sm.input.shards)
    with h5py.File(sm.input.anatomy, "r") as anatomy:
        shape = anatomy["leadfield"].shape
    write_extraction_metadata(
        sm.output[0],
        n_extracted=n_extracted,
        n_failed=0,
        start_index=sm.params.start,
        dataset_path=str(sm.input.plan),
        forward_model_path=str(sm.params.leadfield),
        forward_shape=shape,
    )


run(snakemake, main)  # noqa: F821

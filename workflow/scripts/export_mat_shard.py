import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

import shutil
import tempfile

from spikeforge.eeg_export import write_mat_samples
from spikeforge.runner import run


def main(sm):
    out = Path(sm.output[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_mat_samples(sm.input[0], staging)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


run(snakemake, main)  # noqa: F821

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

import shutil
import tempfile

from spikeforge.anatomy import read_anatomy
from spikeforge.runner import run
from spikeforge.spike_library import write_mock_clips


def main(sm):
    out = Path(sm.output[0])
    n_regions = read_anatomy(sm.input.anatomy).n_regions
    # Build beside the target and rename, so an interrupted job leaves no partial folder.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_mock_clips(staging, n_regions, sm.params.clips_per_region, sm.params.seed)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


run(snakemake, main)  # noqa: F821

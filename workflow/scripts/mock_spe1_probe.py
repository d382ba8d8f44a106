import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.paired.mock import write_mock_channel_map
from spikeforge.workflow.jobs import run

run(snakemake, lambda sm: write_mock_channel_map(sm.output[0]))  # noqa: F821

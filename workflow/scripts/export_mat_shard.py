import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.export.mat import export_mat_shard
from spikeforge.workflow.jobs import run

run(snakemake, lambda sm: export_mat_shard(sm.input[0], sm.output[0]))  # noqa: F821

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.plan import PlanConfig, plan_split
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: plan_split(
        sm.input.anatomy,
        sm.input.library,
        sm.output[0],
        PlanConfig.from_settings(sm.params.settings),
        sm.params.seed,
        sm.wildcards.split,
        sm.params.expected_regions,
    ),
)

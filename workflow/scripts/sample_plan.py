import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.eeg.plan import PlanConfig, plan_part
from spikeforge.workflow.jobs import run

run(
    snakemake,  # noqa: F821
    lambda sm: plan_part(
        sm.input.anatomy,
        sm.input.library,
        sm.output[0],
        sm.params.sample_range,
        PlanConfig.from_settings(sm.params.settings),
        sm.params.seed,
        sm.wildcards.split,
        imported_path=sm.input.get("imported"),
        expected_regions=sm.params.expected_regions,
        report_regions_without_clips=sm.params.report_regions_without_clips,
    ),
)

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

import logging

from spikeforge.anatomy import read_anatomy
from spikeforge.plan import PlanConfig, generate_plan, import_deepsif_plan, write_plan
from spikeforge.runner import run
from spikeforge.spike_library import Library

PIECE = 10_000


def warn_regions_without_clips(library, expected):
    missing = sorted(set(expected) - set(library.regions_with_clips().tolist()))
    if missing:
        shown = ", ".join(f"a{r}" for r in missing[:10]) + (" ..." if len(missing) > 10 else "")
        message = (
            f"{len(missing)} region(s) have no clips and are not used as source centres: {shown}"
        )
        logging.warning(message)
        print(f"spikeforge: warning: {message}", file=sys.stderr)


def main(sm):
    split = sm.wildcards.split
    plan_cfg, split_cfg = sm.params.plan, sm.params.split_settings
    anatomy = read_anatomy(sm.input.anatomy)
    with Library(sm.input.library) as library:
        if plan_cfg["source"] == "deepsif":
            plan = import_deepsif_plan(
                sm.input.metadata, library, anatomy.n_regions, sm.params.seed, split
            )
            write_plan(plan, sm.output[0])
            logging.info("%s: %d samples imported", split, plan.n_samples)
            return
        else:
            cfg = PlanConfig(
                n_samples=sm.params.n_samples,
                n_sources=plan_cfg["n_sources"],
                samples_per_region=split_cfg["samples_per_region"],
                patch_method=plan_cfg["patch_method"],
                grow_layers=tuple(plan_cfg["grow_layers"]),
                disk_radius_mm=plan_cfg["disk_radius_mm"],
                point_05_range_mm=tuple(plan_cfg["point_05_range_mm"]),
                target_snrs_db=tuple(split_cfg["target_snrs_db"]),
                sensor_snrs_db=tuple(plan_cfg["sensor_snrs_db"]),
                centre_regions=(
                    tuple(plan_cfg["centre_regions"]) if plan_cfg["centre_regions"] else None
                ),
            )
            if cfg.centre_regions is None:
                expected = sm.params.expected_regions
                if expected is None:
                    expected = range(anatomy.n_regions)
                warn_regions_without_clips(library, expected)
            # Planned in pieces so memory does not grow with the split's size.
            pieces = (
                generate_plan(anatomy, library, cfg, sm.params.seed, split, first, first + PIECE)
                for first in range(0, cfg.n_samples, PIECE)
            )
            write_plan(pieces, sm.output[0])
    logging.info("%s: %d samples planned", split, sm.params.n_samples)


run(snakemake, main)  # noqa: F821

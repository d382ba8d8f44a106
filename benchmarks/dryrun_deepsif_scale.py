#!/usr/bin/env python
"""A dry run of DeepSIF's whole dataset through the Slurm profile: 994 regions x 3 noise
iterations of raw recordings into clips, 190,848 training and 11,928 test samples in shards
of 1,000, the DeepSIF export. Prints the dry run's time, the number of jobs and the number of
cluster submissions the profile's groups make of them (a group of short jobs is one sbatch).

    python benchmarks/dryrun_deepsif_scale.py [--simulate]

--simulate: the raw recordings come from simulate_clips jobs (raw.source simulate on DeepSIF's
998-region connectivity with the fsaverage remap) instead of per-region extraction.
"""

import collections
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = {
    "seed": 1,
    "max_output_gb": 100_000,
    "check_free_disk": False,
    "eeg": {
        "enabled": True,
        "anatomy": {"source": "demo", "demo": {"n_regions": 994, "n_channels": 75}},
        "spike_library": {"source": "raw"},
        "raw": {"source": "mock", "iterations": [0, 1, 2]},
        "splits": {"train": {"samples_per_region": 192}, "test": {"samples_per_region": 12}},
        "synthesis": {"samples_per_shard": 1000},
        "export": {"mat": {"enabled": False}, "deepsif": {"enabled": True}},
    },
    **{chain: {"enabled": False} for chain in ("paired", "sessions", "cortical", "spiketrains")},
}


CONNECTIVITY = REPO.parent / "shared" / "data" / "deepsif" / "anatomy" / "connectivity_998.zip"


def main() -> int:
    config_values = CONFIG
    if "--simulate" in sys.argv[1:]:
        if not CONNECTIVITY.is_file():
            print(f"needs {CONNECTIVITY}")
            return 1
        eeg = dict(CONFIG["eeg"], preprocessing={"fsaverage_remap": True})
        eeg["raw"] = {"source": "simulate", "iterations": [0, 1, 2],
                      "simulate": {"connectivity": str(CONNECTIVITY)}}  # fmt: skip
        config_values = dict(CONFIG, eeg=eeg)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump(config_values))
        command = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"),
                   "--directory", str(Path(tmp) / "run"), "--configfile", str(config), "-n",
                   "--profile", str(REPO / "profiles" / "slurm")]  # fmt: skip
        start = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if run.returncode:
        print(run.stderr[-3000:])
        return 1
    out = run.stdout + run.stderr
    stats = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+(\d+)", out, re.S)
    per_rule = dict(line.split() for line in stats.group(1).splitlines())
    total = int(stats.group(2))
    groups = collections.Counter(re.findall(r"Group job (\w+)", out))
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    grouped_rules = {entry.split("=")[0] for entry in profile["groups"]}
    grouped = sum(int(count) for rule, count in per_rule.items() if rule in grouped_rules)
    submissions = sum(groups.values()) + (total - 1 - grouped)  # `all` runs locally
    print(f"DeepSIF scale, Slurm profile: dry run {seconds:.1f} s for {total:,} jobs")
    print("  jobs per rule: " + ", ".join(f"{r} {n}" for r, n in per_rule.items()))
    print("  groups: " + ", ".join(f"{g} x{n}" for g, n in sorted(groups.items())))
    print(f"  cluster submissions: {submissions} for {total - 1:,} jobs "
          f"({(total - 1) / submissions:.0f} jobs per submission)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The profiles: a Slurm profile that works on any cluster (no partition of its own, nothing
that overrides the rules' threads), and every rule's memory and runtime requests declared in
the rule and doubled on a retry."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml
from workflow_run import REPO, SNAKEFILE

SLURM = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
DEFAULT = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())


def test_slurm_profile_leaves_partition_and_threads_to_the_cluster_and_rules():
    defaults = SLURM.get("default-resources") or {}
    assert "slurm_partition" not in defaults, "a partition only some clusters have"
    assert "cpus_per_task" not in defaults, "it would override every rule's threads"
    # Loaded beside --profile profiles/slurm: a `cores` here would cap every job's threads.
    assert "cores" not in DEFAULT
    assert SLURM["retries"] >= 1
    groups = {entry.split("=")[1] for entry in SLURM["groups"]}
    assert groups == {entry.split("=")[0] for entry in SLURM["group-components"]}


def _job_resources(tmp_path: Path, attempt: int) -> list[tuple[str, dict[str, int]]]:
    """(rule, {mem_mb, runtime}) of every job of the demo's dry run at `attempt`."""
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(tmp_path / "run"),
         "-n", "--cores", "2", "--verbose", "--attempt", str(attempt)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = re.findall(r"rule (\w+):\n(?:.*\n)*?\s+resources: (.*)", done.stdout + done.stderr)
    parsed = []
    for rule, resources in jobs:
        if rule == "all":  # runs on the submitting host, requests nothing
            continue
        values = dict(item.split("=", 1) for item in resources.split(", "))
        parsed.append((rule, {k: int(values[k]) for k in ("mem_mb", "runtime")}))
    return parsed


def test_every_rule_requests_memory_and_time_that_double_on_the_retry(tmp_path):
    first, second = _job_resources(tmp_path, 1), _job_resources(tmp_path, 2)
    rules = {rule for rule, _ in first}
    assert len(rules) >= 20  # every chain of the demo
    by_rule = {}
    for rule, resources in first:
        by_rule.setdefault(rule, resources)
    for rule, resources in second:
        base = by_rule[rule]
        assert base["mem_mb"] >= 1000 and base["runtime"] >= 10, (rule, base)
        assert resources == {k: 2 * v for k, v in base.items()}, (rule, base, resources)

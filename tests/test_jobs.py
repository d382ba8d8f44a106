"""The glue every job script runs through: manifests written beside its outputs, and a log
line of what the job used (checked against what the job is known to have done)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from spikeforge.core.manifest import read_manifest

JOB = textwrap.dedent("""
    import sys
    from types import SimpleNamespace
    import numpy as np
    from spikeforge.workflow.jobs import run

    out, log = sys.argv[1], sys.argv[2]
    job = SimpleNamespace(rule="make_it", wildcards={"item": "a"}, log=[log], output=[out],
                          input=[], params=[])

    def main(sm):
        held = np.ones(300_000_000 // 8)  # 300 MB touched
        with open(out, "wb") as handle:
            handle.write(bytes(1_000_000 + int(held[0]) - 1))

    run(job, main)
""")


def test_a_job_logs_what_it_used_and_writes_its_manifest(tmp_path):
    """Started from a process holding 1.5 GB, as Snakemake holds its DAG: the job's peak is
    its own, not its parent's at the fork."""
    out, log = tmp_path / "thing.bin", tmp_path / "thing.log"
    parent = (
        "import subprocess, sys, numpy as np; held = np.ones(1_500_000_000 // 8); "
        "sys.exit(subprocess.run([sys.executable, '-c', sys.argv[1], *sys.argv[2:]]).returncode)"
    )
    done = subprocess.run([sys.executable, "-c", parent, JOB, str(out), str(log)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in log.read_text().splitlines() if "job stats: " in line]
    stats = json.loads(line.split("job stats: ", 1)[1])
    assert stats["output_bytes"] == 1_000_000
    assert 300 <= stats["peak_rss_mb"] < 1000
    assert 0 < stats["cpu_s"] and 0 < stats["wall_s"] < 60
    recorded = read_manifest(tmp_path / "thing.bin.manifest.json")
    assert recorded["files"][0]["size"] == 1_000_000
    assert recorded["made_by"]["rule"] == "make_it"
    assert recorded["made_by"]["wildcards"] == {"item": "a"}

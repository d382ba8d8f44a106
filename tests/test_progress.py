"""Progress lines of long jobs: at most one every `every` seconds, with the share done and an
honest time left, in the rule's log and on the console (other INFO lines stay in the log)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from spikeforge.core import progress as progress_module
from spikeforge.core.progress import Progress


def test_lines_are_rate_limited_and_estimate_the_time_left(monkeypatch, caplog):
    clock = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    caplog.set_level("INFO", logger="spikeforge.progress")
    bar = Progress(200, "shard_0001.h5", " samples", every=10.0)
    for done in range(1, 201):
        clock[0] += 0.5  # 2 samples a second: 100 s in all
        bar.update(done)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10  # every 10 s of the 100, none more often
    assert lines[0].startswith("shard_0001.h5: 10% (20 of 200 samples, 2 samples per s)")
    assert lines[0].endswith("about 90 s left")
    assert lines[4].startswith("shard_0001.h5: 50% (100 of 200") and "about 50 s left" in lines[4]


def test_short_jobs_print_nothing(monkeypatch, caplog):
    clock = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    caplog.set_level("INFO", logger="spikeforge.progress")
    bar = Progress(5, "quick")
    for done in range(1, 6):
        clock[0] += 1.0
        bar.update(done)
    assert caplog.records == []


JOB = textwrap.dedent("""
    import logging, sys
    from types import SimpleNamespace
    from spikeforge.core import progress
    from spikeforge.workflow.jobs import run

    out, log = sys.argv[1], sys.argv[2]
    job = SimpleNamespace(rule="long_one", wildcards={"k": "7"}, log=[log], output=[out],
                          input=[], params=[])

    def main(sm):
        logging.getLogger("spikeforge.eeg").info("an ordinary line")
        bar = progress.Progress(4, "work", every=0.0)
        bar.update(2)
        open(out, "w").write("done")

    run(job, main)
""")


def test_progress_reaches_the_log_and_the_console(tmp_path):
    out, log = tmp_path / "out.txt", tmp_path / "job.log"
    done = subprocess.run([sys.executable, "-c", JOB, str(out), str(log)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "spikeforge: long_one 7: work: 50% (2 of 4" in done.stderr
    assert "an ordinary line" not in done.stderr and "warning" not in done.stderr
    text = log.read_text()
    assert "work: 50% (2 of 4" in text and "an ordinary line" in text


def test_watching_follows_work_done_elsewhere(tmp_path, caplog):
    """The paired pass writes segment files from worker processes: a thread counts them."""
    import time

    from spikeforge.core.progress import watching

    caplog.set_level("INFO", logger="spikeforge.progress")
    count = lambda: len(list(tmp_path.glob("*.arrow")))  # noqa: E731
    with watching(count, 4, "converting", " segments", every=0.0, poll=0.05):
        for k in range(4):
            (tmp_path / f"data-{k}.arrow").write_bytes(b"")
            time.sleep(0.2)
    lines = [r.getMessage() for r in caplog.records]
    assert lines and lines[-1].startswith("converting: 100% (4 of 4 segments")
    assert any(line.startswith("converting: 25% (1 of 4") for line in lines)

"""Atomic outputs: what a killed writer left is removed by the next writer of that output,
and nothing else is touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from spikeforge.core.files import atomic_directory, atomic_path


def test_next_writer_removes_what_a_killed_writer_left(tmp_path):
    # a writer killed mid-write (SIGKILL: no cleanup runs) leaves its staging file
    code = (
        "import sys, time\n"
        "from spikeforge.core.files import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_bytes(b'partial')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    target = tmp_path / "shard_0001.h5"
    writer = subprocess.Popen(
        [sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".shard_0001.h5.") and not target.exists()
    # neighbours that only look alike stay
    (tmp_path / ".shard_0001.h5.lock").touch()
    (tmp_path / ".shard_00011.h5.abc.h5").touch()
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"complete")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".shard_0001.h5.lock", ".shard_00011.h5.abc.h5", "shard_0001.h5",
    ]  # fmt: skip
    assert target.read_bytes() == b"complete"


def test_next_folder_writer_removes_a_killed_writers_staging_folder(tmp_path):
    stale = tmp_path / ".session_1.x1y2z3"
    (stale / "spiking_data").mkdir(parents=True)
    (stale / "spiking_data" / "CSC1_SU1.npy").write_bytes(b"half")
    started = time.time()
    with atomic_directory(tmp_path / "session_1") as staging:
        (staging / "done").write_text("yes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session_1"]
    assert (tmp_path / "session_1" / "done").stat().st_mtime >= started - 1

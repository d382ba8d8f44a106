"""Mock sessions in the workflow: one job per session plus the movie's labels, every unit
exported in every spike-train format, rebuilt byte-identically, bad settings stopped at
start-up with one line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from workflow_run import (
    assert_startup_failure,
    job_counts,
    one_line_with,
    output_names,
    sha256_tree,
    snakemake,
    succeeded,
)

from spikeforge.sessions.read import read_labels, read_session
from spikeforge.spiketrains.formats import FORMATS, output_name, read_spiketrains

pytestmark = pytest.mark.workflow

SESSIONS = {
    "sessions": {
        "enabled": True,
        "patients": [{"patient": 4, "sessions": [1, 2]}],
        "duration_s": 60.0,
        "regions": ["LA", "RMH"],
        "rate_median_hz": 4.0,
        "movie": {"duration_s": 40.0, "onset_s": 5.0, "pauses": 1, "max_pause_s": 4.0,
                  "skips": 1, "max_skip_s": 4.0},
        "lfp": {"channels": [2, 16]},
    },
    "spiketrains": {"enabled": True, "sources": {"paired": False}},
}  # fmt: skip


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("sessions") / "run"
    run = snakemake(workdir, SESSIONS)
    assert run.returncode == 0, succeeded(run)
    counts = job_counts(run.output)
    assert counts.pop("mock_session") == 2 and counts.pop("movie_annotation") == 1
    assert counts == {**{f"export_{fmt}": 2 for fmt in FORMATS}, "qc_spiketrains_item": 2,
                      "all": 1}  # fmt: skip
    return workdir


def test_each_session_is_in_the_layout_and_exported_in_every_format(run_folder):
    results = run_folder / "results"
    for number in (1, 2):
        folder = results / "sessions" / "patient_data" / "4" / f"session_{number}"
        session = read_session(folder)
        assert session.info["patient_id"] == 4 and session.info["session_nr"] == number
        assert sorted(session.lfp_files) == [2, 16]
        expected = session.to_spiketrains()
        assert expected.n_units > 4 and expected.n_spikes > 500
        exports = results / "spiketrains" / "sessions" / f"patient_4_session_{number}"
        assert output_names(exports) == sorted(output_name(f) for f in FORMATS)
        for fmt in FORMATS:
            loaded = read_spiketrains(exports / output_name(fmt))
            assert loaded.unit_ids.tolist() == session.unit_names, fmt
            samples = expected.times_in("samples")
            want = samples // 32 * 32 if fmt == "hdf5_raster" else samples
            assert np.array_equal(loaded.times_in("samples"), want), fmt
        nwb = read_spiketrains(exports / "units.nwb")
        assert nwb.recording_properties["channel_locations"].tolist() == ["LA"] * 8 + ["RMH"] * 8
        assert (
            nwb.unit_properties["quality"].tolist() == expected.unit_properties["quality"].tolist()
        )
    umask = os.umask(0)
    os.umask(umask)
    for folder in (
        results / "sessions" / "movie_annotation",
        results / "sessions" / "patient_data" / "4" / "session_1",
    ):
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask
    labels = read_labels(results / "sessions" / "movie_annotation")
    assert list(labels) == ["character1", "character2", "location1"]


def test_nwb_file_names_the_patient_and_the_recording_start(run_folder):
    from pynwb import NWBHDF5IO

    folder = run_folder / "results" / "sessions" / "patient_data" / "4" / "session_2"
    truth = json.loads((folder / "session_truth.json").read_text())
    path = run_folder / "results" / "spiketrains" / "sessions" / "patient_4_session_2" / "units.nwb"
    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        assert nwbfile.subject.species == "Homo sapiens"
        assert nwbfile.subject.subject_id == "4"
        assert nwbfile.session_start_time.timestamp() * 1000 == truth["recording_start_ms"]


def test_deleted_session_rebuilds_byte_identically_and_alone(run_folder):
    before = sha256_tree(run_folder / "results")
    shutil.rmtree(run_folder / "results" / "sessions" / "patient_data" / "4" / "session_1")
    run = snakemake(run_folder, SESSIONS)
    assert run.returncode == 0, succeeded(run)
    counts = job_counts(run.output)
    assert counts["mock_session"] == 1 and "movie_annotation" not in counts
    assert sha256_tree(run_folder / "results") == before


def test_a_recording_too_short_for_the_movie_stops_at_start_up(tmp_path):
    config = json.loads(json.dumps(SESSIONS))
    config["sessions"]["duration_s"] = 30.0
    workdir = tmp_path / "run"
    run = snakemake(workdir, config, "-n")
    assert_startup_failure(run, workdir, "sessions.duration_s", "cannot hold the movie's playback")


def test_disk_full_is_one_line_naming_the_file_and_leaves_nothing(tmp_path):
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}): needs root")
    try:
        config = json.loads(json.dumps(SESSIONS))
        config["run_dir"] = str(disk)
        config["sessions"]["patients"] = [{"patient": 9, "sessions": [1]}]
        config["sessions"]["duration_s"] = 600.0  # a 7 MB LFP alone
        config["sessions"]["movie"]["onset_s"] = 30.0
        config["spiketrains"]["enabled"] = False
        # start-up sees that the estimate does not fit and refuses, before any job
        refused = snakemake(tmp_path / "run", config)
        assert refused.returncode != 0
        one_line_with(refused.stderr, "spikeforge: error: config key check_free_disk:", str(disk))
        # forced, the job meets the full disk itself
        config["check_free_disk"] = False
        run = snakemake(tmp_path / "run", config)
        assert run.returncode != 0
        lines = [line for line in run.stderr.splitlines() if line.startswith("spikeforge: error")]
        assert len(lines) == 1 and "No space left on device" in lines[0], run.stderr[-2000:]
        assert "mock_session" in lines[0] and str(disk) in lines[0]
        # the profile's show-failed-logs prints the job's log (its one traceback) as well
        assert run.stderr.count("Traceback") <= 1
        session = disk / "results" / "sessions" / "patient_data" / "9"
        assert not session.exists() or not any(session.iterdir())
    finally:
        subprocess.run(["umount", str(disk)], check=False)

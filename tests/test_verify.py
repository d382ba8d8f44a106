"""Manifests and spikeforge-verify: checksums against sha256sum, each format's own reader,
damage named per file, damaged outputs removed so the next run rebuilds them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import h5py
import numpy as np
import pytest
import scipy.io

from spikeforge.core import manifest
from spikeforge.core.errors import InputError
from spikeforge.verify import remove_outputs, verify
from spikeforge.verify.command import main as verify_main


def _write(tmp_path):
    """A small run folder: an HDF5 file, a folder output of MAT + npz + npy files, a JSON."""
    results = tmp_path / "results"
    (results / "mat").mkdir(parents=True)
    with h5py.File(results / "shard_0000.h5", "w") as f:
        f["eeg"] = np.arange(200_000, dtype=np.float32).reshape(1000, 200)
    for k in range(3):
        scipy.io.savemat(results / "mat" / f"sample_{k:05d}.mat", {"x": np.full((50, 20), k)})
    np.savez(results / "mat" / "extra.npz", a=np.arange(10))
    np.save(results / "mat" / "ids.npy", np.arange(1000))
    (results / "info.json").write_text(json.dumps({"n": 3}))
    outputs = [results / "shard_0000.h5", results / "mat", results / "info.json"]
    manifest.write_manifests(outputs, rule="r", wildcards={}, version="0", params={"a": 1},
                             inputs={})  # fmt: skip
    return results


def test_manifest_lists_every_file_with_the_sha256_of_sha256sum(tmp_path):
    results = _write(tmp_path)
    recorded = manifest.read_manifest(results / "mat.manifest.json")
    assert recorded["kind"] == "directory"
    listed = {f["path"]: f for f in recorded["files"]}
    assert sorted(listed) == sorted(p.name for p in (results / "mat").iterdir())
    out = subprocess.run(["sha256sum", *sorted((results / "mat").iterdir())],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    for line in out.splitlines():
        digest, name = line.split()
        name = name.rsplit("/", 1)[1]
        assert listed[name]["sha256"] == digest
        assert listed[name]["size"] == (results / "mat" / name).stat().st_size


def test_manifests_are_byte_identical_when_rewritten(tmp_path):
    results = _write(tmp_path)
    first = (results / "mat.manifest.json").read_bytes()
    manifest.write_manifests([results / "mat"], rule="r", wildcards={}, version="0",
                             params={"a": 1}, inputs={})  # fmt: skip
    assert (results / "mat.manifest.json").read_bytes() == first
    assert str(tmp_path) not in first.decode()


def test_a_consumer_refuses_a_truncated_or_changed_input_naming_it(tmp_path):
    results = _write(tmp_path)
    manifest.check_inputs([results / "shard_0000.h5", results / "mat"])
    with open(results / "shard_0000.h5", "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(InputError, match=r"shard_0000.h5: 1000 bytes, its manifest says \d+"):
        manifest.check_inputs([results / "shard_0000.h5"])
    (results / "mat" / "sample_00001.mat").unlink()
    with pytest.raises(InputError, match="mat: sample_00001.mat: missing"):
        manifest.check_inputs([results / "mat"])
    shutil.copy(results / "info.json", results / "mat" / "stray.json")
    with pytest.raises(InputError, match="stray.json: not in its manifest"):
        manifest.check_inputs([results / "mat"])


def test_verify_names_each_damaged_file_and_finds_a_clean_run_clean(tmp_path):
    results = _write(tmp_path)
    clean = verify(tmp_path)
    assert clean.problems == [] and clean.outputs == 3 and clean.files == 7
    assert clean.bytes == sum(p.stat().st_size for p in results.rglob("*")
                              if p.is_file() and not p.name.endswith(".manifest.json"))  # fmt: skip

    with open(results / "mat" / "sample_00002.mat", "r+b") as handle:
        handle.seek(200)
        handle.write(b"\xff")  # same size, other content
    (results / "mat" / "ids.npy").unlink()
    (results / "info.json").unlink()
    problems = {p.file.name: (p.kind, p.reason) for p in verify(tmp_path).problems}
    assert problems == {
        "sample_00002.mat": ("damaged", "sha256 differs from its manifest's"),
        "ids.npy": ("missing", "listed in its manifest, not on disk"),
        "info.json": ("missing", "the output is gone"),
    }


def test_verify_reads_each_format_and_names_a_file_that_no_longer_opens(tmp_path):
    """A file whose manifest matches (rewritten after the damage) but that its reader
    refuses: only the format check can find it."""
    results = _write(tmp_path)
    for name in ("shard_0000.h5", "mat/extra.npz"):
        data = (results / name).read_bytes()
        (results / name).write_bytes(data[: len(data) // 2])
    manifest.write_manifests([results / "shard_0000.h5", results / "mat"], rule="r",
                             wildcards={}, version="0", params={}, inputs={})  # fmt: skip
    with pytest.raises(OSError):
        h5py.File(results / "shard_0000.h5", "r")
    problems = {p.file.name: p.kind for p in verify(tmp_path).problems}
    assert problems == {"shard_0000.h5": "unreadable", "extra.npz": "unreadable"}
    assert verify(tmp_path, formats=False).problems == []


def test_verify_reads_arrow_datasets_through_load_from_disk(tmp_path):
    import datasets

    folder = tmp_path / "results" / "cell" / "train"
    datasets.Dataset.from_dict({"x": list(range(2000))}).save_to_disk(str(folder))
    manifest.write_manifests([folder], rule="r", wildcards={}, version="0", params={},
                             inputs={})  # fmt: skip
    assert verify(tmp_path).problems == []
    arrow = next(folder.glob("*.arrow"))
    data = arrow.read_bytes()
    arrow.write_bytes(data[: len(data) // 2])
    manifest.write_manifests([folder], rule="r", wildcards={}, version="0", params={},
                             inputs={})  # fmt: skip
    (problem,) = verify(tmp_path).problems
    assert (problem.file, problem.kind) == (folder, "unreadable")
    assert problem.reason.startswith("load_from_disk:")


def test_the_command_reports_one_line_per_file_and_removes_damaged_outputs(tmp_path, capsys):
    results = _write(tmp_path)
    with open(results / "shard_0000.h5", "r+b") as handle:
        handle.truncate(4096)
    (results / "mat" / "sample_00000.mat").unlink()
    assert verify_main([str(tmp_path), "--report-only"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("spikeforge-verify: damaged: ") and "shard_0000.h5: 4096 bytes"
               in line for line in err)  # fmt: skip
    assert any("missing: " in line and "sample_00000.mat" in line for line in err)
    assert (results / "shard_0000.h5").exists() and (results / "mat").exists()

    assert verify_main([str(tmp_path)]) == 1
    assert not (results / "shard_0000.h5").exists() and not (results / "mat").exists()
    assert not (results / "mat.manifest.json").exists()
    assert (results / "info.json").exists()
    assert verify_main([str(tmp_path)]) == 0


def test_remove_outputs_takes_files_folders_and_their_manifests(tmp_path):
    results = _write(tmp_path)
    remove_outputs([results / "mat", results / "info.json"])
    assert sorted(p.name for p in results.iterdir()) == ["shard_0000.h5",
                                                         "shard_0000.h5.manifest.json"]  # fmt: skip


def test_input_checksums_follow_content_not_location(tmp_path, monkeypatch):
    results = _write(tmp_path)
    made = manifest.input_checksum(results / "mat")
    moved = tmp_path / "elsewhere"
    shutil.copytree(results, moved)
    assert manifest.input_checksum(moved / "mat") == made  # from the manifest's content
    external = tmp_path / "leadfield.bin"
    external.write_bytes(b"\x01" * 1000)
    out = subprocess.run(["sha256sum", str(external)], capture_output=True, text=True).stdout
    assert manifest.input_checksum(external) == "sha256:" + out.split()[0]
    monkeypatch.setattr(manifest, "HASHED_EXTERNAL_BYTES", 100)
    assert manifest.input_checksum(external).startswith("stat:1000:")
    folder = tmp_path / "datastores"
    (folder / "part_1").mkdir(parents=True)
    before = manifest.input_checksum(folder)
    (folder / "part_2").mkdir()
    assert manifest.input_checksum(folder) != before


def test_hard_links_are_one_file_for_bytes_and_digests(tmp_path):
    from spikeforge.core.manifest import sha256_file, unique_bytes

    first = tmp_path / "train_sample_nmm.h5"
    first.write_bytes(b"x" * 1000)
    os.link(first, tmp_path / "test_sample_nmm.h5")
    (tmp_path / "other.bin").write_bytes(b"y" * 10)
    names = [first, tmp_path / "test_sample_nmm.h5", tmp_path / "other.bin"]
    assert unique_bytes(names) == 1010
    assert sha256_file(names[1]) == hashlib.sha256(b"x" * 1000).hexdigest()
    # a file rewritten (new size or time) is hashed again, not taken from the cache
    first.write_bytes(b"z" * 1000)
    os.utime(first, ns=(1, 1))
    assert sha256_file(names[1]) == hashlib.sha256(b"z" * 1000).hexdigest()

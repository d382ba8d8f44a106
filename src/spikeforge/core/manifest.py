"""Manifests: beside every output a job writes, `<output>.manifest.json` lists what the output
is (each file, inside a folder output too, with its size and sha256) and what made it (the
rule, its wildcards, the spikeforge version, the config values the rule passed, a checksum
of every input). `spikeforge-verify` checks outputs against them; a job refuses an input
that no longer matches its manifest.

Manifests are JSON without timestamps or absolute run paths, so a rebuilt output has a
byte-identical manifest."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_path

SUFFIX = ".manifest.json"
FORMAT = "spikeforge-manifest/1"
# Written into folder outputs by Snakemake after the job, so never part of a manifest.
SNAKEMAKE_MARKERS = frozenset({".snakemake_timestamp"})
# External inputs above this size are identified by size and modification time, not read:
# a job must not read a whole raw recording or datastore only to checksum it.
HASHED_EXTERNAL_BYTES = 256 << 20
_CHUNK = 4 << 20


def manifest_path(output: str | Path) -> Path:
    return Path(str(output).rstrip("/") + SUFFIX)


# Hard links (DeepSIF's per-split clip file) are one file: hashed once per process.
_DIGESTS: dict[tuple[int, int, int, int], str] = {}


def _identity(path: str | Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def sha256_file(path: str | Path) -> str:
    identity = _identity(path)
    if identity in _DIGESTS:
        return _DIGESTS[identity]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    _DIGESTS[identity] = digest.hexdigest()
    return _DIGESTS[identity]


def unique_bytes(outputs: Iterable[str | Path]) -> int:
    """Bytes the outputs take on disk: every file counted once, however many names (hard
    links) it has."""
    seen: dict[tuple[int, int], int] = {}
    for output in outputs:
        output = Path(output)
        for relative in listed_files(output):
            st = os.stat(_file_path(output, relative.as_posix(), output.is_dir()))
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())


def listed_files(output: str | Path) -> list[Path]:
    """The files an output consists of: itself, or every file under the folder (sorted,
    relative to it), Snakemake's timestamp marker left out."""
    output = Path(output)
    if not output.is_dir():
        return [Path(output.name)]
    found = []
    for root, dirs, files in os.walk(output):
        dirs.sort()
        for name in files:
            if name not in SNAKEMAKE_MARKERS:
                found.append(Path(root, name).relative_to(output))
    return sorted(found)


def _file_path(output: Path, relative: str, is_dir: bool) -> Path:
    return output / relative if is_dir else output.parent / relative


def describe_output(output: str | Path) -> dict[str, Any]:
    """The manifest's `output` part: kind and every file with size and sha256."""
    output = Path(output)
    is_dir = output.is_dir()
    files = []
    for relative in listed_files(output):
        path = _file_path(output, relative.as_posix(), is_dir)
        files.append(
            {"path": relative.as_posix(), "size": path.stat().st_size, "sha256": sha256_file(path)}
        )
    # The name only: the manifest sits beside the output, wherever the run folder is.
    return {"output": output.name, "kind": "directory" if is_dir else "file", "files": files}


def content_digest(files: Iterable[Mapping[str, Any]]) -> str:
    """One checksum for an output's content: of its sorted (path, size, sha256) list."""
    canonical = json.dumps(
        [[f["path"], f["size"], f["sha256"]] for f in files], separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def input_checksum(path: str | Path) -> str:
    """An input's checksum: the content digest its manifest records when a job made it;
    else sha256 of the file (size and modification time above HASHED_EXTERNAL_BYTES, and a
    listing of its entries for an external folder)."""
    path = Path(path)
    manifest = manifest_path(path)
    if manifest.exists():
        return "content:" + content_digest(read_manifest(manifest)["files"])
    if path.is_dir():
        # The folder's own entries only: an external folder may hold a whole dataset (every
        # part of a Mozaik run) that thousands of jobs name as their input.
        listing = sorted(
            [entry.name, entry.stat().st_size if entry.is_file() else -1]
            for entry in os.scandir(path)
        )
        return "listing:" + hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    stat = path.stat()
    if stat.st_size > HASHED_EXTERNAL_BYTES:
        return f"stat:{stat.st_size}:{stat.st_mtime_ns}"
    return "sha256:" + sha256_file(path)


def read_manifest(path: str | Path) -> dict[str, Any]:
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise InputError(path, f"not a readable manifest ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(path, "not a spikeforge manifest")
    return manifest


def _plain(value: Any) -> Any:
    """Config values as JSON: dataclasses as dicts, sets sorted, numpy values converted."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def write_manifests(
    outputs: Iterable[str | Path],
    *,
    rule: str,
    wildcards: Mapping[str, Any],
    version: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str | Path],
) -> list[dict[str, Any]]:
    """Write `<output>.manifest.json` beside each output of a finished job; returns the
    manifests."""
    made = {
        "rule": rule,
        "wildcards": {str(k): str(v) for k, v in wildcards.items()},
        "spikeforge_version": version,
        "params": _plain(dict(params)),
        "inputs": {
            name: {"path": str(p), "checksum": input_checksum(p)} for name, p in inputs.items()
        },
    }
    written = []
    for output in outputs:
        manifest = {"format": FORMAT, **describe_output(output), "made_by": made}
        target = manifest_path(output)
        with atomic_path(target, suffix=".json") as tmp:
            tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        written.append(manifest)
    return written


def remove_manifests(outputs: Iterable[str | Path]) -> None:
    """A job about to rewrite its outputs first removes their manifests: a job killed after
    writing an output but before its manifest leaves no stale manifest to match."""
    for output in outputs:
        manifest_path(output).unlink(missing_ok=True)


def mismatch(output: str | Path, manifest: Mapping[str, Any]) -> str | None:
    """Why `output` no longer matches its manifest (missing, extra or resized files), or
    None. Sizes only: cheap enough for every job to check its inputs; contents are
    `spikeforge-verify`'s job."""
    output = Path(output)
    if not output.exists():
        return "missing"
    is_dir = manifest["kind"] == "directory"
    if is_dir != output.is_dir():
        return f"is a {'file' if is_dir else 'folder'}, its manifest says {manifest['kind']}"
    expected = {f["path"]: f["size"] for f in manifest["files"]}
    present = {p.as_posix() for p in listed_files(output)} if is_dir else set(expected)
    for extra in sorted(present - set(expected)):
        return f"{extra}: not in its manifest"
    for relative, size in expected.items():
        path = _file_path(output, relative, is_dir)
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            return f"{relative}: missing" if is_dir else "missing"
        if actual != size:
            where = f"{relative}: " if is_dir else ""
            return f"{where}{actual} bytes, its manifest says {size}"
    return None


def check_inputs(inputs: Iterable[str | Path]) -> None:
    """Refuse (InputError, naming the file) an input that a job made and that no longer
    matches the manifest written with it."""
    for path in inputs:
        manifest = manifest_path(path)
        if not manifest.exists():
            continue
        problem = mismatch(path, read_manifest(manifest))
        if problem:
            raise InputError(
                path,
                f"{problem}: damaged since it was made (run spikeforge-verify, then snakemake "
                "again to rebuild it)",
            )

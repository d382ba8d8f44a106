"""Outputs appear under their final name only when complete: write to a temporary name beside
the target, then rename. A killed job leaves a hidden staging file, never a partial output,
and the next job writing that output removes what the killed one left."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process's umask (reading it means setting it: set back at once)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_staging(path.parent, f".{path.name}.")
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent
    )
    os.close(fd)
    # mkstemp creates 0600; give the final file the permissions a plain open() would.
    os.chmod(tmp_name, 0o666 & ~_umask())
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def clear_staging(parent: str | Path, prefix: str) -> list[Path]:
    """Remove what killed writers left in `parent` under `prefix` (staging files and folders;
    never a lock file). One job writes an output, so nothing else is using them."""
    removed = []
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix) or entry.name.endswith(".lock"):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
        removed.append(Path(entry.path))
    return removed


def staging_directory(prefix: str, parent: str | Path) -> Path:
    """A new hidden folder in `parent` that will be renamed into place (what an earlier,
    killed writer left under the same prefix is removed first): mkdtemp's, with the
    permissions a plain mkdir gives (mkdtemp makes 0700 whatever the umask)."""
    clear_staging(parent, prefix)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(staging, 0o777 & ~_umask())
    return staging


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a staging folder beside `path`; it becomes `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_directory(f".{path.name}.", path.parent)
    try:
        yield staging
        if path.exists():
            shutil.rmtree(path)
        staging.rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Exclusive lock beside `path`, so parallel jobs updating one shared file take turns."""
    path = Path(path)
    lock = path.with_name(f".{path.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@functools.lru_cache(maxsize=1)
def pristine_pickle() -> Any:
    """A private copy of the pure-Python `pickle` module. Some libraries (dill, imported by
    datasets) rewrite `pickle._Pickler.dispatch` in place for every later user; writers that
    subclass the pure-Python pickler build on this copy so their bytes never depend on what
    else was imported."""
    spec = importlib.util.find_spec("pickle")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

#!/usr/bin/env python
"""spikeforge-verify against sha256sum on the same files: seconds per GB for checksums only,
for checksums plus every format's reader, and for coreutils' sha256sum (one process, and
one per core). Builds the demo in a temporary folder unless --run-dir names a finished run.
Files are read once before timing, so every figure is from the page cache.

    python benchmarks/bench_verify.py [--run-dir DIR]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from spikeforge.core.manifest import SUFFIX, read_manifest  # noqa: E402
from spikeforge.verify import verify  # noqa: E402


def listed_files(run_dir: Path) -> list[Path]:
    files = []
    for top in ("results", "resources"):
        for manifest in sorted((run_dir / top).rglob(f"*{SUFFIX}")):
            output = Path(str(manifest)[: -len(SUFFIX)])
            for entry in read_manifest(manifest)["files"]:
                is_dir = output.is_dir()
                files.append(output / entry["path"] if is_dir else output.parent / entry["path"])
    return files


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def sha256sum(files: list[Path], processes: int) -> None:
    names = "\0".join(map(str, files)).encode()
    subprocess.run(["xargs", "-0", "-P", str(processes), "-n", "64", "sha256sum"], input=names,
                   stdout=subprocess.DEVNULL, check=True)  # fmt: skip


def bench(run_dir: Path) -> None:
    files = listed_files(run_dir)
    gigabytes = sum(f.stat().st_size for f in files) / 1e9
    sha256sum(files, 1)  # warm the page cache
    cores = os.cpu_count() or 1
    rows = [
        ("sha256sum, 1 process", timed(lambda: sha256sum(files, 1))),
        (f"sha256sum, {cores} processes", timed(lambda: sha256sum(files, cores))),
        ("spikeforge-verify --no-formats", timed(lambda: verify(run_dir, formats=False))),
        ("spikeforge-verify (checksums + readers)", timed(lambda: verify(run_dir))),
    ]
    baseline = rows[0][1]
    print(f"{len(files)} files, {gigabytes:.2f} GB, {cores} cores")
    for name, seconds in rows:
        print(f"  {name:42s} {seconds:6.2f} s  {seconds / gigabytes:5.2f} s/GB  "
              f"{baseline / seconds:4.1f}x sha256sum")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", type=Path)
    args = parser.parse_args()
    if args.run_dir:
        bench(args.run_dir)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                              "-d", tmp, "--cores", "2", "--quiet", "all"],
                             capture_output=True, text=True)  # fmt: skip
        if run.returncode:
            print(run.stderr[-3000:])
            return 1
        bench(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""spikeforge-verify: check every output of a run against its manifest and its format's
reader, name each damaged or missing file on one line, and remove the outputs that hold
them so that the next `snakemake` rebuilds exactly those (and what depends on them).

    spikeforge-verify [RUN_DIR] [--report-only] [--jobs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from spikeforge.core import manifest as manifests
from spikeforge.core.errors import InputError
from spikeforge.verify import readers

PREFIX = "spikeforge-verify"
SEARCHED = ("results", "resources")


@dataclass(frozen=True)
class Problem:
    output: Path  # the job's output (file or folder) that holds the file
    file: Path
    kind: str  # missing, damaged, unreadable, unexpected
    reason: str

    def line(self) -> str:
        return f"{self.kind}: {self.file}: {self.reason}"


@dataclass
class Report:
    run_dir: str = "."
    outputs: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    # Each output's inputs, from its manifest: what a damaged output's rebuild reaches.
    inputs_of: dict[Path, list[Path]] = field(default_factory=dict)

    @property
    def damaged_outputs(self) -> list[Path]:
        return sorted({p.output for p in self.problems})

    def dependents(self, outputs: list[Path]) -> list[Path]:
        """Outputs made, directly or not, from `outputs` (not themselves). Snakemake does
        not rebuild a missing intermediate whose consumers are up to date, so these go too."""
        gone = {o.resolve() for o in outputs}
        found: set[Path] = set()
        changed = True
        while changed:
            changed = False
            for output, inputs in self.inputs_of.items():
                key = output.resolve()
                if key in gone or key in found:
                    continue
                if any(i == g or g in i.parents for i in inputs for g in gone | found):
                    found.add(key)
                    changed = True
        return sorted(o for o in self.inputs_of if o.resolve() in found)


def find_manifests(run_dir: Path) -> list[Path]:
    found = []
    for top in SEARCHED:
        if (run_dir / top).is_dir():
            found.extend((run_dir / top).rglob(f"*{manifests.SUFFIX}"))
    return sorted(found)


def _check_file(output: Path, path: Path, expected: dict, formats: bool) -> Problem | None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return Problem(output, path, "missing", "listed in its manifest, not on disk")
    if size != expected["size"]:
        return Problem(
            output, path, "damaged", f"{size} bytes, its manifest says {expected['size']}"
        )
    if manifests.sha256_file(path) != expected["sha256"]:
        return Problem(output, path, "damaged", "sha256 differs from its manifest's")
    reader = readers.reader_for(path) if formats else None
    if reader is not None:
        try:
            reader(path)
        except Exception as error:  # any failure of the format's own reader
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            return Problem(output, path, "unreadable", f"{type(error).__name__}: {first}")
    return None


def _check_output(manifest_file: Path, formats: bool, pool: ThreadPoolExecutor, report: Report):
    """(problems, futures of per-file checks, files, bytes) for one manifest."""
    output = Path(str(manifest_file)[: -len(manifests.SUFFIX)])
    try:
        recorded = manifests.read_manifest(manifest_file)
    except InputError as error:
        return [Problem(output, manifest_file, "damaged", str(error))], [], 0, 0
    run_dir = Path(report.run_dir)
    report.inputs_of[output] = [
        (run_dir / entry["path"]).resolve() for entry in recorded["made_by"]["inputs"].values()
    ]
    if not output.exists():
        return [Problem(output, output, "missing", "the output is gone")], [], 0, 0
    is_dir = recorded["kind"] == "directory"
    problems = []
    if is_dir:
        listed = {f["path"] for f in recorded["files"]}
        for extra in manifests.listed_files(output):
            if extra.as_posix() not in listed:
                problems.append(
                    Problem(output, output / extra, "unexpected", "not in its output's manifest")
                )
    futures = []
    for entry in recorded["files"]:
        path = output / entry["path"] if is_dir else output.parent / entry["path"]
        futures.append(pool.submit(_check_file, output, path, entry, formats))
    if is_dir and formats:
        futures.append(pool.submit(_check_arrow_datasets, output))
    size = sum(f["size"] for f in recorded["files"])
    return problems, futures, len(recorded["files"]), size


def _check_arrow_datasets(output: Path) -> Problem | None:
    folders = [output] if readers.is_arrow_dataset(output) else []
    folders += [p.parent for p in output.rglob("state.json") if p.parent != output]
    for folder in sorted(set(folders)):
        try:
            readers.read_arrow_dataset(folder)
        except Exception as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            return Problem(output, folder, "unreadable", f"load_from_disk: {first}")
    return None


def verify(run_dir: str | Path = ".", *, formats: bool = True, jobs: int | None = None) -> Report:
    """Check every output under `run_dir`'s results/ and resources/ that has a manifest."""
    start = time.perf_counter()
    report = Report(run_dir=str(run_dir))
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        pending = []
        for manifest_file in find_manifests(Path(run_dir)):
            problems, futures, files, size = _check_output(manifest_file, formats, pool, report)
            report.outputs += 1
            report.files += files
            report.bytes += size
            report.problems.extend(problems)
            pending.extend(futures)
        report.problems.extend(p for f in pending if (p := f.result()) is not None)
    report.problems.sort(key=lambda p: (str(p.file), p.kind))
    report.seconds = time.perf_counter() - start
    return report


def remove_outputs(outputs: list[Path]) -> None:
    """Remove damaged outputs and their manifests: Snakemake then rebuilds them and, their
    files being newer, everything made from them."""
    for output in outputs:
        if output.is_dir() and not output.is_symlink():
            shutil.rmtree(output)
        else:
            output.unlink(missing_ok=True)
        manifests.manifest_path(output).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PREFIX, description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", nargs="?", default=".", help="the folder snakemake ran in")
    parser.add_argument("--report-only", action="store_true", help="remove nothing")
    parser.add_argument("--no-formats", action="store_true", help="checksums only")
    parser.add_argument("--jobs", type=int, default=None, help="threads (default: all cores)")
    args = parser.parse_args(argv)
    report = verify(args.run_dir, formats=not args.no_formats, jobs=args.jobs)
    for problem in report.problems:
        print(f"{PREFIX}: {problem.line()}", file=sys.stderr)
    gigabytes = report.bytes / 1e9
    print(
        f"{PREFIX}: {report.files} files ({gigabytes:.2f} GB) in {report.outputs} outputs checked "
        f"in {report.seconds:.1f} s: {len(report.problems)} problems",
        file=sys.stderr,
    )
    if not report.problems:
        return 0
    damaged = report.damaged_outputs
    if args.report_only:
        print(f"{PREFIX}: {len(damaged)} outputs damaged; --report-only: nothing removed",
              file=sys.stderr)  # fmt: skip
    else:
        dependents = report.dependents(damaged)
        remove_outputs(damaged + dependents)
        for output in damaged:
            print(f"{PREFIX}: removed {output}", file=sys.stderr)
        for output in dependents:
            print(f"{PREFIX}: removed {output} (made from a damaged output)", file=sys.stderr)
        print(f"{PREFIX}: run snakemake again to rebuild the "
              f"{len(damaged) + len(dependents)} removed outputs", file=sys.stderr)  # fmt: skip
    return 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""A dry run at the modelling group's dataset scale: 500 train parts and 19 test parts of the
six sheets (3,114 export jobs), from empty datastore folders. Prints the best time of
--repeats runs (the first also compiles the workflow's modules); exits 1 above --limit
seconds. CI runs it alone, so other work does not share the cores.

    python benchmarks/dryrun_cortical_scale.py [--limit 10] [--repeats 2]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from spikeforge.cortical.mock import folder_name  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for variant, first, count in (("train", 50_000, 500), ("test", 300_000, 19)):
            for k in range(count):
                folder = root / variant / folder_name(first + 100 * k, 100)
                folder.mkdir(parents=True)
                (folder / "datastore.recordings.pickle").touch()
        config = {"max_output_gb": 1000, "check_free_disk": False, "cortical": {
            "enabled": True, "source": "datastore",
            "train": {"root": str(root / "train")}, "test": {"root": str(root / "test")},
        }}  # fmt: skip
        (root / "config.yaml").write_text(yaml.safe_dump(config))
        command = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"),
                   "--directory", str(root / "run"), "--configfile", str(root / "config.yaml"),
                   "-n", "--quiet", "rules"]  # fmt: skip
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run = subprocess.run(command, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if run.returncode:
                print(run.stderr[-2000:])
                return 1
    seconds = min(times)
    spread = "/".join(f"{t:.1f}" for t in times)
    print(f"dry run of 3,114 cortical export jobs: best {seconds:.1f} s of {spread} s "
          f"(limit {args.limit:g} s)")  # fmt: skip
    return 0 if seconds < args.limit else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Kill rate per module of the last mutmut run (benchmarks/mutation.py runs it).

    python benchmarks/mutation_summary.py [--survivors]

Killed: a test failed (or the mutant timed out); survived: every covering test passed;
no tests: no test runs the mutated function. The rate is killed / (killed + survived + no
tests) over the mutants that were run, with its 95 % (Wilson) interval where they are a sample.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mutmut.stats import status_by_exit_code

MUTANTS = Path("mutants")


def summary(root: Path = MUTANTS) -> dict[str, Counter]:
    by_module: dict[str, Counter] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        module = meta.relative_to(root).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        by_module[module] = Counter(status_by_exit_code[code] for code in codes.values())
    return by_module


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def print_table(sampled: Sequence[str] = (), only: Sequence[str] = ("",)) -> None:
    rows = summary()
    total: Counter = Counter()
    print(f"{'module':32s} {'mutants':>7s} {'run':>5s} {'killed':>6s} {'survived':>8s} "
          f"{'no tests':>8s} {'rate':>6s}  95 % interval")  # fmt: skip
    for module, counts in rows.items():
        short = module.removeprefix("src/spikeforge/")
        run = sum(v for k, v in counts.items() if k != "not checked")
        if run == 0 or not short.startswith(tuple(only)):
            continue
        total.update(counts)
        killed = counts["killed"] + counts["timeout"]
        judged = killed + counts["survived"] + counts["no tests"]
        low, high = wilson(killed, judged)
        interval = f"{low:.0%}-{high:.0%}" if short in sampled else "(all run)"
        print(f"{short:32s} {sum(counts.values()):7d} {run:5d} {killed:6d} "
              f"{counts['survived']:8d} {counts['no tests']:8d} {killed / judged:6.1%}  "
              f"{interval}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    args = parser.parse_args()
    from mutation import SAMPLED

    print_table(sampled=SAMPLED)
    if args.survivors:
        for meta in sorted(MUTANTS.rglob("*.py.meta")):
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            for name, code in codes.items():
                if status_by_exit_code[code] in ("survived", "no tests"):
                    print(f"{status_by_exit_code[code]:9s} {name}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Mutation testing of the core of each chain with mutmut ([tool.mutmut] in pyproject.toml).

    python benchmarks/mutation.py [--sample N] [--seed S] [--only eeg/ paired/ ...]

Every mutant of the modules in FULL is run. The paired modules' tests build a mock Neuropixels
cell and run the streaming pass (about 10 s per mutant), so SAMPLED modules run a seeded
random sample of N mutants each and report the kill rate with its 95 % interval. The tests
run with one streaming-pass process (SPIKEFORGE_TEST_JOBS=1): mutmut picks the tests of a
mutant from the calls it sees in the test process, and calls in worker processes are not
seen. Prints the per-module table of benchmarks/mutation_summary.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys

from mutation_summary import MUTANTS, print_table

FULL = (
    "eeg/synthesis.py",
    "eeg/plan.py",
    "eeg/clips.py",
    "eeg/export/hdf5.py",
    "eeg/export/mat.py",
    "eeg/export/deepsif.py",
)
SAMPLED = (
    "paired/kernels.py",
    "paired/streaming.py",
    "paired/templates.py",
    "paired/arrow.py",
    "paired/convert.py",
    "paired/metadata.py",
)


def mutmut(*names: str) -> None:
    env = dict(os.environ, SPIKEFORGE_TEST_JOBS="1")
    command = [sys.executable, "-m", "mutmut", "run", *names]
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False)


def all_mutants() -> dict[str, list[str]]:
    by_module = {}
    for meta in MUTANTS.rglob("*.py.meta"):
        module = meta.relative_to(MUTANTS / "src" / "spikeforge").as_posix().removesuffix(".meta")
        by_module[module] = sorted(json.loads(meta.read_text())["exit_code_by_key"])
    return by_module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=80, help="mutants per sampled module")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--only", nargs="+", default=[""], help="module prefixes to run")
    args = parser.parse_args()
    shutil.rmtree(MUTANTS, ignore_errors=True)
    # Generate every mutant (and the test statistics) by running one of them.
    mutmut("spikeforge.eeg.synthesis.x_noise_rng__mutmut_1")
    chosen = []
    gen = random.Random(args.seed)
    for module, names in sorted(all_mutants().items()):
        if not module.startswith(tuple(args.only)):
            continue
        if module in FULL:
            chosen += names
        elif module in SAMPLED:
            chosen += sorted(gen.sample(names, min(args.sample, len(names))))
    mutmut(*chosen)
    print_table(sampled=SAMPLED, only=args.only)


if __name__ == "__main__":
    main()

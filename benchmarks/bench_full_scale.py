#!/usr/bin/env python
"""DeepSIF's whole dataset through the workflow itself, end to end, on this machine.

DeepSIF trains on 994 regions x 192 = 190,848 samples and tests on 994 x 12 = 11,928
(training SNRs 10:2:20 dB, test SNRs 10 and 15 dB, sensor SNRs 5-20 dB). This runs
`snakemake --cores 2` on a generated config in a temporary folder: the real head model from
../shared/data/deepsif (75 electrodes, 994 regions), a mock spike library of
--clips-per-region clips for every region (a quarter of each region's clips held out for the
test split), the sample plans, synthesis into HDF5 shards of 1,000 samples and the DeepSIF
loader export. It prints per stage (rule): jobs, the wall-time
span, CPU seconds and cores busy, the largest job's peak memory and the bytes written, all
from the jobs' own `job stats` log lines; the disk's sustained write rate measured in the
same run (fdatasync'ed 64 MB blocks); the machine's load average before, during (sampled
every 5 s) and after. Then it deletes what it wrote.

Where the full set does not fit on the disk (the workflow's own start-up estimate against
the free space), it runs the largest fraction of each split that does (`count`) and prints
the extrapolation to the full set apart from what was measured.

    python benchmarks/bench_full_scale.py [--fraction F] [--clips-per-region N]
    python benchmarks/bench_full_scale.py --smoke     # 20 regions (demo head model): CI
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import yaml
from benchlib import loadavg

REPO = Path(__file__).resolve().parents[1]
ANATOMY = REPO.parent / "shared" / "data" / "deepsif" / "anatomy"
FULL = {"train": 192, "test": 12}  # samples per region
REGIONS = 994
STATS = re.compile(r"^(\S+ \S+) INFO job stats: (\{.*\})$", re.M)


def disk_write_mb_s(folder: Path, total_mb: int = 2048) -> float:
    """Sustained write rate: 64 MB blocks, fdatasync'ed, as a large HDF5 shard is written."""
    block = os.urandom(64 << 20)
    path = folder / ".write_probe"
    start = time.perf_counter()
    with open(path, "wb") as handle:
        for _ in range(total_mb // 64):
            handle.write(block)
        handle.flush()
        os.fdatasync(handle.fileno())
    seconds = time.perf_counter() - start
    path.unlink()
    return total_mb * 1.048576 / seconds


class LoadSampler:
    """The 1-minute load average every `every` seconds while in the block."""

    def __init__(self, every: float = 5.0) -> None:
        self.every, self.samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "not sampled"
        mean = sum(self.samples) / len(self.samples)
        return f"mean {mean:.2f}, max {max(self.samples):.2f} ({len(self.samples)} samples)"


def config(args: argparse.Namespace, fraction: float) -> dict:
    counts = {split: None if fraction >= 1 else max(1, int(FULL[split] * REGIONS * fraction))
              for split in FULL}  # fmt: skip
    if args.smoke:
        anatomy = {"source": "demo", "demo": {"n_regions": 20, "n_channels": 75}}
    else:
        anatomy = {"source": "files", "files": {
            "leadfield": str(ANATOMY / "leadfield_75_20k.mat"),
            "region_mapping": str(ANATOMY / "fs_cortex_20k_region_mapping.mat"),
            "centres": str(ANATOMY / "fs_cortex_20k_inflated.mat"),
        }}  # fmt: skip
    return {
        "seed": 2026,
        "max_output_gb": 100_000,
        "eeg": {
            "enabled": True,
            "anatomy": anatomy,
            "spike_library": {"source": "mock", "mock_clips_per_region": args.clips_per_region},
            "plan": {"sensor_snrs_db": [5, 10, 15, 20], "held_out_clips": 0.25},
            "splits": {
                "train": {
                    "samples_per_region": FULL["train"],
                    "target_snrs_db": [10, 12, 14, 16, 18, 20],
                    **({"count": counts["train"]} if counts["train"] else {}),
                },
                "test": {
                    "samples_per_region": FULL["test"],
                    "target_snrs_db": [10, 15],
                    **({"count": counts["test"]} if counts["test"] else {}),
                },
            },  # fmt: skip
            "synthesis": {"samples_per_shard": 1000},
            "export": {"mat": {"enabled": False}, "deepsif": {"enabled": True}},
        },
        **{c: {"enabled": False} for c in ("paired", "sessions", "cortical", "spiketrains")},
    }


def snakemake(folder: Path, cfg: dict, *args: str) -> subprocess.CompletedProcess:
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    command = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"),
               "-d", str(folder / "run"), "--configfile", str(folder / "config.yaml"),
               "--cores", "2", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True)


def estimated_gb(folder: Path, cfg: dict) -> float:
    dry = snakemake(folder, {**cfg, "check_free_disk": False}, "-n", "--quiet", "rules")
    if dry.returncode:
        sys.exit(dry.stderr[-3000:])
    return float(re.search(r"about ([\d.]+) GB under", dry.stderr).group(1))


def stage_table(run: Path) -> list[dict]:
    """Per rule, from each job's `job stats` log line and the line's time stamp."""
    from datetime import datetime

    empty = {"jobs": 0, "cpu_s": 0.0, "peak_rss_mb": 0.0, "bytes": 0, "start": None, "end": None}
    stages: dict[str, dict] = defaultdict(lambda: dict(empty))
    for log in (run / "logs").rglob("*.log"):
        text = log.read_text(errors="replace")
        for stamp, payload in STATS.findall(text):
            stats = json.loads(payload)
            rule = re.sub(r"[_-]?\d+$", "", log.stem) if log.parent.name != "logs" else log.stem
            rule = f"{log.parent.name}/{rule}"
            end = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            stage = stages[rule]
            stage["jobs"] += 1
            stage["cpu_s"] += stats["cpu_s"]
            stage["peak_rss_mb"] = max(stage["peak_rss_mb"], stats["peak_rss_mb"])
            stage["bytes"] += stats["output_bytes"]
            start = end - stats["wall_s"]
            stage["start"] = start if stage["start"] is None else min(stage["start"], start)
            stage["end"] = end if stage["end"] is None else max(stage["end"], end)
    rows = [{"stage": k, **v, "wall_s": v["end"] - v["start"]} for k, v in stages.items()]
    return sorted(rows, key=lambda r: r["start"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fraction", type=float, help="of each split (default: what fits)")
    parser.add_argument("--clips-per-region", type=int, default=4)
    parser.add_argument("--smoke", action="store_true", help="20 regions, for CI")
    parser.add_argument("--keep", type=Path, help="run here and keep the outputs")
    args = parser.parse_args()
    if not args.smoke and not (ANATOMY / "leadfield_75_20k.mat").is_file():
        print(f"needs DeepSIF's anatomy in {ANATOMY} (or --smoke)")
        return 1
    global REGIONS
    REGIONS = 20 if args.smoke else REGIONS
    parent = args.keep or Path(tempfile.mkdtemp(prefix="spikeforge-full-", dir=REPO.parent))
    parent.mkdir(parents=True, exist_ok=True)
    try:
        # Long enough to get past the virtual disk's host-side cache (its 1 GB rates here
        # range from 320 to 1,400 MB/s).
        write_mb_s = disk_write_mb_s(parent, 256 if args.smoke else 4096)
        full_gb = estimated_gb(parent, config(args, 1.0))
        free_gb = shutil.disk_usage(parent).free / 1e9
        # the start-up check refuses more than fits; the margin is for the estimate's error
        fraction = args.fraction or min(1.0, 0.95 * free_gb / full_gb)
        print(f"machine: {os.cpu_count()} cores, load {loadavg()}; disk: {free_gb:.0f} GB free, "
              f"sustained write {write_mb_s:.0f} MB/s (fdatasync)")  # fmt: skip
        print(f"full set: {sum(FULL.values()) * REGIONS:,} samples, about {full_gb:.0f} GB "
              f"(start-up estimate); running {fraction:.0%} of each split")  # fmt: skip
        start = time.perf_counter()
        with LoadSampler() as load:
            run = snakemake(parent, config(args, fraction), "--quiet", "all")
        total = time.perf_counter() - start
        if run.returncode:
            print(run.stderr[-5000:])
            return 1
        rows = stage_table(parent / "run")
        print(f"measured: end to end {total:.0f} s wall; load average during the run "
              f"{load.summary()}; after {loadavg()}")  # fmt: skip
        print(f"  {'stage':32s} {'jobs':>5s} {'wall s':>8s} {'CPU s':>8s} {'cores':>6s} "
              f"{'peak MB':>8s} {'GB written':>10s}")  # fmt: skip
        for r in rows:
            print(f"  {r['stage']:32s} {r['jobs']:5d} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} "
                  f"{r['cpu_s'] / max(r['wall_s'], 1e-9):6.2f} {r['peak_rss_mb']:8.0f} "
                  f"{r['bytes'] / 1e9:10.2f}")  # fmt: skip
        synthesis = next((r for r in rows if r["stage"].endswith("synthesis/train")), None)
        if synthesis:
            rate = synthesis["bytes"] / 1e6 / synthesis["wall_s"]
            samples = int(FULL["train"] * REGIONS * min(fraction, 1.0))
            ms_per_sample = 1e3 * synthesis["cpu_s"] / samples
            ceiling = 2 * synthesis["bytes"] / 1e6 / synthesis["cpu_s"]
            per_s = samples / synthesis["wall_s"]
            print(f"  synthesis (train) wrote {rate:.0f} MB/s ({per_s:,.0f} samples/s) = "
                  f"{rate / write_mb_s:.0%} of the disk's sustained rate; its jobs spent "
                  f"{ms_per_sample:.2f} CPU ms a sample, so 2 busy cores would write "
                  f"{ceiling:.0f} MB/s = {ceiling / write_mb_s:.0%}")  # fmt: skip
        if fraction < 1.0:
            # Only the per-sample stages grow with the fraction: plans and synthesis (the
            # spike library and DeepSIF's clip file do not); their CPU on 2 cores.
            per_sample = sum(r["cpu_s"] for r in rows if re.search(r"plan|synthesis", r["stage"]))
            extra = per_sample * (1 / fraction - 1) / 2
            print(f"extrapolated to the full set: about {(total + extra) / 60:.1f} min "
                  f"({total:.0f} s measured + {extra:.0f} s more of plans and synthesis, "
                  f"their CPU seconds spread over 2 cores)")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

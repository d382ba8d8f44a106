#!/usr/bin/env python
"""Spike-train exports against spikelab's exporters on the same trains: time and memory.

Run from anywhere:  python benchmarks/bench_spiketrains.py [--units 1000] [--spikes 10000000]

1,000 units and 10 million spikes (1,000 s at 30 kHz, 10 Hz a unit, at least 1 ms apart),
written and read back in each format by spikeforge and, where it has one, by spikelab 0.1.2
(its SpikeData in milliseconds, its exporters and loaders with their defaults). The raster uses
10 ms bins (1 ms bins would make spikelab build a 1,000 x 1,000,000 int64 array, 8 GB).

Each (tool, format, write/read) runs in a fresh process: the trains are loaded first (not
timed), then the peak resident memory is reset (/proc/self/clear_refs) and the operation runs;
"extra memory" is its peak above what the process held before it, beside the size of the data
itself (int64 samples + index for spikeforge, float64 milliseconds for spikelab). Times are
wall clock, best of --repeats. Other processes may share the machine; the load is printed.
"""

# ruff: noqa: E402
import os

from benchlib import one_blas_thread

one_blas_thread()

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from benchlib import cpu_model, loadavg

FS = 30_000.0
RASTER_BIN_MS = 10.0
SPIKELAB_NAMES = {
    "hdf5_raster": "raster",
    "hdf5_ragged": "ragged",
    "hdf5_group": "group",
    "hdf5_paired": "paired",
    "nwb": "nwb",
    "phy": "kilosort",
}


def make_data(folder: Path, units: int, spikes: int, seed: int = 0) -> Path:
    """Flat sorted spike samples per unit (ISIs of 1 ms + exponential) and cumulative ends."""
    rng = np.random.default_rng(seed)
    per_unit = spikes // units
    isi = 30 + rng.exponential(FS / 10.0 - 30, size=(units, per_unit)).astype(np.int64)
    times = np.cumsum(isi, axis=1).ravel()
    index = np.arange(1, units + 1, dtype=np.int64) * per_unit
    path = folder / "trains.npz"
    np.savez(path, times=times, index=index)
    return path


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def worker(tool: str, fmt: str, op: str, data: Path, out: Path) -> dict:
    """One measured operation in this (fresh) process."""
    # Imports happen before the measurement: they are not the operation's memory.
    import h5py  # noqa: F401
    import pynwb  # noqa: F401
    import scipy.io  # noqa: F401

    raw = np.load(data)
    times, index = raw["times"], raw["index"]
    if tool == "spikeforge":
        from spikeforge.spiketrains.formats import read_spiketrains, write_spiketrains
        from spikeforge.spiketrains.model import SpikeTrains

        trains = SpikeTrains(
            np.arange(index.size), times, index, sampling_frequency=FS, duration=times.max() / FS
        )
        data_bytes = times.nbytes + index.nbytes
        options = {"time_unit": "s", "raster_bin_ms": RASTER_BIN_MS}

        def write() -> None:
            write_spiketrains(trains, out, fmt, options)

        def read() -> None:
            read_spiketrains(out, fmt)
    else:
        from spikelab.data_loaders import data_exporters as ex
        from spikelab.data_loaders import data_loaders as ld
        from spikelab.spikedata import SpikeData

        starts = np.concatenate([[0], index[:-1]])
        sd = SpikeData(
            [times[a:b] / FS * 1e3 for a, b in zip(starts, index, strict=True)],
            length=float(times.max()) / FS * 1e3,
        )
        data_bytes = times.nbytes
        style = SPIKELAB_NAMES[fmt]

        def write() -> None:
            if style == "nwb":
                ex.export_spikedata_to_nwb(sd, str(out))
            elif style == "kilosort":
                ex.export_spikedata_to_kilosort(sd, str(out), fs_Hz=FS)
            else:
                extra = {"raster_bin_size_ms": RASTER_BIN_MS} if style == "raster" else {}
                ex.export_spikedata_to_hdf5(sd, str(out), style=style, **extra)

        def read() -> None:
            if style == "nwb":
                ld.load_spikedata_from_nwb(str(out), prefer_pynwb=False)
            elif style == "kilosort":
                ld.load_spikedata_from_kilosort(str(out), fs_Hz=FS)
            else:
                kwargs = {
                    "raster": {"raster_dataset": "raster", "raster_bin_size_ms": RASTER_BIN_MS},
                    "ragged": {
                        "spike_times_dataset": "spike_times",
                        "spike_times_index_dataset": "spike_times_index",
                    },
                    "group": {"group_per_unit": "units"},
                    "paired": {
                        "idces_dataset": "idces",
                        "times_dataset": "times",
                        "times_unit": "ms",
                    },
                }[style]
                ld.load_spikedata_from_hdf5(str(out), **kwargs)

    if op == "read":
        del raw, times  # the loader builds its own copy
        if tool == "spikeforge":
            del trains
        else:
            del sd
    operation = write if op == "write" else read
    before = _rss_kb("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    operation()
    seconds = time.perf_counter() - start
    peak = _rss_kb("VmHWM")
    size = (
        sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        if out.is_dir()
        else out.stat().st_size
    )
    return {
        "seconds": seconds,
        "extra_mb": max(0, peak - before) / 1024,
        "data_mb": data_bytes / 2**20,
        "file_mb": size / 2**20,
    }


def measure(tool: str, fmt: str, op: str, data: Path, out: Path, repeats: int) -> dict:
    best: dict | None = None
    for _ in range(repeats):
        if op == "write" and out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        cmd = [sys.executable, __file__, "--worker", tool, fmt, op, str(data), str(out)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {fmt} {op} failed:\n{result.stderr[-3000:]}")
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        if best is None or figures["seconds"] < best["seconds"]:
            best = figures
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--spikes", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, fmt, op, data, out = args.worker
        print(json.dumps(worker(tool, fmt, op, Path(data), Path(out))))
        return

    from spikeforge.spiketrains.formats import FORMATS, output_name

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; load before: {loadavg()}")
    print(f"{args.units:,} units, {args.spikes:,} spikes, raster bins {RASTER_BIN_MS:g} ms")
    folder = Path(tempfile.mkdtemp(prefix="bench_spiketrains_"))
    try:
        data = make_data(folder, args.units, args.spikes)
        header = (
            f"{'format':<12} {'op':<5} {'spikeforge s':>12} {'spikelab s':>10} {'speed-up':>8}"
            f" {'sf extra MB':>11} {'sf data MB':>10} {'sf mem/data':>11} {'sl extra MB':>11}"
            f" {'sf file MB':>10}"
        )
        print(header)
        rows = []
        for fmt in FORMATS:
            ours_out = folder / f"sf_{output_name(fmt)}"
            theirs_out = folder / f"sl_{fmt}{'' if fmt == 'phy' else '.h5'}"
            for op in ("write", "read"):
                ours = measure("spikeforge", fmt, op, data, ours_out, args.repeats)
                theirs = (
                    measure("spikelab", fmt, op, data, theirs_out, args.repeats)
                    if fmt in SPIKELAB_NAMES
                    else None
                )
                ratio = theirs["seconds"] / ours["seconds"] if theirs else float("nan")
                row = (
                    f"{fmt:<12} {op:<5} {ours['seconds']:>12.2f} "
                    f"{theirs['seconds'] if theirs else float('nan'):>10.2f} {ratio:>7.1f}x"
                    f" {ours['extra_mb']:>11.0f} {ours['data_mb']:>10.0f}"
                    f" {ours['extra_mb'] / ours['data_mb']:>10.2f}x"
                    f" {theirs['extra_mb'] if theirs else float('nan'):>11.0f}"
                    f" {ours['file_mb']:>10.0f}"
                )
                print(row, flush=True)
                rows.append((fmt, op, ours, theirs))
        print(f"load after: {loadavg()}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

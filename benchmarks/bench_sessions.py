#!/usr/bin/env python
"""A 90-minute, 100-unit mock session generated and written: spikeforge against a
straightforward per-unit loop over the same specification; and the LFP's memory against the
session's length.

Run from anywhere:  python benchmarks/bench_sessions.py [--minutes 90] [--repeats 3]

The session: 10 regions x 10 channels, one unit each (100 units), lognormal rates (median
1.5 Hz, sigma 1), 2 ms dead time, 20 % of the units responding to a movie label, one LFP
channel at 1 kHz, an 83-minute movie with pauses and skips.

The baseline is what one writes from the specification without vectorising: per unit, a
Python loop draws the spikes one at a time (the dead-time recursion, restarting the clock at
each rate change) and each spike's 64-sample waveform (mean + noise), then np.save of the
dict; the LFP is built whole in memory (sine + the same 1/f filter over the full-length white
noise) and saved with np.save. Both use the same unit table, movie, logs and label intervals
(spikeforge's draws), so only the generation of trains, waveforms and LFP and their writing
differ.

Each run is a fresh process: imports first, then the peak resident memory is reset
(/proc/self/clear_refs) and the generation runs; "extra memory" is the peak above what the
process held before. Times are wall clock, best of --repeats; the machine's load is printed.
"""

# ruff: noqa: E402
from benchlib import one_blas_thread

one_blas_thread()

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from benchlib import cpu_model, loadavg, peak_rss_kb, reset_peak_rss


def spec_for(minutes: float, units: bool = True):
    """The benchmark's session; without units, an LFP-only session with a 10-minute movie
    (so that only the LFP grows with the length)."""
    from spikeforge.sessions.spec import MovieSpec, SessionSpec

    duration = 60.0 * minutes
    movie = MovieSpec(duration_s=duration * 5000 / 5400, onset_s=duration * 150 / 5400)
    if not units:
        movie = MovieSpec(duration_s=600.0, onset_s=60.0)
    return SessionSpec(
        patient=1,
        session=1,
        seed=2026,
        duration_s=duration,
        regions=tuple(f"R{chr(65 + k)}" for k in range(10)),
        channels_per_region=10,
        units_per_channel=(1, 1) if units else (0, 0),
        movie=movie,
    )


def baseline(spec, root: Path) -> int:
    """The per-unit, per-spike loop (see the module docstring); returns the spike count."""
    from scipy.signal import sosfilt

    from spikeforge.sessions import draws, stimulus, write
    from spikeforge.sessions.spec import LFP_RATE_HZ, SPIKE_RATE_HZ

    folder = write.session_folder(root, spec.patient, spec.session)
    for sub in ("spiking_data", "lfp_data"):
        (folder / sub).mkdir(parents=True)
    timeline = write.draw_timeline(spec)
    units = write.draw_units(spec)
    labels = {label.name: label for label in write.draw_labels(spec)}
    responses = {
        name: stimulus.on_intervals(timeline.playback, label, timeline.clock) - timeline.start_ms
        for name, label in labels.items()
    }
    write._write_info(spec, timeline, folder)
    py_random = random.Random(spec.seed)
    np_random = np.random.default_rng(spec.seed)
    tau = spec.dead_time_samples / SPIKE_RATE_HZ
    total = 0
    for unit in units:
        on = responses[unit.label] / 1000.0 if unit.label else np.empty((0, 2))
        breaks, rates = draws.piecewise_rates(spec.duration_s, unit.rate_hz, on.tolist(), unit.gain)
        mean = unit.mean_waveform()
        times, waveforms = [], []
        t, piece = 0.0, 0
        while piece < len(rates):
            if t >= breaks[piece + 1]:
                piece += 1
                continue
            hazard = rates[piece] / (1 - rates[piece] * tau)
            candidate = t + py_random.expovariate(hazard)
            if candidate >= breaks[piece + 1]:
                t = breaks[piece + 1]
                continue
            sample = int(candidate * SPIKE_RATE_HZ)
            times.append(timeline.start_ms + sample / 32.0)
            waveforms.append(mean + np_random.normal(0.0, unit.noise_uv, 64))
            t = candidate + tau
        content = {
            "spike_times": np.array(times),
            "spike_amps": np.array(waveforms, dtype=np.float32).reshape(-1, 64),
        }
        np.save(folder / "spiking_data" / f"{unit.name}.npy", content)
        total += len(times)
    n = int(round(spec.duration_s * LFP_RATE_HZ))
    for channel in spec.lfp.channels:
        sos, sd = draws.pink_filter(LFP_RATE_HZ)
        ts = timeline.start_ms + np.arange(n, dtype=np.float64)
        t = np.arange(n) / LFP_RATE_HZ
        noise = sosfilt(sos, np_random.standard_normal(n))
        samples = spec.lfp.oscillation_uv * np.sin(2 * np.pi * spec.lfp.oscillation_hz * t)
        samples = (samples + spec.lfp.noise_uv / sd * noise).astype(np.float32)
        content = {"ts": ts, "timestamps": ts, "samples": samples, "sample_rate": np.array([1000])}
        np.save(folder / "lfp_data" / f"CSC{channel}_lfp.npy", content)
    write._write_logs(spec, timeline, folder)
    return total


def worker(kind: str, minutes: float, units: bool, out: Path) -> dict:
    import scipy.signal  # noqa: F401
    import scipy.special  # noqa: F401

    from spikeforge.sessions import write

    spec = spec_for(minutes, units)
    write.draw_labels(spec)  # warm the imports and caches, not the measurement
    before = peak_rss_kb()
    reset_peak_rss()
    start = time.perf_counter()
    if kind == "baseline":
        spikes = baseline(spec, out)
    else:
        folder = write.write_session(spec, out, threads=int(kind[-1]))
        truth = json.loads((folder / write.TRUTH_FILE).read_text())
        spikes = sum(u["n_spikes"] for u in truth["units"])
    seconds = time.perf_counter() - start
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"seconds": seconds, "extra_mb": (peak_rss_kb() - before) / 1024,
            "spikes": spikes, "bytes": written}  # fmt: skip


def measure(kind: str, minutes: float, units: bool, repeats: int) -> dict:
    best = None
    for _ in range(repeats):
        out = Path(tempfile.mkdtemp(prefix="bench_sessions_"))
        try:
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                kind,
                str(minutes),
                str(int(units)),
                str(out),
            ]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode:
                raise SystemExit(f"{kind} failed:\n{result.stderr}")
            figures = json.loads(result.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(out, ignore_errors=True)
        if best is None or figures["seconds"] < best["seconds"]:
            best = figures
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--minutes", type=float, default=90.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, minutes, units, out = args.worker
        print(json.dumps(worker(kind, float(minutes), units == "1", Path(out))))
        return
    print(f"machine: {cpu_model()}, load {loadavg()}")
    print(f"{args.minutes:g}-minute session, 100 units, 1 LFP channel; best of {args.repeats}")
    rows = {kind: measure(kind, args.minutes, True, args.repeats)
            for kind in ("baseline", "spikeforge_1", "spikeforge_2")}  # fmt: skip
    base = rows["baseline"]["seconds"]
    for kind, figures in rows.items():
        print(
            f"  {kind:13s} {figures['seconds']:6.2f} s  {base / figures['seconds']:5.1f}x  "
            f"extra memory {figures['extra_mb']:6.0f} MB  {figures['spikes']:,} spikes  "
            f"{figures['bytes'] / 1e6:,.0f} MB written"
        )
    print("LFP only (no units): extra memory against the session's length")
    for kind in ("baseline", "spikeforge_1"):
        short = measure(kind, args.minutes / 3, False, 1)
        long = measure(kind, args.minutes, False, 1)
        print(
            f"  {kind:13s} {args.minutes / 3:g} min {short['extra_mb']:6.0f} MB, "
            f"{args.minutes:g} min {long['extra_mb']:6.0f} MB "
            f"(x{long['extra_mb'] / max(short['extra_mb'], 1):.2f} for x3 the length)"
        )
    print(f"load after: {loadavg()}")


if __name__ == "__main__":
    main()

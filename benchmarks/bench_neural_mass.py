#!/usr/bin/env python
"""Simulated seconds per wall second per core: TVB against spikeforge's compiled Jansen-Rit
backend (spikeforge.eeg.neural_mass), on DeepSIF's 998-region connectivity with DeepSIF's
settings (A = 3.5 in one region, noise setting 0), one process, one BLAS thread.

    python benchmarks/bench_neural_mass.py [--tvb-seconds 0.1] [--seconds 1.0]
    python benchmarks/bench_neural_mass.py --real-run [--real-seconds 200]

--real-run also simulates one spiking region x DeepSIF's 3 noise settings for --real-seconds
in one batch with the backend's own seeded noise, writes them in DeepSIF's raw layout (10 s
chunks, as the tvb backend does) and extracts the clips with the workflow's extraction
(fsaverage remap to the 994-region head model), printing each stage's time and bytes.

Prints the rate of TVB, of one run, and of batches of 4, 8 and 16 runs (per run-second), the
ratios to TVB, and the projection for DeepSIF's whole raw set (994 regions x 3 noise settings
x 200 s) in CPU-hours, with what the raw 2 kHz layout would write against the clips only.
"""

# ruff: noqa: E402
from benchlib import one_blas_thread

one_blas_thread()

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from benchlib import loadavg

from spikeforge.eeg import tvb as tvb_backend
from spikeforge.eeg.neural_mass import Batch, Connectivity, Simulation, random_start

CONNECTIVITY = (
    Path(__file__).resolve().parents[2] / "shared/data/deepsif/anatomy/connectivity_998.zip"
)
DT_MS = 0.5


def tvb_rate(seconds: float) -> float:
    """TVB's simulated seconds per wall second (configure and import left out)."""
    tvb = tvb_backend._import_tvb()
    conn = tvb.Connectivity.from_file(str(CONNECTIVITY))
    conn.configure()
    n = conn.number_of_regions
    a_vector = np.full(n, 3.25)
    a_vector[7] = 3.5
    model = tvb.models.JansenRit(A=a_vector, mu=np.array([0.087]), v0=np.array([6.0]))
    nsig = np.zeros(6)
    nsig[4] = (0.1 * 3.25 * 0.12 * 0.5 * 1.0) ** 2 / 2.0
    sim = tvb.simulator.Simulator(
        model=model, connectivity=conn,
        coupling=tvb.coupling.SigmoidalJansenRit(a=np.array([1.0])),
        integrator=tvb.integrators.HeunStochastic(dt=DT_MS, noise=tvb.noise.Additive(nsig=nsig)),
        monitors=(tvb.monitors.Raw(),),
    )  # fmt: skip
    sim.configure()
    steps = int(round(seconds * 1000 / DT_MS))
    start = time.perf_counter()
    with np.errstate(over="ignore"):
        sim.run(simulation_length=steps * DT_MS, n_steps=steps)
    return seconds / (time.perf_counter() - start)


def our_rate(conn: Connectivity, n_runs: int, seconds: float) -> float:
    """Run-seconds simulated per wall second for a batch of n_runs (compilation left out)."""
    generators = [np.random.default_rng(run) for run in range(n_runs)]
    state, history = random_start(n_runs, conn, generators)
    a_values = np.full((n_runs, conn.n_regions), 3.25)
    a_values[np.arange(n_runs), np.arange(n_runs) % conn.n_regions] = 3.5
    nsig = np.full(n_runs, (0.1 * 3.25 * 0.12 * 0.5) ** 2 / 2.0)
    sim = Simulation(conn, Batch(a_values, np.full(n_runs, 0.087), nsig), state, history)
    steps = int(round(seconds * 1000 / DT_MS))
    z = np.random.default_rng(0).standard_normal((200, n_runs, conn.n_regions))
    with np.errstate(over="ignore"):
        sim.advance(2, z[:2])  # compile
        start = time.perf_counter()
        for _ in range(steps // 200):
            sim.advance(200, z)
    return n_runs * seconds / (time.perf_counter() - start)


def real_run(conn: Connectivity, seconds: float, region: int = 100) -> None:
    import tempfile

    from spikeforge.eeg.anatomy import load_anatomy, write_anatomy
    from spikeforge.eeg.clips import extract_region_clips
    from spikeforge.eeg.neural_mass import own_noise, run_generators
    from spikeforge.eeg.raw import chunk_path
    from spikeforge.io.mat import save_mat

    runs = [(region, m) for m in range(3)]
    a_values = np.full((3, conn.n_regions), 3.25)
    a_values[:, region] = 3.5
    mu = np.array([tvb_backend.NOISE_SETTINGS[m][0] for m in range(3)])
    nsig = np.array([(0.1 * 3.25 * (0.15 - 0.03) * 0.5 * tvb_backend.NOISE_SETTINGS[m][1]) ** 2
                     / 2.0 for m in range(3)])  # fmt: skip
    state, history = random_start(3, conn, run_generators(2026, runs, "start"))
    sim = Simulation(conn, Batch(a_values, mu, nsig), state, history)
    normals = own_noise(run_generators(2026, runs, "noise"), conn.n_regions)
    chunk_steps = 20_000  # 10 s
    n_chunks = int(round(seconds / 10))
    anatomy_dir = CONNECTIVITY.parent
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[2]) as tmp:
        tmp = Path(tmp)
        simulate = write = 0.0
        for k in range(n_chunks):
            start = time.perf_counter()
            with np.errstate(over="ignore"):
                trace = sim.advance(chunk_steps, normals(sim.step, chunk_steps))
            simulate += time.perf_counter() - start
            start = time.perf_counter()
            times = (k * chunk_steps + np.arange(1, chunk_steps + 1)) * DT_MS
            for run, (r, m) in enumerate(runs):
                save_mat(chunk_path(tmp / "raw", r, m, k), {
                    "data": trace[:, run].astype(np.float32),
                    "time": times.reshape(1, -1), "A": a_values[run].reshape(1, -1),
                })  # fmt: skip
            write += time.perf_counter() - start
        raw_bytes = sum(f.stat().st_size for f in (tmp / "raw").rglob("*.mat"))
        anatomy = load_anatomy(anatomy_dir / "leadfield_75_20k.mat",
                               anatomy_dir / "fs_cortex_20k_region_mapping.mat",
                               anatomy_dir / "fs_cortex_20k_inflated.mat")  # fmt: skip
        write_anatomy(anatomy, tmp / "anatomy.h5")
        start = time.perf_counter()
        clips = extract_region_clips(
            tmp / "raw", region, [0, 1, 2], tmp / "anatomy.h5",
            {"burn_in": 1000, "factor": 4, "fsaverage_remap": True},
            {"threshold_mv": 8.0, "target_snr_db": 15.0},
            tmp / "clips", tmp / "clip_info.json", expected_chunks=n_chunks,
        )  # fmt: skip
        extract = time.perf_counter() - start
        clip_bytes = sum(f.stat().st_size for f in (tmp / "clips").rglob("*.mat"))
        n_clips = len(list((tmp / "clips").glob("nmm_*.mat")))
    print(f"real run: region {region} x 3 noise settings x {seconds:g} s in one batch: "
          f"simulation {simulate:.0f} s ({3 * seconds / simulate:.2f} run-s per wall s), "
          f"raw layout {raw_bytes / 1e9:.2f} GB written in {write:.0f} s, extraction "
          f"{extract:.0f} s -> {n_clips} clips, {clip_bytes / 1e6:.0f} MB "
          f"({type(clips).__name__})")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tvb-seconds", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--real-run", action="store_true")
    parser.add_argument("--real-seconds", type=float, default=200.0)
    args = parser.parse_args()
    if not CONNECTIVITY.is_file():
        print(f"needs {CONNECTIVITY}")
        return 1
    print(f"load before: {loadavg()}")
    conn = Connectivity.from_zip(CONNECTIVITY)
    share = conn.source.size / conn.n_regions**2
    print(f"connectivity: {conn.n_regions} regions, {conn.source.size:,} non-zero weights "
          f"({share:.1%}), horizon {conn.horizon} steps")  # fmt: skip
    base = tvb_rate(args.tvb_seconds)
    print(f"TVB:        {base:8.4f} simulated s per wall s (one run, {args.tvb_seconds} s)")
    rates = {}
    for n_runs in (1, 4, 8, 16):
        rates[n_runs] = our_rate(conn, n_runs, args.seconds)
        print(f"batch of {n_runs:2d}: {rates[n_runs]:8.3f} run-s per wall s = "
              f"{rates[n_runs] / base:6.0f}x TVB")  # fmt: skip
    best = max(rates.values())
    run_seconds = 994 * 3 * 200.0
    print(f"DeepSIF's raw set ({run_seconds:,.0f} run-s): TVB {run_seconds / base / 3600:,.0f} "
          f"CPU-h; here {run_seconds / best / 3600:,.1f} CPU-h at the best batch")  # fmt: skip
    raw_bytes = run_seconds * 2000 * 994 * 4
    print(f"  the raw 2 kHz layout would write {raw_bytes / 1e12:.1f} TB")
    if args.real_run:
        real_run(conn, args.real_seconds)
    print(f"load after: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Throughput and memory benchmark of spikeforge's raw-recording -> spike-clip stage.

Run from anywhere:  python benchmarks/bench_clips.py [--quick]

One spiking region at DeepSIF's scale (docs/eeg-chain.md §2-4): a mock TVB recording of
998 regions at 2 kHz (200 s, 20 chunks of 10 s; --quick: 40 s), fsaverage remap to 994
regions, the real 75 x 994 leadfield. Every figure is printed beside a baseline measured in
the same run on the same files:

1. baseline: DeepSIF's MATLAB script (process_raw_nmm.m) written out in numpy, in memory and
   peak by peak: every chunk loaded with scipy.io.loadmat and concatenated, burn-in dropped,
   every 4th row, 998 -> 994 remap, peaks of the whole matrix, the clear-window rule per peak
   (np.isin over the 900-sample window, as MATLAB's ismember), alpha from the sensor signals
   over the WHOLE recording (then the window rows), the rescaling peak by peak, clips sliced
   and each written to its nmm_{j}.mat, as the script saves them;
2. spikeforge: `extract_region_clips`, the call of the extract_clips rule (two streamed
   passes over the chunks, each clip written to its nmm_{j}.mat when finished, provenance);
3. peak RSS (VmHWM) of a fresh subprocess running either on a short and on the full
   recording (the short one is the first chunks of the full one), beside the floor (imports
   and leadfield, nothing processed);
4. TVB (if importable): simulated seconds per wall second of `simulate_region` on the
   998-region connectivity, extrapolated to DeepSIF's full set.

Times are wall clock, best of N repetitions, with the spread; the recordings are read from
the page cache (written just before). Other processes may share the machine: the cores they
kept busy are printed at the end.
"""

# ruff: noqa: E402  (the thread settings below must precede the numpy import)
import os

from benchlib import one_blas_thread

one_blas_thread()  # before numpy is imported

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.io
from benchlib import OtherLoad, cpu_model, loadavg, log, peak_rss_kb, spread

from spikeforge.eeg.anatomy import Anatomy, write_anatomy
from spikeforge.eeg.clips import extract_region_clips
from spikeforge.eeg.raw import raw_chunk_paths, raw_shape, write_mock_raw
from spikeforge.io.mat import load_mat, save_mat

REPO = Path(__file__).resolve().parents[1]
ANATOMY_DIR = REPO.parent / "shared" / "data" / "deepsif" / "anatomy"
LEADFIELD = ANATOMY_DIR / "leadfield_75_20k.mat"
CONNECTIVITY = ANATOMY_DIR / "connectivity_998.zip"
SEED = 20261121
REGION = 0
ITERATION = 0
RAW_REGIONS = 998
CHUNK_S = 10.0
# DeepSIF's full set: 994 spiking regions x 3 noise settings x 200 s.
FULL_SET_RUNS = 994 * 3
FULL_SET_SECONDS = 200.0

FULL = {"duration_s": 200.0, "reps": 3, "rss_short_s": 40.0, "tvb_s": 1.0, "tvb_chunk_s": 0.5}
QUICK = {"duration_s": 40.0, "reps": 2, "rss_short_s": 10.0, "tvb_s": 1.0, "tvb_chunk_s": 0.5}

# docs/eeg-chain.md §2: fsaverage5 remap, 1-based columns 995, 998, 997, 996 -> 8, 326, 922, 950.
REMAP_SOURCES = np.array([995, 998, 997, 996]) - 1
REMAP_TARGETS = np.array([8, 326, 922, 950]) - 1


# ------------------------------------------------------------------------------- baseline


def baseline_region(
    raw_dir: Path, region: int, iteration: int, fwd: np.ndarray, work: Path
) -> dict:
    """docs/eeg-chain.md §2-4 as process_raw_nmm.m does it: whole recording in memory, per
    peak; each clip saved to work/clips/nmm_{j}.mat.

    Indices are 0-based; the script's 1-based rules are converted where they are applied.
    Precision: the data stay float32 as loaded; alpha and the rescaled region are computed in
    float64 (MATLAB would compute them in single, as single * double is single there).
    """
    # 2. Preprocessing: concatenate the chunks in k order, drop 1000 samples, every 4th row,
    # remap 998 -> 994.
    folder = raw_dir / f"a{region}"
    parts = []
    while True:
        path = folder / f"mean_iter_{iteration}_a_iter_{region}_{len(parts)}.mat"
        if not path.is_file():
            break
        parts.append(scipy.io.loadmat(path, variable_names=["data"])["data"])
    raw = np.concatenate(parts)
    del parts
    nmm = raw[1000::4].copy()
    del raw
    nmm[:, REMAP_TARGETS] = nmm[:, REMAP_SOURCES]
    nmm = np.ascontiguousarray(nmm[:, :994])
    n = nmm.shape[0]

    # 3.1-3.2 find_spike_time: zero below 8, local maxima per channel (MATLAB's find is
    # column-major: by channel, then time), stable sort by time, edge and separation rules.
    spikes = np.where(nmm < 8, np.float32(0), nmm)
    centre = spikes[1:-1]
    local = (centre > spikes[:-2]) & (centre > spikes[2:])
    del spikes, centre
    chan, time_ = np.nonzero(local.T)
    del local
    t1 = time_ + 2  # 1-based time (centre row i is 0-based row i + 1)
    order = np.argsort(t1, kind="stable")
    t1, chan = t1[order], chan[order]
    separated = np.concatenate([[True], np.diff(t1) > 100])
    use = (t1 - 249 > 0) & (t1 + 250 < n) & separated
    t1, chan = t1[use], chan[use]

    # 3.3 the region's peaks whose clip window [s - 200, s + 699] holds no other peak.
    own = chan == region
    others = t1[~own]
    peaks1 = []
    for t in t1[own]:
        s = t // 500 * 500 + 1
        window = s + np.arange(-200, 700)
        if not np.isin(window, others).any():
            peaks1.append(int(t))
    peaks1 = np.array(peaks1, np.int64)

    # 4.1 find_alpha / calcualate_SNR: sensor signals over the whole recording, time-mean
    # removed, powers over the rows within -99..100 of every peak (clamped).
    x_r = nmm[:, region].astype(np.float64)
    sig_eeg = np.outer(x_r, fwd[:, region])
    sig_eeg -= sig_eeg.mean(axis=0)
    dd = np.delete(np.arange(nmm.shape[1]), region)
    noise_eeg = nmm[:, dd] @ fwd[:, dd].T
    noise_eeg -= noise_eeg.mean(axis=0)
    spike_ind = np.clip((peaks1[:, None] + np.arange(-99, 101)).ravel(), 1, n) - 1
    ps = np.sum(sig_eeg[spike_ind] ** 2) / spike_ind.size
    pn = np.sum(noise_eeg[spike_ind] ** 2) / spike_ind.size
    alpha = float(np.sqrt(10 ** (15 / 10) * pn / ps))
    del sig_eeg, noise_eeg

    # 4.2 rescale_nmm_channel, peak by peak in time order, on the mean-removed region trace
    # (the other columns are left as they are: the script's centring and un-centring of
    # them changes nothing but rounding).
    mean = x_r.mean()
    x = x_r - mean
    for t in peaks1:
        sig = x[t - 250 : t + 250].copy()  # 1-based t-249 .. t+250; the peak at position 250

        def small(thre, sig=sig):
            ind = np.flatnonzero(np.abs(sig) < thre) + 1  # 1-based
            return ind[(ind <= 450) & (ind >= 50)]

        thre = 0.1
        small_ind = small(thre)
        while not np.any(small_ind < 250):
            thre += 0.05
            small_ind = small(thre)
        start_sig = small_ind[small_ind < 250][-1]
        min_ind = int(np.argmin(sig[300:400])) + 1 + 301
        while not np.any(small_ind > min_ind):
            thre += 0.05
            small_ind = small(thre)
        end_sig = small_ind[small_ind > min_ind][0]
        sig[start_sig - 1 : end_sig] *= alpha
        x[t - 250 : t + 250] = sig
    scaled = x + mean

    # 4.3 clips: the 500 rows from floor(t/500)*500 + 1 (1-based). The script would fail on a
    # clip running past the end; such peaks are skipped here (as spikeforge does).
    peak_time = []
    for t in peaks1:
        s = t // 500 * 500  # 0-based start
        if s + 500 > n:
            continue
        clip = nmm[s : s + 500].copy()
        clip[:, region] = scaled[s : s + 500]
        peak_time.append(int(t) - 1)
        save_mat(work / "clips" / f"nmm_{len(peak_time)}.mat", {"data": clip})
    return {"clip_dir": work / "clips", "peak_time": peak_time, "alpha": alpha, "messages": []}


def spikeforge_region(
    raw_dir: Path, region: int, iteration: int, fwd: np.ndarray, work: Path
) -> dict:
    """What the extract_clips rule runs."""
    out = extract_region_clips(
        raw_dir, region, [iteration], work / "anatomy.h5",
        {"fsaverage_remap": True}, {"threshold_mv": 8.0, "target_snr_db": 15.0},
        work / "clips", work / "clip_info.json",
    )  # fmt: skip
    return {
        "clip_dir": work / "clips",
        "peak_time": out.peak_time,
        "alpha": out.alpha[0] if out.alpha else float("nan"),
        "messages": out.messages,
    }


IMPLS = {"baseline": baseline_region, "spikeforge": spikeforge_region}


# --------------------------------------------------------------------------------- helpers


def write_bench_anatomy(fwd: np.ndarray, path: Path) -> None:
    """An anatomy file holding the leadfield (the clip stage reads nothing else of it)."""
    n = fwd.shape[1]
    empty = tuple(np.zeros(0, np.int64) for _ in range(n))
    write_anatomy(Anatomy(fwd, empty, np.zeros((n, 3)), np.zeros((n, n))), path)


def read_clips(result: dict) -> list[np.ndarray]:
    n = len(result["peak_time"])
    return [load_mat(result["clip_dir"] / f"nmm_{j}.mat")["data"] for j in range(1, n + 1)]


def load_fwd() -> tuple[np.ndarray, str]:
    if LEADFIELD.is_file():
        fwd = np.asarray(load_mat(LEADFIELD, ["fwd"])["fwd"], dtype=np.float64)
        return fwd, f"leadfield {LEADFIELD.name} {fwd.shape[0]} x {fwd.shape[1]}"
    fwd = np.random.default_rng(SEED).standard_normal((75, 994))
    return fwd, f"RANDOM 75 x 994 leadfield ({LEADFIELD} not found)"


# ------------------------------------------------------------------------------ measurements


def make_recordings(tmp: Path, sizes: dict) -> tuple[Path, Path, float]:
    """The full mock recording, and a short one made of its first chunks (symlinks)."""
    full_dir = tmp / "raw_full"
    t = time.perf_counter()
    write_mock_raw(
        full_dir / f"a{REGION}",
        REGION,
        [ITERATION],
        n_regions=RAW_REGIONS,
        duration_s=sizes["duration_s"],
        chunk_s=CHUNK_S,
        seed=SEED,
    )
    t_gen = time.perf_counter() - t
    paths = raw_chunk_paths(full_dir, REGION, ITERATION)
    n_raw, width = raw_shape(paths)
    if width != RAW_REGIONS or n_raw != round(sizes["duration_s"] * 2000):
        raise RuntimeError(f"mock recording is {n_raw} x {width}")
    short_dir = tmp / "raw_short"
    (short_dir / f"a{REGION}").mkdir(parents=True)
    for path in paths[: round(sizes["rss_short_s"] / CHUNK_S)]:
        (short_dir / f"a{REGION}" / path.name).symlink_to(path)
    size = sum(p.stat().st_size for p in paths)
    log(
        f"recording: {len(paths)} chunks, {n_raw} x {width} float32 ({size / 1e9:.2f} GB), "
        f"written by write_mock_raw in {t_gen:.1f} s (not in the figures); short recording "
        f"= its first {sizes['rss_short_s']:.0f} s"
    )
    return full_dir, short_dir, t_gen


def compare(base: dict, ours: dict) -> tuple[str, bool]:
    same_peaks = base["peak_time"] == ours["peak_time"]
    n = len(base["clips"])
    if same_peaks and n == len(ours["clips"]) and n:
        pairs = zip(base["clips"], ours["clips"], strict=True)
        d_clip = max(float(np.abs(a - b).max()) for a, b in pairs)
    else:
        d_clip = float("inf")
    d_alpha = abs(base["alpha"] - ours["alpha"]) / abs(base["alpha"])
    ok = same_peaks and d_clip <= 1e-5 and d_alpha <= 1e-9
    text = (
        f"check: {n} clips (baseline) / {len(ours['clips'])} (spikeforge), peak times equal "
        f"{same_peaks}, max|d clip| {d_clip:.1e}, alpha {base['alpha']:.6f} vs "
        f"{ours['alpha']:.6f} (rel. diff {d_alpha:.1e}) -> {'OK' if ok else 'MISMATCH'}"
    )
    return text, ok


def measure(impl: str, raw_dir: Path, fwd: np.ndarray, reps: int, sim_s: float, tmp: Path):
    times, cpus, result = [], [], None
    for rep in range(reps):
        work = tmp / f"{impl}_{rep}"
        work.mkdir()
        write_bench_anatomy(fwd, work / "anatomy.h5")
        result = None
        t, c = time.perf_counter(), time.process_time()
        result = IMPLS[impl](raw_dir, REGION, ITERATION, fwd, work)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        times.append(wall)
        cpus.append(cpu / wall)
        result["clips"] = read_clips(result)
        shutil.rmtree(work)
    best = min(times)
    log(
        f"  {impl:10s} {spread(times)} (cpu/wall {'/'.join(f'{c:.0%}' for c in cpus)}) -> "
        f"{sim_s / best:6.1f} simulated s per wall s; {len(result['clips'])} clips"
    )
    return best, result


def rss_child(spec_json: str) -> None:
    spec = json.loads(spec_json)
    fwd, _ = load_fwd()
    n_clips = 0
    if spec["impl"] != "none":
        with tempfile.TemporaryDirectory() as work:
            write_bench_anatomy(fwd, Path(work) / "anatomy.h5")
            impl = IMPLS[spec["impl"]]
            result = impl(Path(spec["raw_dir"]), REGION, ITERATION, fwd, Path(work))
            n_clips = len(result["peak_time"])
    print(json.dumps({"maxrss_kb": peak_rss_kb(), "clips": n_clips}))


def measure_rss(impl: str, raw_dir: Path) -> tuple[float, int]:
    spec = {"impl": impl, "raw_dir": str(raw_dir)}
    proc = subprocess.run(
        [sys.executable, __file__, "--rss-job", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["maxrss_kb"] / 1024.0, result["clips"]


def measure_tvb(tmp: Path, sizes: dict) -> tuple[str, float | None]:
    """Simulated s per wall s of simulate_region on the 998-region connectivity: whole call
    (TVB set-up included) and steady state (the last chunk alone, from the chunk files'
    modification times)."""
    try:
        from spikeforge.eeg import tvb as tvb_simulation
    except Exception as exc:  # any failure means "not measured"
        return f"TVB: not measured (spikeforge.eeg.tvb: {type(exc).__name__}: {exc})", None
    if not CONNECTIVITY.is_file():
        return f"TVB: not measured ({CONNECTIVITY} not found)", None
    try:
        t = time.perf_counter()
        importer = getattr(tvb_simulation, "_import_tvb", None)
        if importer is not None:
            importer()
        t_import = time.perf_counter() - t
        out_dir = tmp / "tvb"
        t, c = time.perf_counter(), time.process_time()
        paths = tvb_simulation.simulate_region(
            CONNECTIVITY,
            spiking_region=REGION,
            iteration=ITERATION,
            out_dir=out_dir,
            duration_s=sizes["tvb_s"],
            chunk_s=sizes["tvb_chunk_s"],
        )
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    except Exception as exc:  # any failure means "not measured"
        return f"TVB: not measured ({type(exc).__name__}: {exc})", None
    n_regions = raw_shape(paths)[1]
    rate_call = sizes["tvb_s"] / wall
    text = (
        f"TVB ({n_regions} regions, simulate_region {sizes['tvb_s']:g} s in "
        f"{len(paths)} chunks): import {t_import:.1f} s; call {wall:.1f} s (cpu/wall "
        f"{cpu / wall:.0%}) -> {rate_call:.4f} simulated s per wall s"
    )
    rate = rate_call
    if len(paths) >= 2:
        step = paths[-1].stat().st_mtime - paths[-2].stat().st_mtime
        if step > 0:
            rate = sizes["tvb_chunk_s"] / step
            text += (
                f"; steady state (last chunk) {step:.1f} s -> {rate:.4f} "
                f"({1 / rate:.0f}x slower than real time)"
            )
    days = FULL_SET_RUNS * FULL_SET_SECONDS / rate / 86400
    text += (
        f"\n  full set (994 regions x 3 iterations x 200 s) at that rate: {days:,.0f} CPU-days "
        f"({days / 2:,.0f} days on this machine's 2 cores)"
    )
    return text, rate


# ------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 s recording, fewer repetitions")
    parser.add_argument("--rss-job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_job:
        rss_child(args.rss_job)
        return

    sizes = QUICK if args.quick else FULL
    reps, sim_s = sizes["reps"], sizes["duration_s"]
    t_start = time.perf_counter()
    load_start = loadavg()
    log(f"spikeforge clip benchmark ({'quick' if args.quick else 'full'}; best of {reps})")
    fwd, fwd_source = load_fwd()
    others = {}
    with tempfile.TemporaryDirectory(prefix="spikeforge-clips-") as tmp_name:
        tmp = Path(tmp_name)
        log(f"inputs: {fwd_source}; region {REGION}, iteration {ITERATION}, fsaverage remap")
        meter = OtherLoad()
        full_dir, short_dir, _ = make_recordings(tmp, sizes)
        others["generation"] = meter.cores()

        log(f"1-2. one region, {sim_s:.0f} s recording, one process")
        meter = OtherLoad()
        base_s, base = measure("baseline", full_dir, fwd, reps, sim_s, tmp)
        sf_s, ours = measure("spikeforge", full_dir, fwd, reps, sim_s, tmp)
        others["clips"] = meter.cores()
        check, _ = compare(base, ours)
        log(check)
        for message in ours["messages"]:
            log(f"  spikeforge: {message}")

        log("3. peak RSS (VmHWM), fresh subprocess each")
        meter = OtherLoad()
        floor, _ = measure_rss("none", full_dir)
        rss = {}
        for impl in ("baseline", "spikeforge"):
            for label, folder in (("short", short_dir), ("full", full_dir)):
                rss[impl, label] = measure_rss(impl, folder)
        others["rss"] = meter.cores()
        log(
            f"  floor {floor:.0f} MB; "
            + "; ".join(f"{i} {lab} {v[0]:.0f} MB ({v[1]} clips)" for (i, lab), v in rss.items())
        )

        log("4. TVB simulation")
        meter = OtherLoad()
        tvb_text, tvb_rate = measure_tvb(tmp, sizes)
        if tvb_rate is not None:
            others["tvb"] = meter.cores()

    short_s, full_s = sizes["rss_short_s"], sim_s
    rows = [
        (f"one region, {sim_s:.0f} s recording [wall s]", base_s, sf_s, base_s / sf_s),
        ("throughput [simulated s / wall s / core]", sim_s / base_s, sim_s / sf_s, base_s / sf_s),
        (
            f"peak RSS, {short_s:.0f} s recording [MB]",
            rss["baseline", "short"][0],
            rss["spikeforge", "short"][0],
            rss["spikeforge", "short"][0] / rss["baseline", "short"][0],
        ),
        (
            f"peak RSS, {full_s:.0f} s recording [MB]",
            rss["baseline", "full"][0],
            rss["spikeforge", "full"][0],
            rss["spikeforge", "full"][0] / rss["baseline", "full"][0],
        ),
    ]
    width = max(len(r[0]) for r in rows)
    log("")
    log(f"{'measure':<{width}} | {'baseline':>9} | {'spikeforge':>10} | {'ratio':>7}")
    log(f"{'-' * width}-+-{'-' * 9}-+-{'-' * 10}-+-{'-' * 7}")
    for name, base_v, ours_v, ratio in rows:
        fmt = ".2f" if base_v < 100 and ours_v < 100 else ".0f"
        log(f"{name:<{width}} | {base_v:>9{fmt}} | {ours_v:>10{fmt}} | {ratio:>6.2f}x")
    log("(ratio: baseline / spikeforge time for the first two rows, spikeforge / baseline RSS)")
    log("")
    log(check)
    for impl in ("baseline", "spikeforge"):
        (r_short, c_short), (r_full, c_full) = rss[impl, "short"], rss[impl, "full"]
        growth = r_full - r_short
        if impl == "baseline":
            detail = f"{c_short} -> {c_full} clips; the whole recording is held in memory"
        else:
            detail = f"{c_short} -> {c_full} clips, each written to its file when finished"
        log(
            f"memory {impl}: {short_s:.0f} s -> {full_s:.0f} s recording "
            f"{r_short:.0f} -> {r_full:.0f} MB ({growth:+.0f} MB; {detail}); "
            f"floor (imports + leadfield) {floor:.0f} MB"
        )
    clip_hours = FULL_SET_RUNS * sf_s / 3600 * (FULL_SET_SECONDS / sim_s)
    log(
        f"full set clips (994 x 3 recordings of 200 s) at this rate: {clip_hours:.1f} CPU-hours "
        f"spikeforge, {clip_hours * base_s / sf_s:.1f} baseline"
    )
    log(tvb_text)
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    log(
        f"machine: {os.cpu_count()} cores ({affinity} usable), {cpu_model()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, Python {platform.python_version()}"
    )
    log(
        "noise: cores busy with other processes during "
        + ", ".join(f"{k} {v:.2f}" for k, v in others.items())
        + f"; loadavg {load_start} at start, {loadavg()} at end; "
        f"total {time.perf_counter() - t_start:.0f} s"
    )


if __name__ == "__main__":
    main()

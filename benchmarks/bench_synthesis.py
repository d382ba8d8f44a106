#!/usr/bin/env python
"""Throughput, memory and dry-run benchmark of spikeforge's synthesis chain.

Run from anywhere:  python benchmarks/bench_synthesis.py [--quick] [--profile]

Every figure is printed beside a baseline measured in the same run on the same inputs:

1. baseline: a straightforward per-sample implementation of docs/eeg-chain.md §6 (dense
   500 x R source, the full clip read from the library for every source, fwd @ src.T, white
   noise from a per-sample numpy generator, normalisation, label source), writing the same
   sparse content as spikeforge (eeg, labels, patch-column time courses) into one
   uncompressed HDF5 file with preallocated datasets;
2. spikeforge: `synthesize` streamed into `write_hdf5_shard` (compression none / gzip / lzf);
3. both with 2 worker processes, each writing its own shard of half the samples (as
   `snakemake --cores 2` runs two synthesize_shard jobs);
4. `snakemake -n` at DeepSIF's scale (994 regions, 190,848 + 11,928 samples, 203 shard jobs)
   beside a dry run of the repository's demo config;
5. peak RSS of one shard job (fresh subprocess) for two shard sizes beside the job's floor
   (inputs loaded, nothing synthesised).

Times are wall clock, best of N repetitions; the spread is printed too, since other processes
may share the machine.
"""

# ruff: noqa: E402  (the thread settings below must precede the numpy import)
import os

from benchlib import one_blas_thread

one_blas_thread()  # before numpy is imported

import argparse
import cProfile
import io
import json
import multiprocessing
import platform
import pstats
import re
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import h5py
import numpy as np
from benchlib import OtherLoad, cpu_model, loadavg, log, peak_rss_kb, spread

from spikeforge.core.seeding import STREAM_MOCK, STREAM_NOISE, rng, seed_sequence
from spikeforge.eeg.anatomy import load_anatomy, read_anatomy, write_anatomy
from spikeforge.eeg.export.hdf5 import synthesize_shard
from spikeforge.eeg.library import Library, build_library, mock_clip
from spikeforge.eeg.plan import PATCH_WIDTH, Plan, PlanConfig, generate_plan, read_plan, write_plan
from spikeforge.io.mat import save_mat

REPO = Path(__file__).resolve().parents[1]
ANATOMY_DIR = REPO.parent / "shared" / "data" / "deepsif" / "anatomy"
ANATOMY_FILES = {
    "leadfield": "leadfield_75_20k.mat",
    "region_mapping": "fs_cortex_20k_region_mapping.mat",
    "centres": "fs_cortex_20k_inflated.mat",
}
SEED = 20261121
SPLIT = "train"
LABEL_PAD = -1

# The baseline runs every `baseline_stride`-th plan row (all regions, a tenth of the time);
# the compressed variants run the first `compress_samples` rows.
FULL = {
    "regions": 40,
    "clips": 2,
    "samples": 4000,
    "per_region": 50,
    "baseline_stride": 10,
    "compress_samples": 2000,
    "reps": 3,
    "rss_sizes": (1000, 4000),
    "dry_reps": 2,
}
QUICK = {
    "regions": 12,
    "clips": 2,
    "samples": 1000,
    "per_region": 50,
    "baseline_stride": 10,
    "compress_samples": 500,
    "reps": 2,
    "rss_sizes": (250, 1000),
    "dry_reps": 1,
}


# --------------------------------------------------------------------------- implementations


def baseline_job(fwd, library, plan, first_index, seed, split, out_path, add_noise=True):
    """docs/eeg-chain.md §6, one sample at a time, dense, written into one HDF5 file."""
    n, n_sources = plan.n_samples, plan.n_sources
    n_channels, n_regions = fwd.shape
    n_time = library.n_time
    unions = [
        np.unique(np.concatenate([plan.patch_of(i, k) for k in range(n_sources)])) for i in range(n)
    ]
    ptr = np.concatenate([[0], np.cumsum([u.size for u in unions])]).astype(np.int64)
    with h5py.File(out_path, "w") as out:
        eeg_ds = out.create_dataset("eeg", (n, n_time, n_channels), np.float32)
        labels_ds = out.create_dataset("labels", (n, n_sources, PATCH_WIDTH), np.int32)
        out["snr"] = plan.sensor_snr.astype(np.float64)
        out["index"] = np.arange(first_index, first_index + n, dtype=np.int64)
        out["source_ptr"] = ptr
        out["source_regions"] = np.concatenate(unions).astype(np.int32)
        courses_ds = out.create_dataset("source_timecourses", (int(ptr[-1]), n_time), np.float32)
        for i in range(n):
            src = np.zeros((n_time, n_regions))
            labels = np.full((n_sources, PATCH_WIDTH), LABEL_PAD, np.int32)
            for k in range(n_sources):
                patch = plan.patch_of(i, k)
                clip = library.clip(int(plan.clip[i, k])).astype(np.float64)
                w = clip[:, patch[0]]
                w = w / w.max() * plan.scale[i, k]
                clip[:, patch] = np.outer(w, plan.weights_of(i, k))
                src += clip
                labels[k, : patch.size] = patch
            eeg = fwd @ src.T
            if add_noise:
                gen = np.random.default_rng(
                    seed_sequence(seed, split, first_index + i, STREAM_NOISE)
                )
                power = np.sum(eeg**2, axis=1) / n_time
                sigma = np.sqrt(10.0 ** (-plan.sensor_snr[i] / 10.0) * power / 2.0)
                eeg = eeg + sigma[:, None] * gen.standard_normal(eeg.shape)
            x = eeg.T
            x = x - x.mean(axis=0, keepdims=True)
            x = x - x.mean(axis=1, keepdims=True)
            x = x / np.abs(x).max()
            union = unions[i]
            label = np.zeros_like(src)
            label[:, union] = src[:, union]
            label /= label.max()
            eeg_ds[i] = x.astype(np.float32)
            labels_ds[i] = labels
            courses_ds[ptr[i] : ptr[i + 1]] = label[:, union].T.astype(np.float32)


def spikeforge_job(
    fwd, library, plan, first_index, seed, split, out_path, add_noise=True, compression="none"
):
    """What the synthesize_shard rule runs."""
    synthesize_shard(
        out_path,
        fwd,
        library,
        plan,
        first_index,
        seed,
        split,
        add_noise=add_noise,
        label_pad=LABEL_PAD,
        compression=compression,
    )


def subset_plan(plan: Plan, rows: np.ndarray) -> Plan:
    return Plan(
        plan.centre[rows],
        plan.patch[rows],
        plan.patch_size[rows],
        plan.mag_change[rows],
        plan.clip[rows],
        plan.scale_ratios[rows],
        plan.scale[rows],
        plan.sensor_snr[rows],
        dict(plan.attrs),
    )


def run_job(spec: dict) -> dict:
    """One shard job as the workflow runs it: load anatomy + plan range, open the library,
    synthesise and write. Returns the time of the synthesis + write part and of the whole."""
    t0 = time.perf_counter()
    fwd = read_anatomy(spec["anatomy"]).leadfield
    plan = read_plan(spec["plan"], spec["start"], spec["stop"])
    if spec.get("stride", 1) > 1:
        plan = subset_plan(plan, np.arange(0, plan.n_samples, spec["stride"]))
    with Library(spec["library"]) as library:
        t1, c1 = time.perf_counter(), time.process_time()
        if spec["impl"] == "baseline":
            baseline_job(fwd, library, plan, spec["start"], SEED, SPLIT, spec["out"])
        elif spec["impl"] == "spikeforge":
            spikeforge_job(
                fwd,
                library,
                plan,
                spec["start"],
                SEED,
                SPLIT,
                spec["out"],
                compression=spec.get("compression", "none"),
            )
        elif spec["impl"] != "none":  # "none": inputs only (memory floor)
            raise ValueError(spec["impl"])
        t2, c2 = time.perf_counter(), time.process_time()
    return {"n": plan.n_samples, "core_s": t2 - t1, "total_s": t2 - t0, "cpu_s": c2 - c1}


def _warm(_: int) -> int:
    return os.getpid()


# --------------------------------------------------------------------------------- helpers


def best_of(reps: int, fn) -> tuple[float, list[float]]:
    times = [fn() for _ in range(reps)]
    return min(times), times


def setup_inputs(tmp: Path, sizes: dict) -> dict:
    """Anatomy (real if present, else demo), mock clips for a region subset, library, plan."""
    real = all((ANATOMY_DIR / name).is_file() for name in ANATOMY_FILES.values())
    if real:
        files = {key: ANATOMY_DIR / name for key, name in ANATOMY_FILES.items()}
        source = f"DeepSIF anatomy from {ANATOMY_DIR}"
    else:
        from spikeforge.eeg.demo_anatomy import write_demo_anatomy

        files = {key: tmp / "anatomy" / f"{key}.mat" for key in ANATOMY_FILES}
        write_demo_anatomy(
            files["leadfield"],
            files["region_mapping"],
            files["centres"],
            n_regions=994,
            n_channels=75,
            seed=0,
        )
        source = f"DEMO anatomy, 994 regions (real files not found in {ANATOMY_DIR})"
    anatomy = load_anatomy(files["leadfield"], files["region_mapping"], files["centres"])
    anatomy_h5 = tmp / "anatomy.h5"
    write_anatomy(anatomy, anatomy_h5)
    n_regions = anatomy.n_regions

    t = time.perf_counter()
    regions = np.unique(np.linspace(0, n_regions - 1, sizes["regions"]).round().astype(int))
    clip_dir = tmp / "nmm_spikes"
    for region in regions:
        for j in range(1, sizes["clips"] + 1):
            gen = rng(SEED, "mock_clips", int(region), j, STREAM_MOCK)
            save_mat(
                clip_dir / f"a{region}" / f"nmm_{j}.mat",
                {"data": mock_clip(n_regions, int(region), gen)},
            )
    library_h5 = tmp / "library.h5"
    build_library(clip_dir, anatomy.leadfield, library_h5)
    t_lib = time.perf_counter() - t

    t = time.perf_counter()
    cfg = PlanConfig(
        n_samples=sizes["samples"],
        samples_per_region=sizes["per_region"],
        centre_regions=tuple(int(r) for r in regions),
    )
    with Library(library_h5) as library:
        plan = generate_plan(anatomy, library, cfg, SEED, SPLIT)
    plan_h5 = tmp / "plan.h5"
    write_plan(plan, plan_h5)
    t_plan = time.perf_counter() - t
    log(f"inputs: {source}; leadfield {anatomy.n_channels} x {n_regions}")
    log(
        f"  clips: {regions.size} regions x {sizes['clips']} (library {t_lib:.1f} s); "
        f"plan: {plan.n_samples} samples x {plan.n_sources} sources ({t_plan:.1f} s); "
        f"mean patch size {plan.patch_size.mean():.1f}"
    )
    return {
        "files": files,
        "real": real,
        "anatomy": anatomy_h5,
        "library": library_h5,
        "plan": plan_h5,
        "plan_obj": plan,
        "fwd": anatomy.leadfield,
        "regions": regions,
    }


def check_equivalence(inp: dict, tmp: Path, n: int = 32) -> str:
    """The baseline computes what spikeforge computes (noise off: the generators differ)."""
    plan = subset_plan(
        inp["plan_obj"], np.arange(0, inp["plan_obj"].n_samples, inp["plan_obj"].n_samples // n)[:n]
    )
    a, b = tmp / "check_base.h5", tmp / "check_sf.h5"
    with Library(inp["library"]) as library:
        baseline_job(inp["fwd"], library, plan, 0, SEED, SPLIT, a, add_noise=False)
        spikeforge_job(inp["fwd"], library, plan, 0, SEED, SPLIT, b, add_noise=False)
    with h5py.File(a) as fa, h5py.File(b) as fb:
        d_eeg = float(np.abs(fa["eeg"][()] - fb["eeg"][()]).max())
        same_regions = np.array_equal(fa["source_regions"][()], fb["source_regions"][()])
        same_labels = np.array_equal(fa["labels"][()], fb["labels"][()])
        d_src = float(np.abs(fa["source_timecourses"][()] - fb["source_timecourses"][()]).max())
    a.unlink()
    b.unlink()
    ok = d_eeg < 1e-4 and d_src < 1e-4 and same_regions and same_labels
    return (
        f"check (noise off, {plan.n_samples} samples): baseline vs spikeforge max|d eeg| "
        f"{d_eeg:.1e}, max|d source| {d_src:.1e}, labels/regions equal "
        f"{same_labels and same_regions} -> {'OK' if ok else 'MISMATCH'}"
    )


# ------------------------------------------------------------------------------ measurements


def _spec(inp, impl, start, stop, out, stride=1, compression="none"):
    return {
        "impl": impl,
        "anatomy": str(inp["anatomy"]),
        "library": str(inp["library"]),
        "plan": str(inp["plan"]),
        "start": start,
        "stop": stop,
        "stride": stride,
        "out": str(out),
        "compression": compression,
    }


def measure_single(inp, tmp, impl, reps, n, stride=1, compression="none"):
    out = tmp / f"single_{impl}_{compression}.h5"
    spec = _spec(inp, impl, 0, n, out, stride, compression)
    info = {}

    def once():
        result = run_job(spec)
        info["n"] = result["n"]
        info.setdefault("cpu", []).append(result["cpu_s"] / result["core_s"])
        with h5py.File(out) as f:
            info["eeg_ratio"] = f["eeg"].id.get_storage_size() / f["eeg"].nbytes
            src = f["source_timecourses"]
            info["src_ratio"] = src.id.get_storage_size() / max(src.nbytes, 1)
        info["bytes_per_sample"] = out.stat().st_size / result["n"]
        out.unlink()
        return result["core_s"]

    best, times = best_of(reps, once)
    rate = info["n"] / best
    cpu = "/".join(f"{c:.0%}" for c in info["cpu"])
    log(
        f"  {impl:10s} 1 proc  {compression:4s} {info['n']:5d} samples: {spread(times)} "
        f"(cpu/wall {cpu}) -> {rate:7.1f} samples/s; {info['bytes_per_sample'] / 1e3:.0f} "
        f"kB/sample, storage/raw eeg {info['eeg_ratio']:.3f} sources {info['src_ratio']:.3f}"
    )
    return rate, info


def measure_parallel(inp, tmp, impl, reps, pool, n, stride=1):
    half = n // 2
    specs = [
        _spec(inp, impl, a, b, tmp / f"par_{impl}_{a}.h5", stride)
        for a, b in ((0, half), (half, n))
    ]
    info = {}

    def once():
        t = time.perf_counter()
        results = pool.map(run_job, specs, chunksize=1)
        wall = time.perf_counter() - t
        info["n"] = sum(r["n"] for r in results)
        info.setdefault("cpu", []).append(sum(r["cpu_s"] for r in results) / wall)
        for s in specs:
            Path(s["out"]).unlink()
        return wall

    best, times = best_of(reps, once)
    rate = info["n"] / best
    cpu = "/".join(f"{c:.2f}" for c in info["cpu"])
    log(
        f"  {impl:10s} 2 procs {info['n'] // 2} samples each: wall {spread(times)} "
        f"(cores busy {cpu} of 2) -> {rate:7.1f} samples/s aggregate"
    )
    return rate


def measure_rss(inp, tmp, impl, n):
    spec = _spec(inp, impl, 0, n, tmp / f"rss_{impl}_{n}.h5")
    proc = subprocess.run(
        [sys.executable, __file__, "--rss-job", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    Path(spec["out"]).unlink(missing_ok=True)
    return result["maxrss_kb"] / 1024.0


def write_dry_config(inp: dict, tmp: Path) -> Path:
    folder = tmp / "dry"
    (folder / "empty_clips").mkdir(parents=True, exist_ok=True)
    config = {
        # DeepSIF's scale writes more than the default limit of an accidental run.
        "max_output_gb": 1000,
        "check_free_disk": False,
        "eeg": {
            "enabled": True,
            "anatomy": {
                "source": "files",
                "files": {key: str(path) for key, path in inp["files"].items()},
            },
            "spike_library": {"source": "folder", "folder": str(folder / "empty_clips")},
            "splits": {"train": {"samples_per_region": 192}, "test": {"samples_per_region": 12}},
            "synthesis": {"samples_per_shard": 1000},
            "export": {"mat": {"enabled": False}, "deepsif": {"enabled": True}},
        },
    }
    path = folder / "config.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def dry_run(workdir: Path, configfile: Path, quiet: list[str]) -> tuple[float, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(configfile),
        "--cores",
        "2",
        "--quiet",
        *quiet,
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"dry run failed ({' '.join(cmd)}):\n{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout + proc.stderr


def job_counts(output: str) -> dict[str, int]:
    counts = {}
    for line in output.split("Job stats:", 1)[-1].splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match:
            counts[match.group(1)] = int(match.group(2))
    return counts


def measure_dry_run(inp, tmp, reps):
    cfg = write_dry_config(inp, tmp)
    big, big_times = best_of(reps, lambda: dry_run(tmp / "dry" / "work", cfg, [])[0])
    demo_cfg = REPO / "config" / "config.yaml"
    demo, demo_times = best_of(reps, lambda: dry_run(tmp / "dry" / "demo", demo_cfg, [])[0])
    # Bare --quiet prints no job table in Snakemake 9; count with `--quiet rules` (one extra run).
    t_rules, out = dry_run(tmp / "dry" / "work", cfg, ["rules"])
    counts = job_counts(out)
    _, out_demo = dry_run(tmp / "dry" / "demo", demo_cfg, ["rules"])
    demo_counts = job_counts(out_demo)
    log(
        f"  dry run DeepSIF scale: {spread(big_times)}; --quiet rules {t_rules:.2f} s; jobs "
        f"{counts.get('total')} ({counts.get('synthesize_shard')} synthesize_shard)"
    )
    log(
        f"  dry run demo config  : {spread(demo_times)}; jobs {demo_counts.get('total')} "
        f"({demo_counts.get('synthesize_shard')} synthesize_shard)"
    )
    return big, demo, counts, demo_counts


def primitive_costs(inp) -> str:
    """Per-sample costs of the steps every implementation of section 6 pays (C x T arrays).

    cProfile cannot split _synthesize_block's own time (operators and Cython generator
    methods are not profiled separately), so the fixed per-sample steps are timed alone.
    """
    from spikeforge.eeg.synthesis import noise_rng, normalise_eeg

    fwd = inp["fwd"]
    n_channels, n_regions = fwd.shape
    eeg = np.random.default_rng(0).standard_normal((n_channels, 500))
    src = np.random.default_rng(1).standard_normal((500, n_regions))
    out = np.empty((500, n_channels), np.float32)

    def per_call(fn, number):
        return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e3

    def store():
        out[...] = normalise_eeg(eeg)

    costs = {
        "noise: noise_rng() + standard_normal(C x T, float32)": per_call(
            lambda: noise_rng(SEED, SPLIT, 7).standard_normal(eeg.shape, dtype=np.float32), 200
        ),
        "normalise_eeg + store (C x T)": per_call(store, 200),
        "baseline: dense fwd @ src.T (C x R x T)": per_call(lambda: fwd @ src.T, 20),
        "baseline: PCG64 standard_normal(C x T, float64)": per_call(
            lambda: np.random.default_rng(7).standard_normal(eeg.shape), 200
        ),
    }
    floor = (
        costs["noise: noise_rng() + standard_normal(C x T, float32)"]
        + costs["normalise_eeg + store (C x T)"]
    )
    lines = [f"  {name:<55} {ms:6.3f} ms/sample" for name, ms in costs.items()]
    lines.append(f"  noise + normalise alone cap one process at {1e3 / floor:.0f} samples/s")
    return "fixed per-sample costs (best of 5):\n" + "\n".join(lines)


def profile_spikeforge(inp, tmp, top=15) -> str:
    """cProfile of the spikeforge path; matmuls and array arithmetic are operators, so their
    time is the own time of the function that runs them (_synthesize_block)."""
    out = tmp / "profile.h5"
    with Library(inp["library"]) as library:
        profiler = cProfile.Profile()
        profiler.enable()
        spikeforge_job(inp["fwd"], library, inp["plan_obj"], 0, SEED, SPLIT, out)
        profiler.disable()
    out.unlink()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    body = text.getvalue()
    body = body[body.index("   ncalls") :] if "   ncalls" in body else body
    return (
        f"cProfile of spikeforge (synthesize + write_hdf5_shard, {inp['plan_obj'].n_samples} "
        f"samples, {stats.total_tt:.2f} s under the profiler), top {top} by own time:\n{body}"
    )


# ------------------------------------------------------------------------------------- main


def rss_child(spec_json: str) -> None:
    run_job(json.loads(spec_json))
    print(json.dumps({"maxrss_kb": peak_rss_kb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of the spikeforge path"
    )
    parser.add_argument("--rss-job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_job:
        rss_child(args.rss_job)
        return

    sizes = QUICK if args.quick else FULL
    reps = sizes["reps"]
    t_start = time.perf_counter()
    load_start = loadavg()
    log(f"spikeforge synthesis benchmark ({'quick' if args.quick else 'full'}; best of {reps})")
    with tempfile.TemporaryDirectory(prefix="spikeforge-bench-") as tmp_name:
        tmp = Path(tmp_name)
        inp = setup_inputs(tmp, sizes)
        log(check_equivalence(inp, tmp))

        n, stride, n_comp = sizes["samples"], sizes["baseline_stride"], sizes["compress_samples"]
        others = {}

        log("1-2. synthesis + HDF5 export, one process")
        meter = OtherLoad()
        base_rate, base_info = measure_single(inp, tmp, "baseline", reps, n, stride=stride)
        sf_rate, sf_info = measure_single(inp, tmp, "spikeforge", reps, n)
        lzf_rate, lzf_info = measure_single(inp, tmp, "spikeforge", reps, n_comp, compression="lzf")
        gz_rate, gz_info = measure_single(inp, tmp, "spikeforge", reps, n_comp, compression="gzip")
        others["1 proc"] = meter.cores()

        log("3. two worker processes, one shard each")
        meter = OtherLoad()
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            pool.map(_warm, range(2), chunksize=1)
            base_par = measure_parallel(inp, tmp, "baseline", reps, pool, n, stride=stride)
            sf_par = measure_parallel(inp, tmp, "spikeforge", reps, pool, n)
        others["2 procs"] = meter.cores()

        log("4. snakemake dry run")
        meter = OtherLoad()
        dry_big, dry_demo, counts, _ = measure_dry_run(inp, tmp, sizes["dry_reps"])
        others["dry run"] = meter.cores()

        log("5. peak RSS (VmHWM) of one shard job, fresh subprocess each")
        n_small, n_big = sizes["rss_sizes"]
        floor = measure_rss(inp, tmp, "none", n_big)
        rss = {size: measure_rss(inp, tmp, "spikeforge", size) for size in (n_small, n_big)}
        log(
            f"  floor (imports + inputs, no synthesis) {floor:.0f} MB; "
            + "; ".join(f"{size} samples {v:.0f} MB" for size, v in rss.items())
        )

        profile = ""
        if args.profile:
            profile = primitive_costs(inp) + "\n" + profile_spikeforge(inp, tmp)

    rows = [
        ("synthesis + HDF5 (none), 1 proc [samples/s]", base_rate, sf_rate, sf_rate / base_rate),
        ("synthesis + HDF5 (lzf), 1 proc [samples/s]", base_rate, lzf_rate, lzf_rate / base_rate),
        ("synthesis + HDF5 (gzip-1), 1 proc [samples/s]", base_rate, gz_rate, gz_rate / base_rate),
        (
            "  eeg storage/raw, lzf (base: none)",
            sf_info["eeg_ratio"],
            lzf_info["eeg_ratio"],
            lzf_info["eeg_ratio"] / sf_info["eeg_ratio"],
        ),
        (
            "  eeg storage/raw, gzip-1 (base: none)",
            sf_info["eeg_ratio"],
            gz_info["eeg_ratio"],
            gz_info["eeg_ratio"] / sf_info["eeg_ratio"],
        ),
        ("2 procs, aggregate [samples/s]", base_par, sf_par, sf_par / base_par),
        ("  2-proc scaling vs own 1 proc", base_par / base_rate, sf_par / sf_rate, None),
        ("dry run [s] (base: demo config)", dry_demo, dry_big, dry_big / dry_demo),
        (
            f"peak RSS, {n_small}-sample shard [MB] (base: floor)",
            floor,
            rss[n_small],
            rss[n_small] / floor,
        ),
        (
            f"peak RSS, {n_big}-sample shard [MB] (base: floor)",
            floor,
            rss[n_big],
            rss[n_big] / floor,
        ),
    ]
    width = max(len(r[0]) for r in rows)
    log("")
    log(f"{'measure':<{width}} | {'baseline':>9} | {'spikeforge':>10} | {'ratio':>7}")
    log(f"{'-' * width}-+-{'-' * 9}-+-{'-' * 10}-+-{'-' * 7}")
    for name, base, ours, ratio in rows:
        ratio_s = f"{ratio:6.2f}x" if ratio is not None else ""
        fmt = ".3f" if base < 10 and ours < 10 else ".1f"
        log(f"{name:<{width}} | {base:>9{fmt}} | {ours:>10{fmt}} | {ratio_s:>7}")
    speedup = sf_rate / base_rate
    log("")
    log(
        f"targets: speed-up >= 15x: {speedup:.1f}x {'PASS' if speedup >= 15 else 'MISS'}; "
        f">= 1000 samples/s on 2 cores: {sf_par:.0f} {'PASS' if sf_par >= 1000 else 'MISS'}; "
        f"dry run < 10 s: {dry_big:.1f} s {'PASS' if dry_big < 10 else 'MISS'} "
        f"({counts.get('total')} jobs, {counts.get('synthesize_shard')} synthesize_shard); "
        f"RSS growth {n_small}->{n_big} samples: {rss[n_big] - rss[n_small]:+.0f} MB"
    )
    log(
        f"output size: {sf_info['bytes_per_sample'] / 1e3:.0f} kB/sample uncompressed -> "
        f"~{sf_info['bytes_per_sample'] * 190_848 / 1e9:.0f} GB for DeepSIF's 190,848 "
        "train samples"
    )
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    log(
        f"machine: {os.cpu_count()} cores ({affinity} usable), {cpu_model()}, "
        f"numpy {np.__version__}, h5py {h5py.__version__}, Python {platform.python_version()}"
    )
    log(
        "noise: cores busy with other processes during "
        + ", ".join(f"{k} {v:.2f}" for k, v in others.items())
        + f"; loadavg {load_start} at start, {loadavg()} at end; "
        f"total {time.perf_counter() - t_start:.0f} s"
    )
    if profile:
        log("")
        log(profile.rstrip())


if __name__ == "__main__":
    main()

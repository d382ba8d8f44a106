#!/usr/bin/env python
"""Throughput and memory benchmark of spikeforge's paired-recording conversion (one SPE-1 cell).

Run from anywhere:  python benchmarks/bench_paired.py [--quick]

A mock SPE-1 cell (write_mock_spe1_cell: 384 channels, 30 kHz int16) with a 30 s analysis
window after a 10 s burn-in (--quick: 10 s window). Every figure is printed beside a baseline
measured in the same run on the same files:

1. workflow per cell: convert_cell, the call of the convert_cell rule (one streaming pass that
   filters, references, labels bad channels as the demo config does: coherence+psd, 20
   random chunks, sums the template and writes the Arrow files), n_jobs=2 and 1;
2. seed algorithm (baseline): the seed converter's algorithm re-implemented here: lazy
   BinaryRecordingExtractor -> frame_slice -> bandpass 300-3000 Hz -> global median CMR,
   detect_bad_channels on the bandpassed chain (SpikeInterface defaults), one get_traces per
   spike for the template, HuggingFace Dataset.from_generator(writer_batch_size=1) +
   save_to_disk per split (HF cache in a temporary folder, emptied before each repetition);
3. one streaming pass (the floor): read + bandpass + CMR saved to a binary folder,
   chunk_duration="1s", n_jobs=2 and 1;
4. peak RSS (VmHWM) of the workflow per cell in a fresh subprocess, short vs long window (the
   long cell is the short cell's files repeated end to end).

Times are wall clock, best of N; the inputs are read from the page cache (written just
before). Other processes may share the machine: the cores they kept busy are printed.
"""

# ruff: noqa: E402  (the thread settings below must precede the numpy import)
import os

from benchlib import one_blas_thread

one_blas_thread()  # before numpy is imported

import atexit
import shutil
import tempfile

# The seed's HuggingFace cache goes to a temporary folder (set before datasets is imported).
_HF_CACHE = tempfile.mkdtemp(prefix="spikeforge-bench-hf-")
os.environ["HF_DATASETS_CACHE"] = _HF_CACHE
atexit.register(shutil.rmtree, _HF_CACHE, True)

import argparse
import gc
import json
import logging
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy
import scipy.signal
import spikeinterface
import spikeinterface.core as sc
import spikeinterface.preprocessing as spre
from benchlib import OtherLoad, cpu_model, loadavg, log, peak_rss_kb, spread

from spikeforge.io.hf_datasets import dataset_dict_json
from spikeforge.paired import spe1
from spikeforge.paired.cell import CellSettings, convert_cell
from spikeforge.paired.mock import write_mock_spe1_cell
from spikeforge.workflow.config import fill_defaults, load_schema
from spikeforge.workflow.layout import PairedLayout, RunFolders

CELL = "bench_c1"
SEED = 0
SKIP_S = 10.0
SEGMENT_S = 3.0
TRAIN_FRACTION = 0.8
MS_BEFORE, MS_AFTER, MIN_SPIKES = 1.0, 2.0, 2
BAD_CHANNELS = {"method": "coherence+psd", "num_random_chunks": 20}  # the demo config
FULL = {"window_s": 30.0, "rss_short_s": 30.0, "rss_long_s": 120.0, "reps": 2}
QUICK = {"window_s": 10.0, "rss_short_s": 10.0, "rss_long_s": 30.0, "reps": 2}

# Seed constants.
SEED_NPX_RATE = 30_000.0
SEED_PATCH_RATE = 50_023.0


# ------------------------------------------------------------------------ workflow per cell


def workflow_settings(root: Path, cell: str, window_s: float) -> CellSettings:
    """The settings the workflow computes for this cell from a user's SPE-1 config."""
    config = {
        "seed": SEED,
        "paired": {
            "enabled": True,
            "source": "spe1",
            "cells": [cell],
            "spe1": {
                "recordings": str(root / "Recordings"),
                "chan_map": str(root / "chanMap.mat"),
                "summary": str(root / "Data Summary.xlsx"),
            },
            "window": {"skip_s": SKIP_S, "duration_s": window_s},
            "segment_s": SEGMENT_S,
            "train_fraction": TRAIN_FRACTION,
            "template": {"ms_before": MS_BEFORE, "ms_after": MS_AFTER, "min_spikes": MIN_SPIKES},
            "bad_channels": BAD_CHANNELS,
        },
    }
    config = fill_defaults(config, load_schema())
    layout = PairedLayout(config["paired"], config["seed"], RunFolders.of(root))
    return CellSettings.from_dict(layout.cell_settings(cell))


def workflow_cell(root: Path, cell: str, window_s: float, out: Path, n_jobs: int) -> dict:
    """What the convert_cell rule runs for one SPE-1 cell (its library call, its settings)."""
    settings = workflow_settings(root, cell, window_s)
    export = out / "export"
    metadata = convert_cell(
        settings, export / "conversion_metadata.json", export / "templates.npz", n_jobs
    )
    return {
        "peak_channel": int(metadata["unit_peak_channel"]["0"]),
        "n_spikes": int(metadata["n_spikes_total"]),
        "bad": metadata["bad_channel_ids"],
    }


# --------------------------------------------------------------------------- seed algorithm


def seed_patch_spikes(patch: np.ndarray, rate: float) -> np.ndarray:
    """The seed's patch detection: 5th-order 200 Hz Butterworth high-pass (zero phase), peaks
    below median - 12 MAD, at least 1 ms apart."""
    sos = scipy.signal.iirfilter(
        5, 200.0 / rate * 2, analog=False, btype="highpass", ftype="butter", output="sos"
    )
    filtered = scipy.signal.sosfiltfilt(sos, patch, axis=0)
    med = np.median(filtered)
    mad = np.median(np.abs(filtered - med)) * 1.4826
    idx, _ = scipy.signal.find_peaks(
        -filtered, height=-(med - 12 * mad), distance=int(rate * 0.001)
    )
    return idx.astype(np.int64)


def seed_cell(root: Path, cell: str, window_s: float, out: Path) -> dict:
    """The seed converter's convert_cell algorithm (channel map read beforehand, as its main)."""
    from datasets import Dataset

    locations = spe1.read_channel_map(root / "chanMap.mat").locations
    cell_dir = root / "Recordings" / cell
    files = {}
    for entry in os.listdir(cell_dir):
        for suffix, key in (("npx_raw.bin", "npx"), ("patch_ch1.bin", "patch")):
            if entry.endswith(suffix):
                files[key] = str(cell_dir / entry)
    npx = np.memmap(files["npx"], dtype="int16", mode="r").reshape(-1, 384)
    n_npx = npx.shape[0]
    patch = np.fromfile(files["patch"], dtype="float64")
    spikes_patch = seed_patch_spikes(patch, SEED_PATCH_RATE)
    spikes_npx = (spikes_patch * (n_npx / len(patch))).astype(np.int64)
    start = int(SKIP_S * SEED_NPX_RATE)
    end = min(start + int(window_s * SEED_NPX_RATE), n_npx)
    spikes_npx = spikes_npx[(spikes_npx >= start) & (spikes_npx < end)]
    rel = spikes_npx - start
    n_window = end - start

    rec = sc.BinaryRecordingExtractor(
        file_paths=files["npx"],
        sampling_frequency=SEED_NPX_RATE,
        num_channels=384,
        dtype="int16",
        time_axis=0,
    )
    rec.set_channel_locations(locations)
    rec = rec.frame_slice(start, end)
    rec.set_property("gain_to_uV", np.full(384, 2.34375, dtype=np.float32))
    rec.set_property("offset_to_uV", np.zeros(384, dtype=np.float32))
    rec_bp = spre.bandpass_filter(rec, freq_min=300.0, freq_max=3000.0)
    rec_prep = spre.common_reference(rec_bp, operator="median", reference="global")
    bad_ids, _ = spre.detect_bad_channels(recording=rec_bp)
    ids = list(rec_bp.channel_ids)
    bad = sorted(int(ids.index(c)) for c in bad_ids)

    # Template: one lazy get_traces per spike.
    n_before = int(MS_BEFORE * SEED_NPX_RATE / 1000.0)
    n_after = int(MS_AFTER * SEED_NPX_RATE / 1000.0)
    total, n_used, n_oob = None, 0, 0
    for s in rel:
        a, b = int(s) - n_before, int(s) + n_after
        if a < 0 or b > n_window:
            n_oob += 1
            continue
        snippet = rec_prep.get_traces(start_frame=a, end_frame=b).astype(np.float32)
        total = snippet if total is None else total + snippet
        n_used += 1
    if total is not None and n_used >= MIN_SPIKES:
        template = total / n_used
    else:
        template = np.zeros((n_before + n_after, 384), dtype=np.float32)
    peak = int(np.argmax(np.max(np.abs(template), axis=0)))

    seg_len = int(SEGMENT_S * SEED_NPX_RATE)
    segments = [(i, min(i + seg_len, n_window)) for i in range(0, n_window, seg_len)]
    n_train = int(len(segments) * TRAIN_FRACTION)
    for split, seg_range in (("train", segments[:n_train]), ("test", segments[n_train:])):

        def gen(sr=seg_range):
            for s0, s1 in sr:
                cp = rec_prep.get_traces(start_frame=s0, end_frame=s1).T.astype(np.float32)
                cit = [[] for _ in range(384)]
                ctt = [[] for _ in range(384)]
                in_seg = rel[(rel >= s0) & (rel < s1)]
                t_ms = (in_seg - s0).astype(np.float64) / SEED_NPX_RATE * 1000.0
                cit[peak].extend([0] * len(t_ms))
                ctt[peak].extend(t_ms.tolist())
                yield {
                    "sample_id": f"{s0:010d}",
                    "cit": [np.array(c, dtype=np.int32) for c in cit],
                    "ctt": [np.array(c, dtype=np.float64) for c in ctt],
                    "cp": [cp[ch] for ch in range(384)],
                }
                del cp
                gc.collect()

        split_dir = out / split
        split_dir.mkdir(parents=True)
        ds = Dataset.from_generator(gen, writer_batch_size=1)
        ds.save_to_disk(str(split_dir))
        del ds
        gc.collect()
    (out / "dataset_dict.json").write_text(json.dumps(dataset_dict_json(["train", "test"])))
    metadata = {
        "cell_id": cell,
        "bad_channel_ids": bad,
        "unit_peak_channel": {"0": peak},
        "n_spikes_total": int(len(spikes_npx)),
        "n_spikes_used_for_templates": n_used,
        "n_out_of_bounds_discarded": n_oob,
    }
    (out / "conversion_metadata.json").write_text(json.dumps(metadata, indent=2))
    np.savez(
        out / "templates.npz",
        templates=template[np.newaxis],
        sampling_frequency=SEED_NPX_RATE,
        probe_positions=locations,
        nbefore=n_before,
        nafter=n_after,
    )
    return {"peak_channel": peak, "n_spikes": int(len(spikes_npx)), "bad": bad}


# ------------------------------------------------------------------------- one streaming pass


def one_pass(root: Path, cell: str, window_s: float, out: Path, n_jobs: int) -> dict:
    """The floor: read + bandpass + global median CMR written once, nothing else."""
    npx = next((root / "Recordings" / cell).glob(f"*{spe1.NPX_SUFFIX}"))
    rec = sc.BinaryRecordingExtractor(
        file_paths=[str(npx)],
        sampling_frequency=SEED_NPX_RATE,
        num_channels=384,
        dtype="int16",
        time_axis=0,
    )
    start = int(SKIP_S * SEED_NPX_RATE)
    rec = rec.frame_slice(start, start + int(window_s * SEED_NPX_RATE))
    rec_bp = spre.bandpass_filter(rec, freq_min=300.0, freq_max=3000.0)
    rec_prep = spre.common_reference(rec_bp, operator="median", reference="global")
    rec_prep.save(folder=out / "traces", n_jobs=n_jobs, chunk_duration="1s", progress_bar=False)
    return {}


IMPLS = {"workflow": workflow_cell, "seed": seed_cell, "one_pass": one_pass}


# ------------------------------------------------------------------------------ measurements


def measure(label: str, impl: str, root: Path, window_s: float, tmp: Path, reps: int, **kw):
    times, cpus, result = [], [], None
    for rep in range(reps):
        out = tmp / f"out_{impl}_{kw.get('n_jobs', 0)}_{rep}"
        out.mkdir()
        if impl == "seed":
            shutil.rmtree(_HF_CACHE, ignore_errors=True)
            os.makedirs(_HF_CACHE)
        t, c = time.perf_counter(), time.process_time()
        result = IMPLS[impl](root, CELL, window_s, out, **kw)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        times.append(wall)
        cpus.append(cpu / wall)
        shutil.rmtree(out)
    best = min(times)
    extra = ""
    if result:
        extra = (
            f"; {result['n_spikes']} spikes, peak channel {result['peak_channel']}, "
            f"{len(result['bad'])} bad channels"
        )
    log(
        f"  {label:28s} {spread(times)} (main-process cpu/wall "
        f"{'/'.join(f'{c:.0%}' for c in cpus)}){extra}"
    )
    return best, result


def rss_child(spec_json: str) -> None:
    spec = json.loads(spec_json)
    out = Path(spec["out"])
    out.mkdir()
    workflow_cell(Path(spec["root"]), CELL, spec["window_s"], out, spec["n_jobs"])
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"maxrss_kb": peak_rss_kb(), "children_kb": children}))


def measure_rss(root: Path, window_s: float, tmp: Path, n_jobs: int) -> tuple[float, float]:
    out = tmp / f"rss_{window_s:g}_{n_jobs}"
    spec = {"root": str(root), "window_s": window_s, "out": str(out), "n_jobs": n_jobs}
    proc = subprocess.run(
        [sys.executable, __file__, "--rss-job", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(out, ignore_errors=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["maxrss_kb"] / 1024.0, result["children_kb"] / 1024.0


def make_long_cell(root: Path, long_root: Path, copies: int) -> None:
    """The short cell's binaries repeated end to end (same clock ratio), same shared files."""
    src = root / "Recordings" / CELL
    dst = long_root / "Recordings" / CELL
    dst.mkdir(parents=True)
    for path in src.iterdir():
        with open(dst / path.name, "wb") as handle:
            for _ in range(copies):
                with open(path, "rb") as part:
                    shutil.copyfileobj(part, handle, 16 << 20)
    for name in ("chanMap.mat", "Data Summary.xlsx"):
        shutil.copy(root / name, long_root / name)


# ------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s window")
    parser.add_argument("--rss-job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore")
    spikeinterface.set_global_job_kwargs(progress_bar=False)
    import datasets

    datasets.disable_progress_bars()
    if args.rss_job:
        rss_child(args.rss_job)
        return

    sizes = QUICK if args.quick else FULL
    reps, window_s = sizes["reps"], sizes["window_s"]
    t_start = time.perf_counter()
    load_start = loadavg()
    log(f"spikeforge paired benchmark ({'quick' if args.quick else 'full'}; best of {reps})")
    others = {}
    with tempfile.TemporaryDirectory(prefix="spikeforge-paired-") as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "spe1"
        meter = OtherLoad()
        duration = SKIP_S + window_s + 1.0
        t = time.perf_counter()
        mock = write_mock_spe1_cell(root, CELL, duration_s=duration, seed=SEED)
        t_gen = time.perf_counter() - t
        long_s = sizes["rss_long_s"]
        copies = int(np.ceil((SKIP_S + long_s + 1.0) / duration))
        long_root = tmp / "spe1_long"
        make_long_cell(root, long_root, copies)
        others["generation"] = meter.cores()
        size = mock.npx_path.stat().st_size
        log(
            f"cell: {duration:.0f} s x 384 channels int16 ({size / 1e9:.2f} GB) + patch trace, "
            f"{mock.gt_frames.size} GT spikes, written by write_mock_spe1_cell in {t_gen:.1f} s "
            f"(not in the figures); window {SKIP_S:.0f} s + {window_s:.0f} s; long cell = "
            f"{copies} copies end to end ({copies * duration:.0f} s)"
        )

        log(f"1-3. one cell, {window_s:.0f} s window")
        meter = OtherLoad()
        seed_s, seed_res = measure("seed algorithm", "seed", root, window_s, tmp, reps)
        wf2_s, wf_res = measure(
            "workflow per cell, n_jobs=2", "workflow", root, window_s, tmp, reps, n_jobs=2
        )
        wf1_s, _ = measure(
            "workflow per cell, n_jobs=1", "workflow", root, window_s, tmp, reps, n_jobs=1
        )
        op2_s, _ = measure(
            "one streaming pass, n_jobs=2", "one_pass", root, window_s, tmp, reps, n_jobs=2
        )
        op1_s, _ = measure(
            "one streaming pass, n_jobs=1", "one_pass", root, window_s, tmp, reps, n_jobs=1
        )
        others["timing"] = meter.cores()
        same = (
            seed_res["peak_channel"] == wf_res["peak_channel"]
            and seed_res["n_spikes"] == wf_res["n_spikes"]
        )
        check = (
            f"check: peak channel {seed_res['peak_channel']} (seed) / "
            f"{wf_res['peak_channel']} (workflow), spikes {seed_res['n_spikes']} / "
            f"{wf_res['n_spikes']} (GT {mock.gt_peak_channel=}), bad channels "
            f"{seed_res['bad']} / {wf_res['bad']} -> {'same' if same else 'DIFFERENT'}"
        )
        log(check)

        log("4. peak RSS (VmHWM) of the workflow per cell, n_jobs=2, fresh subprocess each")
        meter = OtherLoad()
        short_s = sizes["rss_short_s"]
        rss_short = measure_rss(root, short_s, tmp, 2)
        rss_long = measure_rss(long_root, long_s, tmp, 2)
        others["rss"] = meter.cores()

    rows = [
        (f"one cell, {window_s:.0f} s window, n_jobs=2 [wall s]", seed_s, wf2_s, seed_s / wf2_s),
        (f"one cell, {window_s:.0f} s window, n_jobs=1 [wall s]", seed_s, wf1_s, seed_s / wf1_s),
        ("speed-up vs seed, n_jobs=2 (target >= 3x)", seed_s, wf2_s, seed_s / wf2_s),
        ("time / one-pass time, n_jobs=2 (target <= 1.3x)", op2_s, wf2_s, wf2_s / op2_s),
        ("time / one-pass time, n_jobs=1 (target <= 1.3x)", op1_s, wf1_s, wf1_s / op1_s),
        (
            "throughput n_jobs=2 [recorded s / wall s]",
            window_s / seed_s,
            window_s / wf2_s,
            seed_s / wf2_s,
        ),
    ]
    width = max(len(r[0]) for r in rows)
    log("")
    log(f"{'measure':<{width}} | {'baseline':>9} | {'spikeforge':>10} | {'ratio':>7}")
    log(f"{'-' * width}-+-{'-' * 9}-+-{'-' * 10}-+-{'-' * 7}")
    for name, base_v, ours_v, ratio in rows:
        log(f"{name:<{width}} | {base_v:>9.2f} | {ours_v:>10.2f} | {ratio:>6.2f}x")
    log(
        "(baseline: the seed algorithm for the speed rows, one streaming pass for the "
        "one-pass rows; ratio: baseline / spikeforge time, spikeforge / one-pass time)"
    )
    log("")
    log(check)
    growth = rss_long[0] - rss_short[0]
    log(
        f"memory workflow per cell (n_jobs=2): {short_s:.0f} s -> {long_s:.0f} s window "
        f"main process {rss_short[0]:.0f} -> {rss_long[0]:.0f} MB ({growth:+.0f} MB); "
        f"largest worker {rss_short[1]:.0f} -> {rss_long[1]:.0f} MB "
        f"({rss_long[1] - rss_short[1]:+.0f} MB) -> "
        f"{'does not grow' if abs(growth) < 50 else 'GROWS'} with the recording length"
    )
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    log(
        f"machine: {os.cpu_count()} cores ({affinity} usable), {cpu_model()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, spikeinterface "
        f"{spikeinterface.__version__}, Python {platform.python_version()}"
    )
    log(
        "noise: cores busy with other processes during "
        + ", ".join(f"{k} {v:.2f}" for k, v in others.items())
        + f"; loadavg {load_start} at start, {loadavg()} at end; "
        f"total {time.perf_counter() - t_start:.0f} s"
    )


if __name__ == "__main__":
    main()

"""Memory (MB) and runtime (minutes) each job needs, from the config and the sizes it implies:
what the Slurm executor requests per job. Figures come from the benchmarks' peak-RSS and
throughput measurements with room to spare; every job's memory is independent of the
recording or dataset length. Both grow with the attempt, so a job killed for memory or time
is resubmitted with twice as much (`retries:` in the Slurm profile)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from spikeforge.eeg.clips import CLIP_SAMPLES
from spikeforge.eeg.raw import FSAVERAGE_RAW_REGIONS, RAW_FS
from spikeforge.eeg.simulated_clips import STEPS_PER_PIECE
from spikeforge.eeg.synthesis import BLOCK_SAMPLES
from spikeforge.paired.spe1 import NPX_CHANNELS, NPX_SAMPLING_HZ
from spikeforge.workflow.layout import EEGLayout, PairedLayout

PYTHON_MB = 400  # interpreter, numpy, scipy, h5py and spikeinterface imported
MARGIN = 1.5
# On a cluster node a job is Snakemake itself (the job step's and the job's own process,
# measured at 215-315 MiB each on a real Slurm node) around the script: counted in every
# request, since clusters limit the job's memory as a whole.
SNAKEMAKE_MB = 600
DEFAULT_MB = PYTHON_MB + 600  # a job that holds one item at a time
MIN_RUNTIME = 10  # minutes: start-up, imports and a slow shared file system

Amount = int | float | Callable[..., float]


def per_attempt(mem_mb: Amount, runtime: Amount = MIN_RUNTIME) -> dict[str, Callable[..., int]]:
    """A rule's `resources:`: memory (the script's, Snakemake's own added) and runtime, each
    a number or a function of (wildcards, threads), multiplied by the attempt (1 on the
    first submission)."""

    def scaled(amount: Amount, overhead: int = 0) -> Callable[..., int]:
        if callable(amount):
            return lambda wildcards, threads, attempt: int(
                math.ceil((amount(wildcards, threads) + overhead) * attempt)
            )
        return lambda wildcards, attempt: int(math.ceil((amount + overhead) * attempt))

    return {"mem_mb": scaled(mem_mb, SNAKEMAKE_MB), "runtime": scaled(runtime)}


def minutes(seconds: float) -> int:
    """A runtime request: the estimate with room to spare, never under MIN_RUNTIME."""
    return max(MIN_RUNTIME, int(math.ceil(MIN_RUNTIME + 2 * seconds / 60)))


def eeg_runtime(eeg: EEGLayout, rule: str, split: str | None = None) -> int:
    """Minutes of one job of an EEG rule, from throughputs measured on a 2-core laptop
    (benchmarks/) divided by four for slower cluster cores."""
    n_regions = eeg.n_regions
    if rule == "simulate_tvb":
        # 0.017 simulated s per wall s at 998 regions; the coupling grows with the regions
        rate = 0.017 * (998 / max(n_regions, 1)) ** 2
        return minutes(4 * eeg.raw_cfg["tvb"]["duration_s"] / min(rate, 10.0))
    if rule == "synthesize_shard":
        return minutes(4 * eeg.samples_per_shard / 400)  # 400 samples/s in one process
    if rule == "sample_plan":
        return minutes(4 * eeg.samples_per_shard * eeg.shards_per_plan_part * 2e-3)
    if rule in ("import_deepsif_plan", "export_deepsif"):
        samples = max(eeg.split_size(s) for s in eeg.splits) if eeg.splits else 0
        return minutes(4 * samples * 2e-3)  # 1.6 ms a sample
    if rule in ("extract_clips", "spike_library"):
        return minutes(4 * 60 * n_regions / 100)
    if rule == "simulate_clips":
        # 4 run-s per wall s at 998 regions (half the rate measured in one process: the
        # coupling grows with the connectivity's edges, taken as the regions squared);
        # extraction about 5 s per run-200 s
        simulate = eeg.raw_cfg["simulate"]
        runs = simulate["regions_per_job"] * len(eeg.raw_cfg["iterations"])
        rate = 4.0 * (998 / max(n_regions, 1)) ** 2
        seconds = runs * simulate["duration_s"] * (1.0 / min(rate, 100.0) + 5.0 / 200.0)
        return minutes(4 * seconds)
    return MIN_RUNTIME


def _mb(n_bytes: float) -> int:
    return int(math.ceil(n_bytes / 1e6))


def eeg_mem_mb(eeg: EEGLayout, rule: str) -> int:
    """Memory of one job of an EEG rule."""
    n_regions, n_channels = eeg.n_regions, eeg.n_channels
    width = FSAVERAGE_RAW_REGIONS if eeg.cfg["preprocessing"]["fsaverage_remap"] else n_regions
    leadfield = n_channels * n_regions * 8
    if rule == "extract_clips":
        chunk_s = eeg.raw_cfg["mock"]["chunk_s"] if eeg.raw_cfg["source"] == "mock" else 10.0
        chunk = chunk_s * RAW_FS * width * 4
        # a raw chunk, its decimation and the float64 noise projection of its alpha rows
        need = 4 * chunk + leadfield
    elif rule == "synthesize_shard":
        # a block of samples: float32 output, float64 EEG and source courses per sample
        block = BLOCK_SAMPLES * CLIP_SAMPLES * (n_channels * 4 + 2 * 20 * 8)
        plan_rows = eeg.samples_per_shard * eeg.plan_cfg["n_sources"] * 70 * 24
        need = block + plan_rows + 2 * leadfield
    elif rule in ("sample_plan", "import_deepsif_plan", "export_deepsif"):
        # ~40 B a plan row and source slot (int32 and float64 arrays, DeepSIF's float64 copies):
        # a part plans 10,000 rows at a time; the DeepSIF files hold a whole split
        rows = 10_000
        if rule != "sample_plan" and eeg.splits:
            rows = max(eeg.split_size(s) for s in eeg.splits)
        need = rows * eeg.plan_cfg["n_sources"] * 70 * 40 + n_regions * n_regions * 8 * 2
    elif rule == "simulate_tvb":
        need = 3.0e9  # TVB's history, weights and Numba
    elif rule == "simulate_clips":
        # a piece of steps of the batch (output, normals and their float64 copies), a raw
        # chunk per run when the raw layout is written, the extraction of one run
        simulate = eeg.raw_cfg["simulate"]
        runs = simulate["regions_per_job"] * len(eeg.raw_cfg["iterations"])
        piece = STEPS_PER_PIECE * runs * width * 8 * 4
        raw = runs * simulate["chunk_s"] * RAW_FS * width * 4 if simulate["write_raw"] else 0
        extraction = 4 * simulate["chunk_s"] * RAW_FS / 4 * width * 4 + leadfield
        need = 300e6 + piece + raw + extraction  # numba and the compiled kernel
    else:
        # one clip (and its projection) at a time
        need = CLIP_SAMPLES * (n_regions * 4 + n_channels * 8) * 4 + leadfield
    return PYTHON_MB + _mb(need * MARGIN)


def paired_mem_mb(paired: PairedLayout, rule: str, threads: int = 1) -> int:
    """Memory of one job of a paired rule: per worker, a few copies of one segment."""
    if rule == "convert_cell":
        segment = paired.cfg["segment_s"] * NPX_SAMPLING_HZ * NPX_CHANNELS
        # int16 read, float64 filter groups, float32 rows, the Arrow buffer: ~ 60 B a sample
        per_worker = 200e6 + 15 * 4 * segment
        return PYTHON_MB + _mb(MARGIN * (200e6 + max(1, threads) * per_worker))
    if rule == "mock_spe1_cell":
        # SpikeInterface's generator holds the patch trace and one second of 384 channels
        patch = paired.cfg["mock"]["duration_s"] * 50_024 * 8 * 3
        return PYTHON_MB + _mb(MARGIN * (patch + 300e6))
    return DEFAULT_MB


def session_mem_mb(cfg: dict, threads: int) -> int:
    """Memory of a mock-session job: per thread, the spike times of the fastest possible unit
    (three float64/int64 copies) and a chunk of waveforms and of LFP; nothing grows with the
    number of units, and the LFP is streamed."""
    from spikeforge.sessions.write import LFP_CHUNK, WAVEFORM_CHUNK

    dead_time_s = cfg["dead_time_ms"] / 1000.0
    most_spikes = float(cfg["duration_s"]) * 0.5 / dead_time_s
    per_thread = 3 * 8 * most_spikes + 3 * WAVEFORM_CHUNK * 64 * 4 + 40 * LFP_CHUNK
    return PYTHON_MB + _mb(MARGIN * max(1, threads) * per_thread)


def cortical_mem_mb(layout: Any, sheet_folder: str) -> int:
    """Memory of one cortical export: one segment's spike trains as stand-ins (about 1 kB a
    neuron) and a block of keys; independent of the number of images."""
    return PYTHON_MB + _mb(MARGIN * (layout.neurons(sheet_folder) * 1_500 + 200e6))


def paired_runtime(paired: PairedLayout, rule: str) -> int:
    """Minutes of a paired job: a cell's pass reads its recording about at 20 MB/s a core
    on slow storage."""
    if rule == "convert_cell":
        longest_s = 3600.0 if paired.source != "mock" else paired.cfg["mock"]["duration_s"]
        return minutes(longest_s * NPX_SAMPLING_HZ * NPX_CHANNELS * 2 / 20e6)
    return MIN_RUNTIME


def session_runtime(cfg: dict) -> int:
    """Minutes of a mock session: about 1.2 s of writing per 90 min of 100 units at 1 thread
    (benchmarks/bench_sessions.py), with the LFP's 1 kHz channels on top."""
    units = len(cfg["regions"]) * cfg["channels_per_region"] * cfg["units_per_channel"][1]
    hours = float(cfg["duration_s"]) / 5400
    return minutes(4 * 30 * hours * (units / 100 + 1))

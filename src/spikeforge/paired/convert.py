"""One cell in one streaming pass: bandpass + global median reference, bad channels, the
peak-aligned template and the Arrow datasets, each chunk of the recording read and filtered
once (docs in `convert`)."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import spikeinterface.core as sc

from spikeforge.core.files import staging_directory
from spikeforge.core.progress import watching
from spikeforge.core.provenance import write_json
from spikeforge.io.hf_datasets import dataset_dict_json, write_split_metadata
from spikeforge.paired.arrow import ExportSpec, arrow_features, place_spikes, plan_segments
from spikeforge.paired.badchannels import IblPlan
from spikeforge.paired.kernels import FilterSpec
from spikeforge.paired.streaming import (
    ChunkResult,
    PassJob,
    PassPlan,
    checked_window,
    detect_separately,
    pass_results,
    plan_pass,
    resolve_job_kwargs,
    run_pass,
)
from spikeforge.paired.templates import TemplateResult, template_from_sums, template_window

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Conversion:
    """What `convert` made besides its files: the template, the bad channels and the pass's
    figures (preprocess's info; empty for already-preprocessed input), and the split sizes."""

    template: TemplateResult
    bad_channels: list[int]
    preprocess: dict[str, Any]
    export: dict[str, Any]


@dataclass(frozen=True)
class _Source:
    """The traces a conversion pass reads and how: filtered and referenced (`plan` given) or
    already preprocessed."""

    recording: sc.BaseRecording
    plan: PassPlan | None
    jobs: dict[str, Any]
    filter_spec: FilterSpec | None
    reference: np.ndarray | None
    ibl: IblPlan | None
    dtype: np.dtype


def convert(
    recording: sc.BaseRecording,
    start_frame: int,
    end_frame: int | None,
    spike_rel: np.ndarray,
    out_dir: str | Path,
    *,
    segment_s: float = 3.0,
    train_fraction: float = 0.8,
    ms_before: float = 1.0,
    ms_after: float = 2.0,
    min_spikes: int = 2,
    bad_channel_kwargs: Mapping[str, Any] | None = None,
    job_kwargs: Mapping[str, Any] | None = None,
    preprocessed: bool = False,
    segment_index: int = 0,
    freq_min: float = 300.0,
    freq_max: float = 3000.0,
) -> Conversion:
    """One cell in one streaming pass: preprocess's bandpass + global median reference and
    bad-channel detection, the peak-aligned template and the Arrow datasets, each chunk of the
    recording read and filtered once.

    Writes out_dir/train and out_dir/test (datasets.load_from_disk-able) and
    out_dir/dataset_dict.json. `spike_rel` are spike frames relative to start_frame.
    `preprocessed=True` takes `recording` as already preprocessed (e.g. preprocess's saved
    folder): no filter, reference or bad-channel detection.

    The pass's chunks are the segments (`segment_s`; the first int(n * train_fraction) are
    train), so each worker writes whole rows: one Arrow stream file per segment
    (data-XXXXX-of-YYYYY.arrow, as save_to_disk names its shards) with dataset_info.json and
    state.json. Rows: sample_id "{s0:010d}" (s0 relative to the window start), cp
    [channels][T] float32 traces, cit / ctt [channels][spikes]: unit index 0 and spike times
    in ms from the segment start, on the template's peak channel (other channels empty). The
    peak channel is known only at the end of the pass, so workers put the spikes on channel 0
    and the spike lists' offsets are then rewritten in place.

    Template: as peak_aligned_template on the saved traces (same spikes used, same float64
    sums, hence the same result), accumulated chunk by chunk.

    Memory: a few copies of one segment per worker (about 0.2 GB per second of 384-channel
    data), independent of the recording's length. Nothing is left in out_dir on error; no
    HuggingFace cache is used.
    """
    started = time.perf_counter()
    source = _source(
        recording, start_frame, end_frame, bad_channel_kwargs, job_kwargs, preprocessed,
        segment_index, freq_min, freq_max,
    )  # fmt: skip
    fs = float(source.recording.get_sampling_frequency())
    n_samples, n_channels = source.recording.get_num_samples(), source.recording.get_num_channels()
    # Refuse a window too short for the train/test split before anything expensive.
    train, test = plan_segments(n_samples, fs, segment_s, train_fraction, n_channels)
    if source.plan is not None:
        detect_separately(source.plan)
    spikes = np.sort(np.asarray(spike_rel, dtype=np.int64).reshape(-1))
    nbefore, nafter = template_window(fs, ms_before, ms_after)
    export = _Export(
        train=train, test=test, segment_samples=int(segment_s * fs), n_samples=n_samples,
        n_channels=n_channels, fs=fs, spikes=spikes, nbefore=nbefore, nafter=nafter,
    )  # fmt: skip
    used = export.template_spikes.size

    def make_template(total: np.ndarray) -> TemplateResult:
        return template_from_sums(
            total, used, spikes.size, nbefore, nafter, ms_before, ms_after, min_spikes
        )

    t0 = time.perf_counter()
    results, template = _run_export(source, export, Path(out_dir), make_template)
    seconds_pass = time.perf_counter() - t0
    bad_idx, pass_info = [], {}
    if source.plan is not None:
        bad_idx, pass_info = pass_results(source.plan, results, source.dtype, seconds_pass, started)
    export_info = {
        "segment_samples": export.segment_samples,
        "n_train": len(train),
        "n_test": len(test),
        "n_channels": n_channels,
        "seconds_total": round(time.perf_counter() - started, 3),
    }
    return Conversion(
        template=template, bad_channels=bad_idx, preprocess=pass_info, export=export_info
    )


@dataclass(frozen=True)
class _Export:
    """The segments of a conversion and the spikes its rows and template use."""

    train: list[tuple[int, int]]
    test: list[tuple[int, int]]
    segment_samples: int
    n_samples: int
    n_channels: int
    fs: float
    spikes: np.ndarray  # window-relative frames, sorted
    nbefore: int
    nafter: int

    @property
    def template_spikes(self) -> np.ndarray:
        """The spikes whose template window lies inside the recording."""
        inside = (self.spikes - self.nbefore >= 0) & (self.spikes + self.nafter <= self.n_samples)
        return self.spikes[inside]

    def spec(self, dirs: dict[str, str], schema: Any) -> ExportSpec:
        files = [("train", i, len(self.train)) for i in range(len(self.train))]
        files += [("test", i, len(self.test)) for i in range(len(self.test))]
        return ExportSpec(
            segment_samples=self.segment_samples, files=files, dirs=dirs, spikes=self.spikes,
            template_spikes=self.template_spikes, nbefore=self.nbefore, nafter=self.nafter,
            fs=self.fs, schema=schema,
        )  # fmt: skip


def _run_export(
    source: _Source,
    export: _Export,
    out_dir: Path,
    make_template: Callable[[np.ndarray], TemplateResult],
) -> tuple[list[ChunkResult], TemplateResult]:
    """The pass into staging folders beside out_dir/train and test, the template from its
    float64 sums, the spikes moved to the template's peak channel, the splits checked and
    moved into place. Returns the chunk results and the template."""
    jobs = {k: v for k, v in source.jobs.items() if k not in _CHUNKING}
    jobs["chunk_size"] = export.segment_samples  # one chunk per segment: workers write whole rows
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: dict[str, Path] = {}
    try:
        for split in SPLITS:
            staged[split] = staging_directory(f".{split}.", out_dir)
        features = arrow_features()
        spec = export.spec({split: str(path) for split, path in staged.items()},
                           features.arrow_schema)  # fmt: skip
        n_segments = len(export.train) + len(export.test)
        written = lambda: sum(1 for p in staged.values() for _ in Path(p).glob("*.arrow"))  # noqa: E731
        with watching(written, n_segments, "converting", " segments"):
            results = run_pass(_pass_job(source, spec), jobs, "spikeforge convert")
        total = np.zeros((export.nbefore + export.nafter, export.n_channels), dtype=np.float64)
        for chunk_result in results:
            if chunk_result.template is not None:
                total += chunk_result.template
        template = make_template(total)
        peak_channel = template.peak_channel
        _place_spikes_on_peak_channel(results, export, peak_channel)
        content_key = f"{peak_channel}:{hashlib.sha256(export.spikes.tobytes()).hexdigest()}"
        for split, rows in (("train", export.train), ("test", export.test)):
            write_split_metadata(staged[split], split, features, len(rows),
                                 [export.n_channels, rows, content_key])  # fmt: skip
        _publish(staged, {"train": len(export.train), "test": len(export.test)}, out_dir)
    finally:
        for staging in staged.values():
            shutil.rmtree(staging, ignore_errors=True)
    return results, template


# The pass's chunks are the segments: SpikeInterface's own chunking keywords are replaced.
_CHUNKING = ("chunk_size", "chunk_memory", "total_memory", "chunk_duration")


def _source(
    recording: sc.BaseRecording,
    start_frame: int,
    end_frame: int | None,
    bad_channel_kwargs: Mapping[str, Any] | None,
    job_kwargs: Mapping[str, Any] | None,
    preprocessed: bool,
    segment_index: int,
    freq_min: float,
    freq_max: float,
) -> _Source:
    if preprocessed:
        recording, start, end = checked_window(
            recording, start_frame, end_frame, segment_index, freq_min, freq_max, filtered=False
        )
        window = recording.frame_slice(start, end)
        return _Source(
            recording=window, plan=None, jobs=resolve_job_kwargs(job_kwargs), filter_spec=None,
            reference=None, ibl=None, dtype=np.dtype(window.get_dtype()),
        )  # fmt: skip
    plan = plan_pass(
        recording, start_frame, end_frame, bad_channel_kwargs, job_kwargs, segment_index,
        freq_min, freq_max,
    )  # fmt: skip
    return _Source(
        recording=plan.bandpassed, plan=plan, jobs=plan.jobs, filter_spec=plan.filter_spec,
        reference=plan.reference, ibl=plan.ibl, dtype=np.dtype(plan.referenced.get_dtype()),
    )  # fmt: skip


def _pass_job(source: _Source, export: ExportSpec) -> PassJob:
    return PassJob(
        source=source.recording,
        filter_spec=source.filter_spec,
        apply_reference=source.plan is not None,
        reference=source.reference,
        out_path=None,
        dtype=source.dtype.str,
        ibl=source.ibl,
        export=export,
    )


def _place_spikes_on_peak_channel(
    results: list[ChunkResult], export: _Export, peak_channel: int
) -> None:
    """Workers wrote every row's spikes on channel 0: move them to the template's peak
    channel, known only now, by rewriting the rows' list offsets in place."""
    segments = export.train + export.test
    written = sorted((r.segment for r in results), key=lambda s: s.k)
    if [s.k for s in written] != list(range(len(segments))):
        raise RuntimeError("the pass did not write every segment")
    starts = [s for s, _ in segments] + [export.n_samples]
    counts = np.diff(np.searchsorted(export.spikes, starts))
    for segment, n_spikes in zip(written, counts, strict=True):
        place_spikes(
            segment.path, segment.positions, export.n_channels, peak_channel, int(n_spikes)
        )


def _publish(staged: dict[str, Path], rows: dict[str, int], out_dir: Path) -> None:
    """Check each staged split with datasets.load_from_disk, then move them into place."""
    from datasets import load_from_disk

    for split, staging in staged.items():
        loaded = load_from_disk(str(staging))  # memory-mapped: checks the layout
        if len(loaded) != rows[split]:
            raise RuntimeError(f"{split}: wrote {rows[split]} rows, read {len(loaded)}")
        del loaded
    for split, staging in staged.items():
        final = out_dir / split
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    write_json(out_dir / "dataset_dict.json", dataset_dict_json(SPLITS), indent=None)

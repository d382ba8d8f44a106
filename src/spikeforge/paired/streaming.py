"""The streaming pass: one read of a recording's window, chunk by chunk in parallel workers,
that bandpasses it (SpikeInterface's filter, bit for bit), subtracts the global median
reference, labels the bad-channel chunks that start in it, and hands the traces to what the
pass was asked for: a binary file (preprocess) or the template sums and Arrow rows (convert)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import probeinterface
import spikeinterface.core as sc
import spikeinterface.preprocessing as spre
from spikeinterface.core.core_tools import (
    save_annotations_to_folder,
    save_properties_to_folder,
    save_provenance_to_folder,
)
from spikeinterface.core.job_tools import TimeSeriesChunkExecutor, fix_job_kwargs

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_directory
from spikeforge.core.provenance import jsonable
from spikeforge.paired.arrow import ExportSpec, SegmentFile, write_segment
from spikeforge.paired.badchannels import (
    IblPlan,
    bad_channel_settings,
    ibl_plan,
    label_slices,
    labels_from_chunks,
)
from spikeforge.paired.kernels import (
    FilterSpec,
    bandpass_chunk,
    filtfilt_min_samples,
    median_reference,
    write_at,
)
from spikeforge.paired.templates import template_sums

log = logging.getLogger(__name__)

PREPROCESSING_LABEL = "bandpass_300_3000Hz + global_CMR"


def resolve_job_kwargs(job_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """SpikeInterface job kwargs: 1 s chunks, one job and no progress bar unless given."""
    merged: dict[str, Any] = {"n_jobs": 1, "chunk_duration": "1s", "progress_bar": False}
    merged.update(job_kwargs or {})
    try:
        return fix_job_kwargs(merged)
    except AssertionError as exc:
        raise InputError("job_kwargs", str(exc)) from exc


def checked_window(
    recording: sc.BaseRecording,
    start_frame: int,
    end_frame: int | None,
    segment_index: int,
    freq_min: float,
    freq_max: float,
    filtered: bool = True,
) -> tuple[sc.BaseRecording, int, int]:
    """The one-segment recording and the window [start, end) preprocess works on, or an
    InputError for a window or recording it cannot process (`filtered`: the window will be
    bandpassed, so the recording must be long enough for the filter)."""
    fs = float(recording.get_sampling_frequency())
    n_segments = recording.get_num_segments()
    if not 0 <= segment_index < n_segments:
        raise InputError(
            "recording", f"has {n_segments} segment(s); segment_index {segment_index} is invalid"
        )
    if n_segments > 1:
        log.warning(
            "recording has %d segments: using segment %d only (segments %s left out)",
            n_segments,
            segment_index,
            [i for i in range(n_segments) if i != segment_index],
        )
        recording = recording.select_segments([segment_index])
    n_total = recording.get_num_samples()
    start = int(start_frame)
    end = n_total if end_frame is None else int(end_frame)
    if start < 0 or start >= n_total:
        raise InputError(
            "analysis window",
            f"starts at frame {start:,} but the recording has {n_total:,} frames "
            f"({n_total / fs:.3f} s)",
        )
    if end > n_total:
        log.warning(
            "analysis window ends at frame %d, past the recording's %d frames: cut at the end",
            end,
            n_total,
        )
        end = n_total
    if end <= start:
        raise InputError("analysis window", f"is empty (frames {start:,} to {end:,})")
    min_samples = filtfilt_min_samples(freq_min, freq_max, fs) if filtered else 1
    if n_total < min_samples:
        raise InputError(
            "recording",
            f"has {n_total} samples ({n_total / fs * 1000:.2f} ms); the {freq_min:g}-"
            f"{freq_max:g} Hz zero-phase filter needs at least {min_samples}",
        )
    try:
        recording.get_channel_locations()
    except ValueError as exc:
        raise InputError("recording", "has no channel locations: give it a probe") from exc
    if not recording.has_scaleable_traces():
        raise InputError("recording", "has no gain_to_uV / offset_to_uV: cannot work in uV")
    return recording, start, end


@dataclass
class PassPlan:
    """What a streaming pass over one recording's window needs, checked before it starts."""

    recording: sc.BaseRecording  # the one segment used
    n_segments: int
    segment_index: int
    start: int
    end: int
    fs: float
    freq_min: float
    freq_max: float
    margin: int
    bandpassed: sc.BaseRecording  # lazy, cut to the window
    filter_spec: FilterSpec | None  # what bandpass_chunk needs (None: use get_traces)
    referenced: sc.BaseRecording  # lazy, for the saved folder's provenance
    reference: np.ndarray | None  # channels of the median (None: all)
    channel_ids: np.ndarray
    settings: dict[str, Any]  # detect_bad_channels' keywords
    method: str | None
    ibl: IblPlan | None  # "coherence+psd": labelled in the pass
    bad_ids: np.ndarray  # other methods: found before the pass
    labels: np.ndarray | None
    seconds_detect: float
    jobs: dict[str, Any]

    @property
    def n_bad_channel_chunks(self) -> int:
        return 0 if self.ibl is None else len(self.ibl.slices)


def plan_pass(
    recording: sc.BaseRecording,
    start_frame: int,
    end_frame: int | None,
    bad_channel_kwargs: Mapping[str, Any] | None,
    job_kwargs: Mapping[str, Any] | None,
    segment_index: int,
    freq_min: float,
    freq_max: float,
) -> PassPlan:
    n_segments = recording.get_num_segments()
    recording, start, end = checked_window(
        recording, start_frame, end_frame, segment_index, freq_min, freq_max
    )
    fs = float(recording.get_sampling_frequency())
    bandpassed_full = spre.bandpass_filter(recording, freq_min=freq_min, freq_max=freq_max)
    margin = int(bandpassed_full.margin_samples)
    n_window = end - start
    if n_window < 2 * margin:
        log.warning(
            "analysis window is %d samples (%.1f ms), shorter than twice the filter margin "
            "(2 x %d samples): filter edge effects reach most of it where it touches the "
            "recording's ends",
            n_window,
            n_window / fs * 1000,
            margin,
        )
    bandpassed = bandpassed_full.frame_slice(start, end)
    channel_ids = bandpassed.get_channel_ids()
    reference = _reference_channels(recording)
    referenced = spre.common_reference(
        bandpassed,
        reference="global",
        operator="median",
        ref_channel_ids=None if reference is None else list(channel_ids[reference]),
    )
    jobs = resolve_job_kwargs(job_kwargs)
    plan = PassPlan(
        recording=recording,
        n_segments=n_segments,
        segment_index=segment_index,
        start=start,
        end=end,
        fs=fs,
        freq_min=freq_min,
        freq_max=freq_max,
        margin=margin,
        bandpassed=bandpassed,
        filter_spec=_filter_spec(bandpassed_full, recording, start),
        referenced=referenced,
        reference=reference,
        channel_ids=channel_ids,
        settings=bad_channel_settings(bad_channel_kwargs),
        method=None,
        ibl=None,
        bad_ids=np.array([], dtype=channel_ids.dtype),
        labels=None,
        seconds_detect=0.0,
        jobs=jobs,
    )
    _plan_bad_channels(plan)
    return plan


def _filter_spec(
    bandpassed: sc.BaseRecording, recording: sc.BaseRecording, start: int
) -> FilterSpec | None:
    """The filter's own coefficients and settings, so the pass filters exactly as it would
    (None for a filter mode bandpass_chunk does not reproduce)."""
    segment = bandpassed._recording_segments[0]
    if (segment.filter_mode, segment.direction) != ("sos", "forward-backward") or (
        segment.add_reflect_padding
    ):
        return None
    return FilterSpec(
        recording=recording,
        offset=start,
        margin=int(segment.margin),
        n_total=recording.get_num_samples(),
        sos=np.asarray(segment.coeff),
        dtype=np.dtype(segment.dtype),
    )


def _reference_channels(recording: sc.BaseRecording) -> np.ndarray | None:
    """Channels whose `connected` property is True; None when all are (or it is absent)."""
    if "connected" not in recording.get_property_keys():
        return None
    connected = np.asarray(recording.get_property("connected"), dtype=bool)
    if not connected.any():
        raise InputError("channel map", "no channel is connected")
    return None if connected.all() else np.flatnonzero(connected)


def _plan_bad_channels(plan: PassPlan) -> None:
    """For "coherence+psd", the slices the pass will label (other methods run before the
    pass: detect_separately)."""
    method = plan.settings["method"]
    if method in (None, "none"):
        return
    plan.method = method
    if method == "coherence+psd":
        plan.ibl = ibl_plan(plan.bandpassed, plan.settings)


def detect_separately(plan: PassPlan) -> None:
    """Bad-channel methods other than "coherence+psd": SpikeInterface's detect_bad_channels on
    the lazy bandpassed recording (an extra read and filter), before the pass."""
    method = plan.method
    if method is None or method == "coherence+psd":
        return
    t0 = time.perf_counter()
    detect_kwargs = {k: v for k, v in plan.settings.items() if k != "method"}
    bad_ids, names = spre.detect_bad_channels(
        plan.bandpassed, method=method, **detect_kwargs, job_kwargs=plan.jobs
    )
    plan.bad_ids, plan.labels = bad_ids, np.asarray(names)
    plan.seconds_detect = time.perf_counter() - t0


@dataclass
class PassJob:
    """What every worker of a pass is given: the traces to read (`source`, filtered with
    `filter_spec` when given), whether to subtract the median reference, and what to do with
    the result (`out_path`: positioned writes into a binary file; `ibl`: label bad-channel
    slices; `export`: template sums and Arrow segment files)."""

    source: sc.BaseRecording
    filter_spec: FilterSpec | None
    apply_reference: bool
    reference: np.ndarray | None
    out_path: str | None
    dtype: str
    ibl: IblPlan | None
    export: ExportSpec | None


@dataclass
class PassWorker:
    job: PassJob
    dtype: np.dtype
    out: BinaryIO | None


@dataclass
class ChunkResult:
    labels: list[tuple[int, np.ndarray]] = field(default_factory=list)
    template: np.ndarray | None = None
    segment: SegmentFile | None = None


def pass_init(job: PassJob) -> PassWorker:
    # Positioned writes rather than a memmap of the output: a mapping would keep every written
    # page in the worker's resident memory, which then grows with the recording.
    out = None if job.out_path is None else open(job.out_path, "r+b", buffering=0)  # noqa: SIM115
    return PassWorker(job=job, dtype=np.dtype(job.dtype), out=out)


def pass_chunk(segment_index: int, start: int, end: int, worker: PassWorker) -> ChunkResult:
    """One chunk of the streaming pass: bandpassed traces (the lazy filter's get_traces), their
    global median reference, then whatever the pass was asked for: the binary file, the
    bad-channel labels of the slices that start here, the template's partial sums and the
    chunk's Arrow segment file."""
    job = worker.job
    if job.filter_spec is not None:
        chunk = bandpass_chunk(job.filter_spec, start, end)
    else:
        chunk = job.source.get_traces(segment_index=segment_index, start_frame=start, end_frame=end)
    result = ChunkResult()
    if job.apply_reference:
        # Bit-identical to saving the lazy spikeinterface chain with the same chunks.
        traces = median_reference(chunk, job.reference, worker.dtype)
        if job.ibl is not None:
            result.labels = label_slices(job.source, segment_index, start, end, chunk, job.ibl)
    else:
        traces = chunk
    if worker.out is not None:
        write_at(worker.out, start * traces.shape[1] * traces.dtype.itemsize, traces)
    if job.export is not None:
        result.template = template_sums(traces, start, job.export)
        result.segment = write_segment(traces, start, job.export)
    return result


def run_pass(job: PassJob, jobs: Mapping[str, Any], name: str) -> list[ChunkResult]:
    """Run the pass over job.source with SpikeInterface's chunk executor (`jobs`: its
    n_jobs and chunking keywords)."""
    executor = TimeSeriesChunkExecutor(
        job.source,
        pass_chunk,
        pass_init,
        (job,),
        handle_returns=True,
        job_name=name,
        **jobs,
    )
    return executor.run()


def pass_results(
    plan: PassPlan,
    results: Sequence[ChunkResult],
    out_dtype: np.dtype,
    seconds_pass: float,
    started: float,
) -> tuple[list[int], dict[str, Any]]:
    """(bad channel indices, info) of a finished pass."""
    bad_ids, labels = plan.bad_ids, plan.labels
    if plan.method == "coherence+psd":
        per_chunk = np.zeros((len(plan.channel_ids), plan.n_bad_channel_chunks), dtype=np.int64)
        for chunk_result in results:
            for k, chunk_labels in chunk_result.labels:
                per_chunk[:, k] = chunk_labels
        bad_ids, labels = labels_from_chunks(
            per_chunk, plan.channel_ids, plan.settings["channel_filters"]
        )
    id_list = list(plan.channel_ids)
    bad_idx = sorted(int(id_list.index(c)) for c in bad_ids)
    settings = plan.settings
    settings_out = {k: v for k, v in settings.items() if k != "channel_filters"}
    if settings["channel_filters"] is not None:
        settings_out["channel_filters"] = sorted(settings["channel_filters"])
    freq = (plan.freq_min, plan.freq_max)
    info: dict[str, Any] = {
        "preprocessing": (
            PREPROCESSING_LABEL
            if freq == (300.0, 3000.0)
            else f"bandpass_{freq[0]:g}_{freq[1]:g}Hz + global_CMR"
        ),
        "segment_index": plan.segment_index,
        "segments_left_out": [i for i in range(plan.n_segments) if i != plan.segment_index],
        "start_frame": plan.start,
        "end_frame": plan.end,
        "n_samples": plan.end - plan.start,
        "sampling_frequency": plan.fs,
        "filter_margin_samples": plan.margin,
        "reference_channels": "connected" if plan.reference is not None else "all",
        "dtype": out_dtype.str,
        "bad_channel_method": plan.method,
        "bad_channel_settings": jsonable(settings_out),
        "bad_channel_chunks": plan.n_bad_channel_chunks,
        "channel_labels": [] if labels is None else [str(x) for x in labels],
        "seconds_bad_channels_separate": round(plan.seconds_detect, 3),
        "seconds_streaming_pass": round(seconds_pass, 3),
        "seconds_total": round(time.perf_counter() - started, 3),
    }
    log.info(
        "preprocessed %d samples x %d channels in %.1f s; %d bad channels: %s",
        plan.end - plan.start,
        len(plan.channel_ids),
        info["seconds_total"],
        len(bad_idx),
        bad_idx,
    )
    return bad_idx, info


def write_binary_folder_metadata(
    folder: Path, raw_name: str, recording: sc.BaseRecording, dtype: np.dtype
) -> None:
    """The metadata files spikeinterface's recording.save(format="binary") writes beside the
    traces, so that spikeinterface.load(folder) reads the folder back with its probe,
    properties, annotations and provenance (the lazy chain the traces came from)."""
    save_properties_to_folder(folder / "properties", recording)
    save_provenance_to_folder(folder, recording, relative_to=folder)
    save_annotations_to_folder(folder, recording)
    if recording.has_probe():
        probeinterface.write_probeinterface(folder / "probegroup.json", recording.get_probegroup())
    binary = sc.BinaryRecordingExtractor(
        file_paths=[folder / raw_name],
        sampling_frequency=recording.get_sampling_frequency(),
        num_channels=recording.get_num_channels(),
        dtype=dtype.str,
        t_starts=recording.get_segment_t_starts(),
        channel_ids=recording.get_channel_ids(),
        time_axis=0,
        file_offset=0,
        is_filtered=recording.is_filtered(),
        gain_to_uV=recording.get_channel_gains(),
        offset_to_uV=recording.get_channel_offsets(),
    )
    binary.dump(folder / "binary.json", relative_to=folder)
    sc.BinaryFolderRecording(folder_path=folder).dump_to_json(
        file_path=folder / "si_folder.json",
        relative_to=folder,
        include_properties=False,
        include_annotations=False,
        include_extra_metadata=False,
    )


def preprocess(
    recording: sc.BaseRecording,
    start_frame: int,
    end_frame: int | None,
    folder: str | Path,
    bad_channel_kwargs: Mapping[str, Any] | None = None,
    job_kwargs: Mapping[str, Any] | None = None,
    *,
    segment_index: int = 0,
    freq_min: float = 300.0,
    freq_max: float = 3000.0,
    dtype: str | None = None,
) -> tuple[sc.BaseRecording, list[int], dict[str, Any]]:
    """Bandpass (5th-order Butterworth, zero phase), global median reference, written once to
    `folder` as a SpikeInterface binary folder; bad channels detected on the bandpassed (not
    referenced) traces. `convert` does the same pass and writes the Arrow datasets instead;
    use this one when the traces themselves are wanted (e.g. to detect peaks on them).

    Window: frames [start_frame, end_frame) of segment `segment_index` (end None: to the end).
    The filter runs on the whole segment and the window is cut afterwards, so the filter's
    margins come from real data on both sides of the window. A recording with several segments
    uses one (default 0) and logs the ones it leaves out: concatenating them would filter across
    the gaps between them.

    Reference: the median over channels whose `connected` property is True (all channels when
    the property is absent): unconnected reference sites carry no signal.

    Bad channels (bad_channel_kwargs: any keyword of spikeinterface.preprocessing.
    detect_bad_channels; default SpikeInterface's, i.e. "coherence+psd" with 100 random chunks
    of 0.3 s, seed 0; "method": None skips detection): for "coherence+psd" the chunks are the
    ones spikeinterface would draw and each is labelled by its IBL detector inside the same
    streaming pass that writes the output, so detection costs no extra filtering. Other methods
    call detect_bad_channels on the lazy bandpassed recording (an extra read and filter).
    `num_random_chunks` sets the cost (about 0.2 s per chunk on 384 channels).

    Short recordings: a segment shorter than the filter's minimum (sosfiltfilt's padding,
    about 34 samples) is an InputError; a window shorter than twice the filter margin (5 periods
    of freq_min, i.e. 2 x 500 samples at 30 kHz) is processed with a warning, since filter edge
    effects then reach most of it when the window touches the recording's ends.
    A window past the end is an InputError; one running past the end is cut with a warning.

    Returns (saved recording, bad channel indices, info); nothing is left in `folder` on error.
    """
    started = time.perf_counter()
    plan = plan_pass(
        recording,
        start_frame,
        end_frame,
        bad_channel_kwargs,
        job_kwargs,
        segment_index,
        freq_min,
        freq_max,
    )
    detect_separately(plan)
    out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(plan.referenced.get_dtype())
    folder = Path(folder)
    raw_name = "traces_cached_seg0.raw"
    t0 = time.perf_counter()
    with atomic_directory(folder) as staging:
        raw_path = staging / raw_name
        with open(raw_path, "wb") as handle:
            handle.truncate((plan.end - plan.start) * len(plan.channel_ids) * out_dtype.itemsize)
        job = PassJob(
            source=plan.bandpassed,
            filter_spec=plan.filter_spec,
            apply_reference=True,
            reference=plan.reference,
            out_path=str(raw_path),
            dtype=out_dtype.str,
            ibl=plan.ibl,
            export=None,
        )
        results = run_pass(job, plan.jobs, "spikeforge preprocess")
        write_binary_folder_metadata(staging, raw_name, plan.referenced, out_dtype)
    saved = sc.BinaryFolderRecording(folder_path=folder)
    bad_idx, info = pass_results(plan, results, out_dtype, time.perf_counter() - t0, started)
    return saved, bad_idx, info

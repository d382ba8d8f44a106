import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

import logging
import tempfile

import numpy as np

from spikeforge import paired
from spikeforge.runner import run


def spe1_recording(sm, cell):
    """The SPE-1 cell's recording, window and ground-truth spikes."""
    settings, spe1 = sm.params.paired, sm.params.spe1
    files = paired.find_cell_files(Path(spe1["recordings"]) / cell)
    n_npx = paired.check_npx_binary(files.npx_raw)
    channel_map = paired.read_channel_map(spe1["chan_map"])
    row = None
    if spe1.get("summary") and Path(spe1["summary"]).is_file():
        row = paired.summary_row(paired.read_summary(spe1["summary"]), cell)
    rate = paired.patch_rate(row)
    recording = paired.open_spe1_recording(files.npx_raw, channel_map)
    fs = recording.get_sampling_frequency()
    window = settings["window"]
    start, end = paired.analysis_window(n_npx, fs, window["skip_s"], window["duration_s"])
    truth = paired.ground_truth_spikes(files, n_npx, rate, start, end)
    info = {
        "patch_sample_rate_hz": rate,
        "gt_electrode_chan_idx": paired.summary_channel(row),
        "spike_source": truth.spike_source,
        "mode": paired.SPE1_MODE,
    }
    return recording, start, end, truth.spike_rel, info


def other_recording(sm, cell):
    settings = sm.params.paired
    spec = settings["recordings"][cell]
    recording = paired.open_recording(
        spec["reader"], spec["path"], spec.get("stream_id"), probe_path=spec.get("probe")
    )
    fs = recording.get_sampling_frequency()
    window = settings["window"]
    start, end = paired.analysis_window(
        recording.get_num_samples(0), fs, window["skip_s"], window["duration_s"]
    )
    spikes = None
    info = {"patch_sample_rate_hz": None, "gt_electrode_chan_idx": None, "mode": spec["reader"]}
    if spec.get("spike_times"):
        absolute = paired.load_spike_samples(
            spec["spike_times"], fs, units=spec.get("spike_times_units", "samples")
        )
        spikes = absolute[(absolute >= start) & (absolute < end)] - start
        info["spike_source"] = f"{Path(spec['spike_times']).name} (ground truth)"
    return recording, start, end, spikes, info


def main(sm):
    cell = sm.wildcards.cell
    settings = sm.params.paired
    if settings["source"] == "recordings":
        recording, start, end, spikes, info = other_recording(sm, cell)
    else:
        recording, start, end, spikes, info = spe1_recording(sm, cell)
    fs = recording.get_sampling_frequency()
    out_dir = Path(sm.output.metadata).parent
    template = settings["template"]
    options = dict(
        segment_s=settings["segment_s"], train_fraction=settings["train_fraction"],
        ms_before=template["ms_before"], ms_after=template["ms_after"],
        min_spikes=template["min_spikes"], job_kwargs={"n_jobs": sm.threads},
    )  # fmt: skip
    # Refuse a window too short for the train/test split before the expensive pass.
    paired.plan_segments(
        end - start, fs, settings["segment_s"], settings["train_fraction"],
        recording.get_num_channels(),
    )  # fmt: skip
    if spikes is not None:
        result = paired.convert(
            recording, start, end, spikes, out_dir,
            bad_channel_kwargs=settings["bad_channels"], **options,
        )  # fmt: skip
        details = result.preprocess
    else:
        # No spike times: peaks are detected on the preprocessed traces, so those are saved
        # (beside the outputs, removed afterwards) and converted without filtering again.
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{cell}.", dir=out_dir.parent) as tmp:
            saved, bad, details = paired.preprocess(
                recording, start, end, Path(tmp) / "preprocessed",
                bad_channel_kwargs=settings["bad_channels"],
                job_kwargs={"n_jobs": sm.threads, "chunk_duration": "1s"},
            )  # fmt: skip
            spikes, channel = paired.detect_peak_spikes(
                saved, detect_threshold=settings["peak_detection"]["detect_threshold"],
                job_kwargs={"n_jobs": sm.threads},
            )  # fmt: skip
            info["spike_source"] = f"spikeinterface peak detection (channel {channel})"
            result = paired.convert(saved, 0, None, spikes, out_dir, preprocessed=True, **options)
            result = paired.Conversion(result.template, bad, details, result.export)
    logging.info("%s: %s", cell, {k: v for k, v in details.items() if k.startswith("seconds")})
    locations = np.asarray(recording.get_channel_locations(), np.float32)
    window = settings["window"]
    metadata = paired.conversion_metadata(
        cell_id=cell,
        skip_seconds=window["skip_s"],
        duration_s=(end - start) / fs,
        patch_sample_rate_hz=info["patch_sample_rate_hz"],
        spike_source=info["spike_source"],
        template_metadata=result.template.metadata,
        sampling_frequency=fs,
        num_channels=recording.get_num_channels(),
        peak_channel=result.template.peak_channel,
        gt_electrode_chan_idx=info["gt_electrode_chan_idx"],
        channel_locations=locations,
        bad_channel_ids=result.bad_channels,
        n_spikes_total=int(len(spikes)),
        segment_duration_s=settings["segment_s"],
        train_fraction=settings["train_fraction"],
        mode=info["mode"],
        # What the pass did, without its timings, so that a rebuild is byte-identical.
        extra={"preprocess": {k: v for k, v in details.items() if not k.startswith("seconds")}},
    )
    paired.write_json(sm.output.metadata, metadata)
    nbefore, nafter = result.template.metadata["nbefore"], result.template.metadata["nafter"]
    paired.write_templates_npz(
        sm.output.templates, result.template.templates, fs, locations, nbefore, nafter
    )
    logging.info(
        "%s: %d spikes, peak channel %d, %d bad channels",
        cell, len(spikes), result.template.peak_channel, len(result.bad_channels),
    )  # fmt: skip


run(snakemake, main)  # noqa: F821

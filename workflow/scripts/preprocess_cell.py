import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

import logging

import numpy as np

from spikeforge import paired
from spikeforge.matio import atomic_path
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
        "mode": "spe1_paired_recording",
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
    # Refuse a window too short for the train/test split before the expensive pass.
    paired.plan_segments(
        end - start, fs, settings["segment_s"], settings["train_fraction"],
        recording.get_num_channels(),
    )  # fmt: skip
    saved, bad, details = paired.preprocess(
        recording, start, end, sm.output.traces,
        bad_channel_kwargs=settings["bad_channels"],
        job_kwargs={"n_jobs": sm.threads, "chunk_duration": "1s", "progress_bar": False},
    )  # fmt: skip
    if spikes is None:
        spikes, channel = paired.detect_peak_spikes(
            saved, detect_threshold=settings["peak_detection"]["detect_threshold"],
            job_kwargs={"n_jobs": sm.threads},
        )  # fmt: skip
        info["spike_source"] = f"spikeinterface peak detection (channel {channel})"
    with atomic_path(sm.output.spikes, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(spikes, np.int64))
    locations = recording.get_channel_locations()
    info.update(
        cell_id=cell, start_frame=int(start), end_frame=int(end), sampling_frequency=fs,
        bad_channel_ids=[int(b) for b in bad], channel_locations=locations.tolist(),
        n_spikes_total=int(len(spikes)), preprocess=details,
    )  # fmt: skip
    paired.write_json(sm.output.info, info)
    logging.info("%s: %d spikes, %d bad channels", cell, len(spikes), len(bad))


run(snakemake, main)  # noqa: F821

import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

import json

import numpy as np
import spikeinterface.core as sc

from spikeforge import paired
from spikeforge.runner import run


def main(sm):
    settings = sm.params.paired
    info = json.loads(Path(sm.input.info).read_text())
    traces = sc.load(sm.input.traces)
    spikes = np.load(sm.input.spikes)
    fs = info["sampling_frequency"]
    template = settings["template"]
    result = paired.peak_aligned_template(
        traces, spikes, fs, template["ms_before"], template["ms_after"], template["min_spikes"]
    )
    out_dir = Path(sm.output.metadata).parent
    paired.write_arrow_splits(
        traces, spikes, result.peak_channel, fs, out_dir,
        segment_s=settings["segment_s"], train_fraction=settings["train_fraction"],
    )  # fmt: skip
    locations = np.asarray(info["channel_locations"], np.float32)
    window = settings["window"]
    metadata = paired.conversion_metadata(
        cell_id=info["cell_id"],
        skip_seconds=window["skip_s"],
        duration_s=(info["end_frame"] - info["start_frame"]) / fs,
        patch_sample_rate_hz=info["patch_sample_rate_hz"],
        spike_source=info["spike_source"],
        template_metadata=result.metadata,
        sampling_frequency=fs,
        num_channels=traces.get_num_channels(),
        peak_channel=result.peak_channel,
        gt_electrode_chan_idx=info["gt_electrode_chan_idx"],
        channel_locations=locations,
        bad_channel_ids=info["bad_channel_ids"],
        n_spikes_total=info["n_spikes_total"],
        segment_duration_s=settings["segment_s"],
        train_fraction=settings["train_fraction"],
        mode=info["mode"],
    )
    paired.write_json(sm.output.metadata, metadata)
    paired.write_templates_npz(
        sm.output.templates, result.templates, fs, locations,
        result.metadata["nbefore"], result.metadata["nafter"],
    )  # fmt: skip


run(snakemake, main)  # noqa: F821

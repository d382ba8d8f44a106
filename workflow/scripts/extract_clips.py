import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

import json
import logging

from spikeforge.anatomy import read_anatomy
from spikeforge.matio import atomic_directory, atomic_path, save_mat
from spikeforge.nmm import Detection, Preprocessing, process_region
from spikeforge.runner import run


def main(sm):
    region = int(sm.wildcards.region)
    fwd = read_anatomy(sm.input.anatomy).leadfield
    detection = Detection(
        threshold_mv=sm.params.detection["threshold_mv"],
        target_snr_db=sm.params.detection["target_snr_db"],
    )
    with atomic_directory(sm.output.clips) as staging:
        written = []

        def save_clip(clip):
            # j counts from 1 and continues across iterations, as DeepSIF numbers its clips.
            written.append(len(written) + 1)
            save_mat(staging / f"nmm_{written[-1]}.mat", {"data": clip})

        result = process_region(
            sm.params.raw_folder, region, sm.params.iterations, fwd,
            Preprocessing(**sm.params.preprocessing), detection, on_clip=save_clip,
        )  # fmt: skip
    for message in result.messages:
        logging.warning(message)
        print(f"spikeforge: warning: {message}", file=sys.stderr)
    clips = [
        {
            "j": j,
            "iteration": result.iteration[j - 1],
            "peak_time": result.peak_time[j - 1],
            "clip_start": result.clip_start[j - 1],
            "alpha": result.alpha[j - 1],
        }
        for j in written
    ]
    info = {"region": region, "clips": clips, "messages": result.messages}
    with atomic_path(sm.output.info, suffix=".json") as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    logging.info("region %d: %d clips", region, len(clips))


run(snakemake, main)  # noqa: F821

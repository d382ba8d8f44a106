rule mock_spike_clips:
    input:
        anatomy=EEG.anatomy,
    output:
        directory(EEG.mock_clips),
    log:
        EEG.logs["mock_spike_clips"],
    conda:
        "../../../envs/spikeforge.yaml"
    threads: 4
    resources:
        # each worker holds one clip at a time
        **resources.per_attempt(resources.DEFAULT_MB * 4),
    params:
        clips_per_region=EEG.cfg["spike_library"]["mock_clips_per_region"],
        seed=EEG.seed,
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/mock_spike_clips.py"


rule spike_library:
    input:
        **EEG.library_inputs(),
        anatomy=EEG.anatomy,
    output:
        EEG.library,
    log:
        EEG.logs["spike_library"],
    conda:
        "../../../envs/spikeforge.yaml"
    threads: 2
    resources:
        **resources.per_attempt(
            resources.eeg_mem_mb(EEG, "spike_library"),
            resources.eeg_runtime(EEG, "spike_library"),
        ),
    params:
        folder=lambda wildcards, input: clip_root(input.clips),
        regions=EEG.library_regions(),
        clip_key=EEG.cfg["spike_library"]["clip_key"],
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/spike_library.py"

rule mock_spike_clips:
    input:
        anatomy="results/anatomy/anatomy.h5",
    output:
        directory(f"{DEMO}/nmm_spikes"),
    log:
        "logs/spike_library/mock_spike_clips.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        clips_per_region=config["spike_library"]["mock_clips_per_region"],
        seed=config["seed"],
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/mock_spike_clips.py"


rule spike_library:
    input:
        unpack(lambda wildcards: library_clip_inputs()),
        anatomy="results/anatomy/anatomy.h5",
    output:
        "results/spike_library/library.h5",
    log:
        "logs/spike_library/spike_library.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        folder=clip_folder(),
        clip_key=config["spike_library"]["clip_key"],
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/spike_library.py"

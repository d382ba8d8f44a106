rule mock_raw_nmm:
    input:
        anatomy=EEG.anatomy,
    output:
        directory(EEG.mock_raw_region),
    log:
        EEG.logs["mock_raw_nmm"],
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(
            resources.eeg_mem_mb(EEG, "extract_clips"),
            resources.eeg_runtime(EEG, "extract_clips"),
        ),
    params:
        iterations=EEG.raw_cfg["iterations"],
        duration_s=EEG.raw_cfg["mock"]["duration_s"],
        chunk_s=EEG.raw_cfg["mock"]["chunk_s"],
        seed=EEG.seed,
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/mock_raw_nmm.py"


rule simulate_tvb:
    input:
        connectivity=EEG.raw_cfg["tvb"]["connectivity"] or [],
    output:
        EEG.tvb_outputs(),
    log:
        EEG.logs["simulate_tvb"],
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(
            resources.eeg_mem_mb(EEG, "simulate_tvb"),
            resources.eeg_runtime(EEG, "simulate_tvb"),
        ),
    params:
        out_dir=lambda wildcards, output: str(Path(output[0]).parents[1]),
        duration_s=EEG.raw_cfg["tvb"]["duration_s"],
        chunk_s=EEG.raw_cfg["tvb"]["chunk_s"],
        fsaverage_remap=EEG.cfg["preprocessing"]["fsaverage_remap"],
        seed=EEG.seed,
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/simulate_tvb.py"


rule extract_clips:
    input:
        raw=lambda wildcards: EEG.raw_input(int(wildcards.region)),
        anatomy=EEG.anatomy,
    output:
        clips=directory(EEG.clips),
        info=EEG.clip_info,
    log:
        EEG.logs["extract_clips"],
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(
            resources.eeg_mem_mb(EEG, "extract_clips"),
            resources.eeg_runtime(EEG, "extract_clips"),
        ),
    params:
        raw_folder=EEG.raw_folder(),
        iterations=EEG.raw_cfg["iterations"],
        expected_chunks=EEG.expected_raw_chunks(),
        preprocessing=EEG.cfg["preprocessing"],
        detection=EEG.cfg["detection"],
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/extract_clips.py"


rule simulate_clips:
    input:
        connectivity=EEG.raw_cfg["simulate"]["connectivity"] or [],
        anatomy=EEG.anatomy,
    output:
        directory(EEG.simulated_clips),
    log:
        EEG.logs["simulate_clips"],
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(
            resources.eeg_mem_mb(EEG, "simulate_clips"),
            resources.eeg_runtime(EEG, "simulate_clips"),
        ),
    params:
        regions=lambda wildcards: EEG.simulate_batch_regions(wildcards.batch),
        iterations=EEG.raw_cfg["iterations"],
        preprocessing=EEG.cfg["preprocessing"],
        detection=EEG.cfg["detection"],
        simulate=EEG.raw_cfg["simulate"],
        seed=EEG.seed,
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/simulate_clips.py"

rule synthesize_shard:
    input:
        anatomy=EEG.anatomy,
        library=EEG.library,
        plan=lambda wildcards: path(
            EEG.plan_part,
            split=wildcards.split,
            plan_part=EEG.plan_part_of(wildcards.split, wildcards.shard),
        ),
    output:
        EEG.shard,
    log:
        EEG.logs["synthesize_shard"],
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(
            resources.eeg_mem_mb(EEG, "synthesize_shard"),
            resources.eeg_runtime(EEG, "synthesize_shard"),
        ),
    params:
        sample_range=lambda wildcards: EEG.shard_range(wildcards.split, wildcards.shard),
        noise=EEG.cfg["synthesis"]["noise"],
        label_pad=EEG.cfg["export"]["label_pad"],
        compression=EEG.cfg["export"]["hdf5"]["compression"],
        compression_level=EEG.cfg["export"]["hdf5"]["compression_level"],
        seed=EEG.seed,
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/synthesize_shard.py"


rule split_index:
    input:
        lambda wildcards: [
            path(EEG.shard, split=wildcards.split, shard=k)
            for k in EEG.shards(wildcards.split)
        ],
    output:
        EEG.split_index,
    log:
        EEG.logs["split_index"],
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(resources.DEFAULT_MB),
    params:
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/split_index.py"

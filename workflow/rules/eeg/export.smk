rule export_mat_shard:
    input:
        EEG.shard,
    output:
        directory(EEG.mat_shard),
    log:
        EEG.logs["export_mat_shard"],
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(resources.DEFAULT_MB),
    params:
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/export_mat_shard.py"


rule export_mat_metadata:
    input:
        shards=lambda wildcards: [
            path(EEG.mat_shard, split=wildcards.split, shard=k)
            for k in EEG.shards(wildcards.split)
        ],
        anatomy=EEG.anatomy,
        plan=EEG.plan,
    output:
        EEG.mat_metadata,
    log:
        EEG.logs["export_mat_metadata"],
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(resources.DEFAULT_MB),
    params:
        start=lambda wildcards: EEG.split_range(wildcards.split)[0],
        leadfield=EEG.anatomy_inputs()["leadfield"],
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/export_mat_metadata.py"


rule export_deepsif:
    input:
        plan=EEG.plan,
        library=EEG.library,
    output:
        metadata=EEG.deepsif_metadata,
        clips=EEG.deepsif_clips,
    log:
        EEG.logs["export_deepsif"],
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(
            resources.eeg_mem_mb(EEG, "export_deepsif"),
            resources.eeg_runtime(EEG, "export_deepsif"),
        ),
    params:
        sample_range=lambda wildcards: EEG.split_range(wildcards.split),
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/export_deepsif.py"

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
        plan_folder=lambda wildcards: path(EEG.plan_folder, split=wildcards.split),
        leadfield=EEG.anatomy_inputs()["leadfield"],
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/export_mat_metadata.py"


rule export_deepsif:
    input:
        plan=[part for split in EEG.splits for part in EEG.plan_part_paths(split)],
        library=EEG.library,
    output:
        metadata=[path(EEG.deepsif_metadata, split=split) for split in EEG.splits],
        clips=[path(EEG.deepsif_clips, split=split) for split in EEG.splits],
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
        plan_parts={split: EEG.plan_part_paths(split) for split in EEG.splits},
        metadata={
            split: path(EEG.deepsif_metadata, split=split) for split in EEG.splits
        },
        clips={split: path(EEG.deepsif_clips, split=split) for split in EEG.splits},
        all_scale_ratios=EEG.cfg["export"]["deepsif"]["scale_ratios"] == "all",
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/export_deepsif.py"

if EEG.plan_cfg["source"] == "deepsif":

    rule import_deepsif_plan:
        input:
            metadata=lambda wildcards: EEG.plan_cfg["deepsif_metadata"][wildcards.split],
            anatomy=EEG.anatomy,
            library=EEG.library,
        output:
            EEG.imported_plan,
        log:
            EEG.logs["import_deepsif_plan"],
        conda:
            "../../../envs/spikeforge.yaml"
        resources:
            **resources.per_attempt(
                resources.eeg_mem_mb(EEG, "import_deepsif_plan"),
                resources.eeg_runtime(EEG, "import_deepsif_plan"),
            ),
        params:
            seed=EEG.seed,
            version=SPIKEFORGE_VERSION,
        script:
            "../../scripts/import_deepsif_plan.py"


rule sample_plan:
    input:
        unpack(sample_plan_inputs),
    output:
        EEG.plan_part,
    log:
        EEG.logs["sample_plan"],
    # Plans first: every shard's plan is ready early and synthesis then keeps both cores.
    priority: 1
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(
            resources.eeg_mem_mb(EEG, "sample_plan"),
            resources.eeg_runtime(EEG, "sample_plan"),
        ),
    params:
        sample_range=lambda wildcards: EEG.plan_part_range(
            wildcards.split, wildcards.plan_part
        ),
        settings=lambda wildcards: EEG.plan_settings(wildcards.split),
        expected_regions=EEG.raw_regions() if EEG.clip_source == "raw" else None,
        report_regions_without_clips=lambda wildcards: int(wildcards.plan_part) == 0,
        seed=EEG.seed,
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/sample_plan.py"

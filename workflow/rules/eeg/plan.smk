if EEG.plan_cfg["source"] == "deepsif":

    rule import_deepsif_plan:
        input:
            metadata=lambda wildcards: EEG.plan_cfg["deepsif_metadata"][wildcards.split],
            anatomy=EEG.anatomy,
            library=EEG.library,
        output:
            EEG.plan,
        log:
            EEG.logs["sample_plan"],
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

else:

    rule sample_plan:
        input:
            anatomy=EEG.anatomy,
            library=EEG.library,
        output:
            EEG.plan,
        log:
            EEG.logs["sample_plan"],
        conda:
            "../../../envs/spikeforge.yaml"
        resources:
            **resources.per_attempt(
                resources.eeg_mem_mb(EEG, "sample_plan"),
                resources.eeg_runtime(EEG, "sample_plan"),
            ),
        params:
            settings=lambda wildcards: EEG.plan_settings(wildcards.split),
            expected_regions=EEG.raw_regions() if EEG.clip_source == "raw" else None,
            seed=EEG.seed,
            version=SPIKEFORGE_VERSION,
        script:
            "../../scripts/sample_plan.py"

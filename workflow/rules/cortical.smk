if CORTICAL.source == "mock":

    rule mock_cortical:
        output:
            directory(CORTICAL.mock_variant),
        log:
            CORTICAL.logs["mock_datastores"],
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            **resources.per_attempt(resources.DEFAULT_MB),
        params:
            spec=lambda wildcards: CORTICAL.mock_spec(wildcards.variant),
            parts=lambda wildcards: [int(p) for p in CORTICAL.parts[wildcards.variant]],
            version=SPIKEFORGE_VERSION,
        script:
            "../scripts/mock_cortical.py"


# One rule per (variant, sheet), its memory set from the sheet's size; one job per part. The
# Slurm profile puts these rules in the group "cortical", several jobs per submission. A dry
# run builds thousands of these jobs: every callable below costs time per job.
for cortical_variant, cortical_sheet in CORTICAL.rules():

    rule:
        name:
            CORTICAL.rule_name(cortical_variant, cortical_sheet)
        input:
            # The variant's folder, not the part's: no input function runs per job (the job
            # finds its part in it); ancient, so a part added there reruns nothing else.
            part=cortical_variant_input(cortical_variant),
        output:
            cortical_outputs(cortical_variant, cortical_sheet),
        log:
            path(
                CORTICAL.logs["export"],
                variant=cortical_variant,
                sheet=cortical_sheet,
                part="{part}",
            ),
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            **resources.per_attempt(resources.cortical_mem_mb(CORTICAL, cortical_sheet)),
        params:
            settings=CORTICAL.settings(cortical_variant, cortical_sheet),
            version=SPIKEFORGE_VERSION,
        script:
            "../scripts/export_cortical.py"

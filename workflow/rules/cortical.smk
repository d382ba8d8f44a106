if CORTICAL.source == "mock":

    rule mock_cortical:
        output:
            directory(CORTICAL.mock_root + "/{variant}"),
        log:
            CORTICAL.logs["mock_datastores"],
        conda:
            "../../envs/spikeforge.yaml"
        params:
            spec=lambda wildcards: CORTICAL.mock_spec(wildcards.variant),
            parts=lambda wildcards: [int(p) for p in CORTICAL.parts[wildcards.variant]],
            version=SPIKEFORGE_VERSION,
        script:
            "../scripts/mock_cortical.py"


# One job per (sheet, part) of each variant; on a cluster, group_size of them go together.
for cortical_variant in CORTICAL.variants():

    rule:
        name:
            f"export_cortical_{cortical_variant}"
        input:
            unpack(
                lambda wildcards, variant=cortical_variant: CORTICAL.inputs(
                    variant, wildcards.part
                )
            ),
        output:
            CORTICAL.outputs(cortical_variant),
        log:
            path(
                CORTICAL.logs["export"],
                variant=cortical_variant,
                sheet="{sheet}",
                part="{part}",
            ),
        group:
            "cortical"
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            mem_mb=lambda wildcards: resources.cortical_mem_mb(
                CORTICAL, wildcards.sheet
            ),
        params:
            settings=lambda wildcards, variant=cortical_variant: CORTICAL.settings(
                variant, wildcards.sheet, wildcards.part
            ),
            part_path=lambda wildcards, variant=cortical_variant: CORTICAL.parts[
                variant
            ][wildcards.part],
            version=SPIKEFORGE_VERSION,
        script:
            "../scripts/export_cortical.py"

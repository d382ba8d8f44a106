if PAIRED.source == "mock":

    rule mock_spe1_probe:
        output:
            PAIRED.mock_chan_map,
        log:
            PAIRED.logs["mock_spe1_probe"],
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            **resources.per_attempt(resources.DEFAULT_MB),
        params:
            version=SPIKEFORGE_VERSION,
        script:
            "../scripts/mock_spe1_probe.py"

    rule mock_spe1_cell:
        output:
            cell=directory(PAIRED.mock_cell),
            row=PAIRED.mock_row,
        log:
            PAIRED.logs["mock_spe1_cell"],
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            **resources.per_attempt(resources.paired_mem_mb(PAIRED, "mock_spe1_cell")),
        params:
            duration_s=PAIRED.cfg["mock"]["duration_s"],
            seed=PAIRED.seed,
            version=SPIKEFORGE_VERSION,
        script:
            "../scripts/mock_spe1_cell.py"

    rule mock_spe1_summary:
        input:
            [path(PAIRED.mock_row, cell=cell) for cell in PAIRED.cells],
        output:
            PAIRED.mock_summary,
        log:
            PAIRED.logs["mock_spe1_summary"],
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            **resources.per_attempt(resources.DEFAULT_MB),
        params:
            version=SPIKEFORGE_VERSION,
        script:
            "../scripts/mock_spe1_summary.py"


rule convert_cell:
    input:
        unpack(convert_cell_inputs),
    output:
        **{
            name: directory(pattern) if name in ("train", "test") else pattern
            for name, pattern in PAIRED.outputs.items()
        },
    log:
        PAIRED.logs["convert_cell"],
    conda:
        "../../envs/spikeforge.yaml"
    threads: 2
    resources:
        **resources.per_attempt(
            lambda wildcards, threads: resources.paired_mem_mb(
                PAIRED, "convert_cell", threads
            ),
            resources.paired_runtime(PAIRED, "convert_cell"),
        ),
    params:
        settings=lambda wildcards: PAIRED.cell_settings(wildcards.cell),
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/convert_cell.py"

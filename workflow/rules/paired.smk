rule mock_spe1:
    output:
        directory(f"{DEMO}/spe1"),
    log:
        "logs/paired/mock_spe1.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        cells=PAIRED["cells"],
        duration_s=PAIRED["mock"]["duration_s"],
        seed=config["seed"],
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/mock_spe1.py"


rule convert_cell:
    input:
        unpack(paired_inputs),
    output:
        train=directory("results/paired/{cell}/train"),
        test=directory("results/paired/{cell}/test"),
        dataset_dict="results/paired/{cell}/dataset_dict.json",
        metadata="results/paired/{cell}/conversion_metadata.json",
        templates="results/paired/{cell}/templates.npz",
    log:
        "logs/paired/convert_{cell}.log",
    conda:
        "../../envs/spikeforge.yaml"
    threads: 2
    params:
        paired=PAIRED,
        spe1=lambda wildcards: (
            spe1_paths() if PAIRED["source"] != "recordings" else None
        ),
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/convert_cell.py"

rule sample_plan:
    input:
        unpack(plan_inputs),
    output:
        "results/plan/{split}.h5",
    log:
        "logs/plan/{split}.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        plan=PLAN,
        split_settings=lambda wildcards: config["splits"][wildcards.split],
        n_samples=lambda wildcards: split_size(wildcards.split),
        expected_regions=lambda wildcards: (
            raw_regions() if CLIP_SOURCE == "raw" else None
        ),
        seed=config["seed"],
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/sample_plan.py"

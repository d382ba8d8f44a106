rule synthesize_shard:
    input:
        anatomy="results/anatomy/anatomy.h5",
        library="results/spike_library/library.h5",
        plan="results/plan/{split}.h5",
    output:
        "results/{split}/hdf5/shard_{shard}.h5",
    log:
        "logs/synthesis/{split}_{shard}.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        sample_range=lambda wildcards: shard_range(wildcards.split, wildcards.shard),
        noise=config["synthesis"]["noise"],
        label_pad=EXPORT["label_pad"],
        compression=EXPORT["hdf5"]["compression"],
        compression_level=EXPORT["hdf5"]["compression_level"],
        seed=config["seed"],
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/synthesize_shard.py"

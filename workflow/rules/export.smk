rule export_mat_shard:
    input:
        "results/{split}/hdf5/shard_{shard}.h5",
    output:
        directory("results/{split}/mat/shard_{shard}"),
    log:
        "logs/export/mat_{split}_{shard}.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/export_mat_shard.py"


rule export_mat_metadata:
    input:
        shards=lambda wildcards: expand(
            "results/{{split}}/mat/shard_{shard}", shard=shards(wildcards.split)
        ),
        anatomy="results/anatomy/anatomy.h5",
        plan="results/plan/{split}.h5",
    output:
        "results/{split}/mat/extraction_metadata.mat",
    log:
        "logs/export/mat_metadata_{split}.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        start=lambda wildcards: split_range(wildcards.split)[0],
        leadfield=lambda wildcards: anatomy_inputs()["leadfield"],
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/export_mat_metadata.py"


rule export_deepsif:
    input:
        plan="results/plan/{split}.h5",
        library="results/spike_library/library.h5",
    output:
        metadata="results/deepsif/{split}_sample_source1.mat",
        clips="results/deepsif/{split}_sample_nmm.h5",
    log:
        "logs/export/deepsif_{split}.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        sample_range=lambda wildcards: split_range(wildcards.split),
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/export_deepsif.py"

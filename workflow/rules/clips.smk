rule mock_raw_nmm:
    input:
        anatomy="results/anatomy/anatomy.h5",
    output:
        directory(f"{DEMO}/raw_nmm/a{{region}}"),
    log:
        "logs/clips/mock_raw_nmm_{region}.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        iterations=RAW["iterations"],
        duration_s=RAW["mock"]["duration_s"],
        chunk_s=RAW["mock"]["chunk_s"],
        seed=config["seed"],
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/mock_raw_nmm.py"


rule simulate_tvb:
    input:
        connectivity=lambda wildcards: RAW["tvb"]["connectivity"],
    output:
        expand(
            "results/raw_nmm/a{{region}}/mean_iter_{{iteration}}_a_iter_{{region}}_{k}.mat",
            k=range(tvb_chunk_count()),
        ),
    log:
        "logs/clips/simulate_tvb_{region}_{iteration}.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        duration_s=RAW["tvb"]["duration_s"],
        chunk_s=RAW["tvb"]["chunk_s"],
        seed=config["seed"],
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/simulate_tvb.py"


rule extract_clips:
    input:
        raw=raw_input,
        anatomy="results/anatomy/anatomy.h5",
    output:
        clips=directory("results/nmm_spikes/a{region}"),
        info="results/nmm_spikes/clip_info/a{region}.json",
    log:
        "logs/clips/extract_clips_{region}.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        raw_folder=lambda wildcards: raw_folder(),
        iterations=RAW["iterations"],
        preprocessing=config["preprocessing"],
        detection=config["detection"],
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/extract_clips.py"

rule demo_anatomy:
    output:
        leadfield=f"{DEMO}/anatomy/leadfield.mat",
        region_mapping=f"{DEMO}/anatomy/region_mapping.mat",
        centres=f"{DEMO}/anatomy/centres.mat",
    log:
        "logs/anatomy/demo_anatomy.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        n_regions=config["anatomy"]["demo"]["n_regions"],
        n_channels=config["anatomy"]["demo"]["n_channels"],
        seed=config["seed"],
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/demo_anatomy.py"


rule anatomy:
    input:
        unpack(lambda wildcards: anatomy_inputs()),
    output:
        "results/anatomy/anatomy.h5",
    log:
        "logs/anatomy/anatomy.log",
    conda:
        "../../envs/spikeforge.yaml"
    params:
        leadfield_key=config["anatomy"]["files"]["leadfield_key"],
        neighbours_key=config["anatomy"]["files"]["neighbours_key"],
        centres_key=config["anatomy"]["files"]["centres_key"],
        distances_key=config["anatomy"]["files"]["distances_key"],
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/anatomy.py"

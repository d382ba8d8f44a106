rule demo_anatomy:
    output:
        **EEG.demo_anatomy,
    log:
        EEG.logs["demo_anatomy"],
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(resources.DEFAULT_MB),
    params:
        n_regions=EEG.cfg["anatomy"]["demo"]["n_regions"],
        n_channels=EEG.cfg["anatomy"]["demo"]["n_channels"],
        seed=EEG.seed,
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/demo_anatomy.py"


rule anatomy:
    input:
        **EEG.anatomy_inputs(),
    output:
        EEG.anatomy,
    log:
        EEG.logs["anatomy"],
    conda:
        "../../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(resources.DEFAULT_MB),
    params:
        variables={
            f"{name}_key": EEG.cfg["anatomy"]["files"][f"{name}_key"]
            for name in ("leadfield", "neighbours", "centres", "distances")
        },
        version=SPIKEFORGE_VERSION,
    script:
        "../../scripts/anatomy.py"

# One job per (source item, format): a format's job never waits for another's.
for spiketrain_format in SPIKETRAINS.formats:

    rule:
        name:
            f"export_{spiketrain_format}"
        input:
            unpack(spiketrain_inputs),
        output:
            (
                directory(SPIKETRAINS.outputs[spiketrain_format])
                if spiketrain_format == "phy"
                else SPIKETRAINS.outputs[spiketrain_format]
            ),
        log:
            SPIKETRAINS.logs[spiketrain_format],
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            **resources.per_attempt(resources.DEFAULT_MB),
        params:
            settings=spiketrain_settings,
            fmt=spiketrain_format,
            version=SPIKEFORGE_VERSION,
        script:
            "../scripts/export_spiketrains.py"

if EEG:

    rule qc_eeg_split:
        input:
            index=EEG.split_index,
            plan=path(EEG.plan_part, split="{split}", plan_part="0000"),
            anatomy=EEG.anatomy,
        output:
            samples=report(
                EEG.qc["samples"],
                caption="../report/eeg_samples.rst",
                category="EEG",
                subcategory="{split}",
                labels={"split": "{split}", "figure": "samples"},
            ),
            snr=report(
                EEG.qc["snr"],
                caption="../report/eeg_snr.rst",
                category="EEG",
                subcategory="{split}",
                labels={"split": "{split}", "figure": "sensor SNR"},
            ),
            plan=report(
                EEG.qc["plan"],
                caption="../report/eeg_plan.rst",
                category="EEG",
                subcategory="{split}",
                labels={"split": "{split}", "figure": "plan"},
            ),
        log:
            EEG.logs["qc_eeg_split"],
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            # matplotlib and a bounded read of the outputs
            **resources.per_attempt(resources.DEFAULT_MB),
        params:
            sensor_snrs_db=lambda wildcards: EEG.plan_settings(wildcards.split)[
                "sensor_snrs_db"
            ],
            channel_names=EEG.channel_names(),
        script:
            "../scripts/qc_eeg_split.py"

    rule qc_eeg_library:
        input:
            EEG.library,
        output:
            report(
                EEG.qc["clips"],
                caption="../report/eeg_clips.rst",
                category="EEG",
                subcategory="spike library",
                labels={"figure": "spike library"},
            ),
        log:
            EEG.logs["qc_eeg_library"],
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            # matplotlib and a bounded read of the outputs
            **resources.per_attempt(resources.DEFAULT_MB),
        script:
            "../scripts/qc_eeg_library.py"


if PAIRED:

    rule qc_paired_cell:
        input:
            **{key: path(p, cell="{cell}") for key, p in PAIRED.outputs.items()},
        output:
            report(
                PAIRED.qc_cell,
                caption="../report/paired_cell.rst",
                category="Paired recordings",
                subcategory="{cell}",
                labels={"cell": "{cell}"},
            ),
        log:
            PAIRED.logs["qc_paired_cell"],
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            # matplotlib and a bounded read of the outputs
            **resources.per_attempt(resources.DEFAULT_MB),
        params:
            cell_dir=lambda wildcards, input: str(Path(input.metadata).parent),
        script:
            "../scripts/qc_paired_cell.py"


if SPIKETRAINS and SPIKETRAINS.qc_format():

    rule qc_spiketrains_item:
        input:
            SPIKETRAINS.outputs[SPIKETRAINS.qc_format()],
        output:
            report(
                SPIKETRAINS.qc_item,
                caption="../report/spiketrains_item.rst",
                category="Spike trains",
                subcategory="{source}",
                labels={"source": "{source}", "item": "{item}"},
            ),
        log:
            SPIKETRAINS.logs["qc"],
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            # matplotlib and one item's spike times
            **resources.per_attempt(resources.DEFAULT_MB),
        params:
            title=lambda wildcards: f"{wildcards.source} {wildcards.item}",
        script:
            "../scripts/qc_spiketrains_item.py"


if CORTICAL and CORTICAL.qc_targets():

    rule qc_cortical_sheet:
        input:
            unpack(
                lambda wildcards: CORTICAL.qc_inputs(
                    wildcards.variant, wildcards.sheet
                )
            ),
        output:
            report(
                CORTICAL.qc_figure(),
                caption="../report/cortical_sheet.rst",
                category="Cortical sheets",
                subcategory="{variant}",
                labels={"variant": "{variant}", "sheet": "{sheet}"},
            ),
        log:
            CORTICAL.logs["qc"],
        wildcard_constraints:
            sheet=r"[A-Za-z0-9_]+",
        conda:
            "../../envs/spikeforge.yaml"
        resources:
            # matplotlib and one part's counts of one sheet
            **resources.per_attempt(resources.DEFAULT_MB),
        params:
            bin_ms=CORTICAL.cfg["bin_ms"],
        script:
            "../scripts/qc_cortical_sheet.py"

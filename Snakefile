from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/anatomy.smk"
include: "workflow/rules/clips.smk"
include: "workflow/rules/spike_library.smk"
include: "workflow/rules/plan.smk"
include: "workflow/rules/synthesis.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/paired.smk"


rule all:
    default_target: True
    input:
        final_outputs(),

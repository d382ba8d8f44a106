# spikeforge: electrophysiology and neural-mass simulations to ML-ready datasets.
#
#   snakemake --cores 2                          the embedded demo (config/config.yaml)
#   snakemake --cores 2 --configfile my.yaml     a run defined by my.yaml alone
#
# A run writes under its run_dir (default: the folder snakemake runs in):
#
#   results/run.json                             the config this folder belongs to
#   results/anatomy/anatomy.h5                   eeg: validated head model
#   results/raw_nmm/a{r}/mean_iter_{m}_a_iter_{r}_{k}.mat      eeg: TVB recordings (raw.source tvb)
#   results/nmm_spikes/a{r}/nmm_{j}.mat          eeg: clips extracted per spiking region
#   results/nmm_spikes/clip_info/a{r}.json       eeg: their provenance
#   results/nmm_spikes/batch_{b}/                eeg: raw.source simulate: per job, its
#                                                regions' a{r}/ and clip_info/a{r}.json
#   results/spike_library/library.h5             eeg: every clip once, with its projection
#   results/plan/{split}/part_{p}.h5             eeg: sources, patches, scales, SNRs of
#                                                ~10,000 samples' whole shards
#   results/{split}/hdf5/shard_{k}.h5            eeg: synthesised samples
#   results/{split}/hdf5/index.json              eeg: the split's shards, in sample order
#   results/{split}/mat/shard_{k}/sample_{i}.mat eeg: per-sample MAT layout
#   results/deepsif/{split}_sample_*.{mat,h5}    eeg: DeepSIF's loader format (the splits'
#                                                _nmm.h5 are hard links to one file)
#   results/paired/{cell}/                       paired: train/, test/, metadata, templates
#   results/sessions/patient_data/{p}/session_{n}/   sessions: spikes, LFP, events, DAQ and
#                                                watch logs in epiphyte's layout
#   results/sessions/movie_annotation/           sessions: the movie's label files
#   results/cortical/{variant}/image_ids/image_ids_{sheet}_{part}.npy    cortical: per part,
#   results/cortical/{variant}/neuron_ids/neuron_ids_{sheet}_{part}.npy  the images, neurons
#   results/cortical/{variant}/spikes/{sheet}/spikes_[trial_{i}_]{sheet}_{part}.npz   and
#                                                CSR spike counts (windows/{sheet}/ likewise)
#   results/spiketrains/{source}/{item}/         spiketrains: {raster,ragged,group,paired}.h5,
#                                                units.nwb, units.mat, phy/ (one job per format)
#   resources/demo/...                           generated inputs (demo head model, mocks)
#   <output>.manifest.json                       beside every output: its files' sizes and
#                                                sha256, what made it (spikeforge-verify)
#   results/qc/{chain}/...png                    QC figures (qc.enabled), for
#                                                snakemake --report report.html
#   logs/{chain step}/...                        one log per job
from snakemake.utils import min_version
from spikeforge.workflow.config import DEMO_CONFIG

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: DEMO_CONFIG


include: "workflow/rules/common.smk"


report: "workflow/report/workflow.rst"


if EEG:

    include: "workflow/rules/eeg/anatomy.smk"
    include: "workflow/rules/eeg/clips.smk"
    include: "workflow/rules/eeg/library.smk"
    include: "workflow/rules/eeg/plan.smk"
    include: "workflow/rules/eeg/synthesis.smk"
    include: "workflow/rules/eeg/export.smk"


if PAIRED:

    include: "workflow/rules/paired.smk"


if SESSIONS:

    include: "workflow/rules/sessions.smk"


if CORTICAL:

    include: "workflow/rules/cortical.smk"


if SPIKETRAINS:

    include: "workflow/rules/spiketrains.smk"


if RUN.qc:

    include: "workflow/rules/qc.smk"


rule all:
    default_target: True
    input:
        RUN.targets(),

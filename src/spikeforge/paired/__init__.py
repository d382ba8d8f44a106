"""The paired-recording chain: paired patch-clamp / Neuropixels recordings (SPE-1 layout) or any
recording SpikeInterface reads, to per-cell Arrow datasets with ground-truth spikes and
templates. One step a module:

  spe1         the SPE-1 layout: channel maps (chanMap.mat, npx_map.csv), summary, cell files
  recordings   other recordings through SpikeInterface's readers; the analysis window
  truth        ground-truth spikes: wc_spike_samples.npy, patch-trace detection, peak detection
  kernels      the fast bandpass and median reference (bit-identical to SpikeInterface's)
  badchannels  SpikeInterface's coherence+psd detector, labelled inside the streaming pass
  streaming    the one streaming pass over a window; preprocess (saved binary folder)
  templates    the peak-aligned mean template
  arrow        segments and their Arrow rows
  convert      one cell in one pass: traces, bad channels, template, Arrow datasets
  metadata     conversion_metadata.json and templates.npz
  cell         the convert_cell job: a configured cell, start to end
  mock         mock cells in the SPE-1 layout with known ground truth

Units follow the conversion this replaces: the saved traces, the `cp` column and the templates
are in the recording's stored units (ADC counts for SPE-1, 2.34375 uV per count), and the spike
times in `ctt` are in ms from the start of each segment. Memory does not grow with the
recording's length: every stage streams in chunks.
"""

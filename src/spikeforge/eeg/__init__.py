"""The EEG chain (docs/eeg-chain.md): head model, raw neural-mass recordings, spike clips,
spike library, sample plan, per-sample synthesis and the export layouts, one step a module:

  anatomy        leadfield, region graph and distances (DeepSIF's .mat files) -> anatomy.h5
  demo_anatomy   a small MNE spherical head model in the same file layout
  raw            the raw recording layout, streamed decimation, seeded mock recordings
  tvb            Jansen-Rit simulation with The Virtual Brain into the raw layout
  clips          spike detection, selection, rescaling and clip extraction per region
  library        the consolidated spike library (clips + leadfield projections)
  plan           per-sample sources, patches, weights, scale ratios and SNRs
  synthesis      the EEG of every sample
  export/        hdf5 shards + loader, per-sample MAT, DeepSIF's loader format
"""

"""Layouts of synthesised EEG: sharded HDF5 (always), per-sample MAT, DeepSIF's loader format."""

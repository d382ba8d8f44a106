"""Cortical-model spike tensors: Mozaik simulations of visual cortex (per sheet, natural images
with blanks between them) turned into the per-part training arrays a modelling group's
pipeline reads (scipy CSR spike counts, image and neuron ids).

- sheets: the model's sheets and their folder names
- mozaik: Mozaik's PickledDataStore read without Mozaik (a restricted unpickler with
  stand-ins), and a seeded mock that writes datastores with the same structure
- parts: one part's presentations of one sheet, from a datastore or an open HDF5 file
- export: the CSR files, streamed; the trimmed and re-binned windows; the Experanto layout
"""

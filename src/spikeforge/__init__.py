"""spikeforge: electrophysiology and neural-mass simulations to ML-ready datasets."""

__version__ = "0.1.0"

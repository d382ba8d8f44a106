"""File formats shared by the chains: MATLAB (v5 and v7.3), HDF5, the HF datasets layout."""

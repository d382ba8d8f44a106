"""Quality-control figures of every chain, for the Snakemake report."""

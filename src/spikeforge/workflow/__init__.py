"""What the Snakemake workflow asks of the library: the config (schema, defaults, docs), the
layout of a run (every path, split and shard), the start-up checks and size estimate, per-rule
resources, and the glue that runs a rule's script."""

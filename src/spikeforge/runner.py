"""Glue for workflow scripts: logging to the rule's log, one clear line on bad input."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from spikeforge.errors import InputError


def run(snakemake: Any, main: Callable[[Any], None]) -> None:
    """Run `main(snakemake)` with logging sent to the rule's log file.

    Bad input (InputError) ends the job with one line naming the file or key and the problem,
    written to the log and to stderr, and exit status 1. Outputs are written atomically, so
    nothing partial is left behind.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers = [logging.FileHandler(log_path, mode="w")]
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )
    try:
        main(snakemake)
    except InputError as error:
        logging.error("bad input: %s", error)
        print(f"spikeforge: error: {error}", file=sys.stderr)
        sys.exit(1)

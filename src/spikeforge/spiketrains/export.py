"""One export job: load an item's spike trains from its source, write them in one format."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spikeforge.spiketrains.formats import read_spiketrains, write_spiketrains
from spikeforge.spiketrains.model import SpikeTrains
from spikeforge.spiketrains.sources import from_paired_cell

log = logging.getLogger(__name__)


def load_source(
    settings: Mapping[str, Any], inputs: Mapping[str, str]
) -> tuple[SpikeTrains, dict[str, Any]]:
    """The item's spike trains (a converted paired cell, a generated session, or a file the
    config names) and what the item says of itself for NWB (a session: its patient, start
    time and species)."""
    if settings["source"] == "paired":
        return from_paired_cell(Path(inputs["metadata"]).parent), {}
    if settings["source"] == "sessions":
        from spikeforge.sessions.read import read_session

        session = read_session(inputs["session"])
        return session.to_spiketrains(), session.nwb_metadata()
    return read_spiketrains(
        inputs["spiketrains"],
        settings.get("format"),
        sampling_frequency=settings.get("sampling_frequency"),
        time_unit=settings.get("file_time_unit"),
    ), {}


def export_item(
    settings: Mapping[str, Any], inputs: Mapping[str, str], fmt: str, output: str
) -> None:
    trains, own_metadata = load_source(settings, inputs)
    options = {
        "time_unit": settings["time_unit"],
        "raster_bin_ms": settings["raster_bin_ms"],
        "metadata": {**settings["nwb"], **own_metadata},
    }
    write_spiketrains(trains, output, fmt, options)
    log.info(
        "%s %s: %d unit(s), %d spike(s) written as %s to %s",
        settings["source"], settings["item"], trains.n_units, trains.n_spikes, fmt, output,
    )  # fmt: skip

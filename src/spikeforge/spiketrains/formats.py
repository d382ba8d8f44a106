"""Every spike-train format in one table: name -> writer, loader, can_read.

There is no pickle format: loading a pickle runs whatever code the file names, so a spike-train
file received from someone else could not be opened safely. Every format here is plain data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from spikeforge.core.errors import InputError
from spikeforge.spiketrains import hdf5, mat, nwb, phy
from spikeforge.spiketrains.model import SpikeTrainError, SpikeTrains


@dataclass(frozen=True)
class SpikeTrainFormat:
    name: str
    filename: str  # of the export; a folder when it has no suffix
    write: Callable[..., None]
    read: Callable[..., SpikeTrains]
    can_read: Callable[[str | Path], bool]
    options: tuple[str, ...] = ()  # writer keywords the workflow passes on
    description: str = ""
    read_options: tuple[str, ...] = ()  # what files of this format may not say themselves


def _hdf5(style: str, description: str) -> SpikeTrainFormat:
    options = ("time_unit", "raster_bin_ms") if style == "raster" else ("time_unit",)
    return SpikeTrainFormat(
        name=f"hdf5_{style}",
        filename=f"{style}.h5",
        write=partial(hdf5.write_hdf5, style=style),
        read=partial(hdf5.read_hdf5, style=style),
        can_read=partial(hdf5.can_read, style=style),
        options=options,
        description=description,
        read_options=("time_unit", "sampling_frequency", "n_units"),
    )


FORMATS: dict[str, SpikeTrainFormat] = {
    f.name: f
    for f in (
        _hdf5("raster", "HDF5 units x bins spike counts"),
        _hdf5("ragged", "HDF5 spike_times + spike_times_index"),
        _hdf5("group", "HDF5 one dataset per unit under units/"),
        _hdf5("paired", "HDF5 idces + times"),
        SpikeTrainFormat(
            "nwb",
            "units.nwb",
            nwb.write_nwb,
            nwb.read_nwb,
            nwb.can_read,
            ("metadata",),
            "NWB Units",
        ),
        SpikeTrainFormat(
            "phy",
            "phy",
            phy.write_phy,
            phy.read_phy,
            phy.can_read,
            ("dat_path",),
            "KiloSort/Phy",
            ("sampling_frequency",),
        ),
        SpikeTrainFormat(
            "mat", "units.mat", mat.write_mat, mat.read_mat, mat.can_read, (), "MATLAB"
        ),
    )
}


def output_name(fmt: str) -> str:
    """The file (or folder) name of a format's export."""
    return FORMATS[fmt].filename


def write_spiketrains(
    trains: SpikeTrains, path: str | Path, fmt: str, options: Mapping[str, Any] | None = None
) -> None:
    spec = FORMATS[fmt]
    kwargs = {k: v for k, v in (options or {}).items() if k in spec.options and v is not None}
    try:
        spec.write(trains, path, **kwargs)
    except SpikeTrainError as error:
        raise InputError(path, f"cannot be written as {fmt}: {error}") from None


def detect_format(path: str | Path) -> str:
    """The one format whose can_read accepts `path`."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    for name, spec in FORMATS.items():
        if spec.can_read(path):
            return name
    raise InputError(path, f"is not spike trains in any known format ({', '.join(FORMATS)})")


def read_spiketrains(path: str | Path, fmt: str | None = None, **options: Any) -> SpikeTrains:
    """Load spike trains; the format is detected when not given."""
    name = fmt or detect_format(path)
    if name not in FORMATS:
        raise InputError(path, f"unknown spike-train format {name!r}")
    spec = FORMATS[name]
    kwargs = {k: v for k, v in options.items() if k in spec.read_options and v is not None}
    return spec.read(path, **kwargs)

"""The sheets of the cat V1 model (LSV1M) and their names on disk."""

from __future__ import annotations

SHEETS = ("X_ON", "X_OFF", "V1_Exc_L4", "V1_Inh_L4", "V1_Exc_L2/3", "V1_Inh_L2/3")
# Neurons per sheet in the full model: the default for resources and the benchmark.
FULL_SIZES = {
    "X_ON": 7_200,
    "X_OFF": 7_200,
    "V1_Exc_L4": 37_500,
    "V1_Inh_L4": 9_375,
    "V1_Exc_L2/3": 37_500,
    "V1_Inh_L2/3": 9_375,
}


def folder_name(sheet: str) -> str:
    """'V1_Exc_L2/3' -> 'V1_Exc_L23': the name in file and folder names."""
    return sheet.replace("/", "")


def sheet_of_folder(name: str) -> str:
    for sheet in SHEETS:
        if folder_name(sheet) == name:
            return sheet
    raise KeyError(name)

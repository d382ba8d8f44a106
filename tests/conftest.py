# ruff: noqa: E402  (the thread setting must precede the numpy import)
from __future__ import annotations

from spikeforge.core.threads import one_blas_thread

one_blas_thread()  # as the workflow's jobs run

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEEPSIF_ANATOMY = SHARED_DATA / "deepsif" / "anatomy"


def require_deepsif_anatomy() -> Path:
    if not (DEEPSIF_ANATOMY / "leadfield_75_20k.mat").is_file():
        pytest.skip(f"real DeepSIF anatomy not found at {DEEPSIF_ANATOMY} (../shared/data absent)")
    return DEEPSIF_ANATOMY


@pytest.fixture(scope="session")
def real_anatomy():
    from spikeforge.eeg.anatomy import load_anatomy

    folder = require_deepsif_anatomy()
    return load_anatomy(
        folder / "leadfield_75_20k.mat",
        folder / "fs_cortex_20k_region_mapping.mat",
        folder / "fs_cortex_20k_inflated.mat",
    )


CLIP_REGIONS = (0, 5, 77, 150, 301, 420, 497, 498, 640, 777, 900, 993)


@pytest.fixture(scope="session")
def real_library(real_anatomy, tmp_path_factory):
    """Mock clips (2 per region) for a dozen regions of the real leadfield, as a library."""
    from spikeforge.core.seeding import rng
    from spikeforge.eeg.library import build_library, mock_clip
    from spikeforge.io.mat import save_mat

    folder = tmp_path_factory.mktemp("clips")
    for region in CLIP_REGIONS:
        for j in (1, 2):
            clip = mock_clip(real_anatomy.n_regions, region, rng(7, "test", region, j))
            save_mat(folder / "nmm_spikes" / f"a{region}" / f"nmm_{j}.mat", {"data": clip})
    path = folder / "library.h5"
    build_library(folder / "nmm_spikes", real_anatomy.leadfield, path)
    return path


@pytest.fixture(scope="session")
def real_plan(real_anatomy, real_library):
    from spikeforge.eeg.library import Library
    from spikeforge.eeg.plan import PlanConfig, generate_plan

    cfg = PlanConfig(n_samples=48, samples_per_region=4, centre_regions=CLIP_REGIONS)
    with Library(real_library) as library:
        return generate_plan(real_anatomy, library, cfg, seed=11, split="train")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)

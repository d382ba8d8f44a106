# ruff: noqa: E402  (the thread setting must precede the numpy import)
from __future__ import annotations

from spikeforge.core.threads import one_blas_thread

one_blas_thread()  # as the workflow's jobs run

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
DEMO_CLIP_REGIONS = (0, 5, 17, 40, 61, 77, 100, 123, 150, 170, 198, 199)


@dataclass(frozen=True)
class EEGCase:
    """A head model with a spike library (2 mock clips for each of 12 regions) and a plan of
    48 samples (4 per region, region-major) that the reference tests run on."""

    kind: str  # "demo": generated here, always available; "real": DeepSIF's, from ../shared
    anatomy: Any
    library: Path
    plan: Any
    regions: tuple[int, ...]


@pytest.fixture(scope="session")
def demo_anatomy(tmp_path_factory):
    """The demo head model (MNE, no download): 200 regions, 75 channels, as the demo runs."""
    from spikeforge.eeg.anatomy import load_anatomy
    from spikeforge.eeg.demo_anatomy import write_demo_anatomy

    folder = tmp_path_factory.mktemp("demo_anatomy")
    files = [folder / name for name in ("leadfield.mat", "region_mapping.mat", "centres.mat")]
    write_demo_anatomy(*files, n_regions=200, n_channels=75, seed=20261121)
    return load_anatomy(*files)


def build_case(kind: str, anatomy: Any, regions: tuple[int, ...], folder: Path) -> EEGCase:
    from spikeforge.core.seeding import rng
    from spikeforge.eeg.library import Library, build_library, mock_clip
    from spikeforge.eeg.plan import PlanConfig, generate_plan
    from spikeforge.io.mat import save_mat

    for region in regions:
        for j in (1, 2):
            clip = mock_clip(anatomy.n_regions, region, rng(7, "test", region, j))
            save_mat(folder / "nmm_spikes" / f"a{region}" / f"nmm_{j}.mat", {"data": clip})
    path = folder / "library.h5"
    build_library(folder / "nmm_spikes", anatomy.leadfield, path)
    cfg = PlanConfig(n_samples=48, samples_per_region=4, centre_regions=regions)
    with Library(path) as library:
        plan = generate_plan(anatomy, library, cfg, seed=11, split="train")
    return EEGCase(kind, anatomy, path, plan, regions)


@pytest.fixture(scope="session", params=["demo", "real"])
def eeg_case(request) -> EEGCase:
    """The reference tests' inputs on the demo head model (always) and on DeepSIF's real
    anatomy (skipped when ../shared/data is absent)."""
    return request.getfixturevalue(f"{request.param}_case")


@pytest.fixture(scope="session")
def demo_case(demo_anatomy, tmp_path_factory) -> EEGCase:
    return build_case("demo", demo_anatomy, DEMO_CLIP_REGIONS, tmp_path_factory.mktemp("case_demo"))


@pytest.fixture(scope="session")
def real_case(real_anatomy, tmp_path_factory) -> EEGCase:
    return build_case("real", real_anatomy, CLIP_REGIONS, tmp_path_factory.mktemp("case_real"))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# Mutation testing (benchmarks/mutation.py): mutmut runs, for each mutant, the tests that called
# the mutated function while it collected its statistics. A shared fixture is built inside the
# first test that needs it, so without help every later test that reads the fixture would miss
# the functions that built it, and a mutant there would meet only the first test. This plugin
# credits a shared fixture's calls to every test that uses it; outside mutmut's statistics run
# it does nothing. It is registered as a plugin because conftest hooks in tests/ do not see the
# set-up of session-scoped fixtures.
_REQUEST = pytest.StashKey()


def _mutmut_calls() -> set[str] | None:
    import os

    if os.environ.get("MUTANT_UNDER_TEST") != "stats":
        return None
    from mutmut.state import state

    return state()._stats


class FixtureCallCredit:
    def __init__(self) -> None:
        self.calls_of: dict[tuple[str, Any], set[str]] = {}

    def credited(self, used: set[str], params: dict) -> set[str]:
        return set().union(*(
            calls for (name, param), calls in self.calls_of.items()
            if name in used and (param is None or params.get(name) == param)
        ))  # fmt: skip

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        calls = _mutmut_calls()
        if calls is None or fixturedef.scope == "function":
            yield
            return
        earlier = set(calls)
        calls.clear()
        yield
        # A fixture it requested by name may have come from the cache: credit that one's too.
        requested = set(request.fixturenames) - {fixturedef.argname}
        own = calls | self.credited(requested, {})
        self.calls_of[(fixturedef.argname, getattr(request, "param", None))] = own
        calls |= earlier

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        calls = _mutmut_calls()
        if calls is not None and _REQUEST in item.stash:
            params = item.callspec.params if hasattr(item, "callspec") else {}
            calls |= self.credited(set(item.stash[_REQUEST].fixturenames), params)
        yield


def pytest_configure(config):
    config.pluginmanager.register(FixtureCallCredit(), "spikeforge-fixture-call-credit")


@pytest.fixture(autouse=True)
def _request_of_the_test(request):
    request.node.stash[_REQUEST] = request  # its fixturenames include those fixtures requested

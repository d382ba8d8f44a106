"""Jansen-Rit neural-mass simulation with The Virtual Brain, in DeepSIF's raw layout.

One run per (spiking region r, noise setting m) writes
`out_dir/a{r}/mean_iter_{m}_a_iter_{r}_{k}.mat` for chunks k = 0, 1, ...; keys `data`
(time x regions float32, mV, = y1 - y2), `time` (1 x n float64, ms) and `A` (1 x regions,
float64). See docs/eeg-chain.md §1.

TVB (`pip install -e .[tvb]`) is imported lazily, so this module imports without it.
`connectivity_regions` reads the zip directly and never needs TVB.

Time axis: TVB's Raw monitor records every integration step after the initial state, so a run
of n steps from step s yields times (s + 1) * dt ... (s + n) * dt: the first chunk of 10 s is
0.5 ms ... 10000 ms (20000 samples), the next continues at 10000.5 ms.

Start transient: TVB draws the initial history uniformly over JansenRit's state_variable_range
(y1 up to +-500 mV), so the first few hundred ms swing through thousands of mV before settling
near -5..15 mV. Preprocessing drops the first 1000 samples (docs/eeg-chain.md §2).
"""

from __future__ import annotations

import logging
import math
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.progress import Progress
from spikeforge.core.seeding import int_seed
from spikeforge.eeg.raw import A_BACKGROUND, A_SPIKING, chunk_path, connectivity_region
from spikeforge.io.mat import save_mat

DT_MS = 0.5  # integration step (2 kHz)
# (mu, std) of the input to the pyramidal population, by iteration m.
NOISE_SETTINGS = ((0.087, 1.0), (0.08, 1.7), (0.083, 1.5))
P_MAX = 0.15
P_MIN = 0.03
V0 = 6.0
NOISY_STATE = 4  # y4: derivative of the excitatory-interneuron PSP y1

_TVB: SimpleNamespace | None = None


def _import_tvb() -> SimpleNamespace:
    """Import TVB once, undoing what its import does to the process's logging.

    On import TVB runs logging.config.fileConfig: it replaces the root logger's handlers with a
    stdout StreamHandler and a file handler (~/.tvb-temp/logs/library.log) and sets the
    `tvb`, `numba` and `matplotlib` loggers. Restore the host's root and third-party loggers,
    and keep only TVB errors, passed on to the host's handlers.
    """
    global _TVB
    if _TVB is not None:
        return _TVB
    kept = {
        name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled)
        for name, lg in (
            ("", logging.getLogger()),
            ("numba", logging.getLogger("numba")),
            ("matplotlib", logging.getLogger("matplotlib")),
        )
    }
    try:
        with warnings.catch_warnings():
            # "Geodesic distance module is unavailable" (tvb-gdist, only needed for surfaces).
            warnings.simplefilter("ignore")
            from tvb.datatypes.connectivity import Connectivity
            from tvb.simulator import coupling, integrators, models, monitors, noise, simulator
    except ImportError as exc:
        raise ImportError(
            f"the TVB simulation needs tvb-library (pip install -e .[tvb]): {exc}"
        ) from exc
    finally:
        tvb_handlers = set()
        for name, (level, handlers, propagate, disabled) in kept.items():
            lg = logging.getLogger(name) if name else logging.getLogger()
            tvb_handlers.update(h for h in lg.handlers if h not in handlers)
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate
            lg.disabled = disabled
        for name in list(logging.root.manager.loggerDict):
            lg = logging.root.manager.loggerDict[name]
            if (name == "tvb" or name.startswith("tvb.")) and isinstance(lg, logging.Logger):
                tvb_handlers.update(lg.handlers)
                lg.handlers.clear()
                lg.setLevel(logging.NOTSET)
                lg.propagate = True
        logging.getLogger("tvb").setLevel(logging.ERROR)
        for handler in tvb_handlers:
            handler.close()
    _TVB = SimpleNamespace(
        Connectivity=Connectivity,
        coupling=coupling,
        integrators=integrators,
        models=models,
        monitors=monitors,
        noise=noise,
        simulator=simulator,
    )
    return _TVB


def connectivity_regions(connectivity_zip: str | Path) -> int:
    """Number of regions of a TVB connectivity zip (rows of its centres file), without TVB."""
    path = Path(connectivity_zip)
    if not path.is_file():
        raise InputError(path, "connectivity zip not found")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.startswith("__MACOSX")]
            # TVB's reader takes the (last) member whose name contains "centres" (or "centers").
            centres = [n for n in names if "centres" in n] or [n for n in names if "centers" in n]
            if not centres:
                raise InputError(path, "no centres file in the connectivity zip")
            text = archive.read(centres[-1]).decode("utf-8", errors="replace")
    except zipfile.BadZipFile as exc:
        raise InputError(path, f"not a zip file ({exc})") from exc
    lines = (line.strip() for line in text.splitlines())
    return sum(1 for line in lines if line and not line.startswith("#"))


def whole_steps(seconds: float, key: str) -> int:
    """Integration steps in `seconds`; an InputError naming the config key unless whole."""
    steps = float(seconds) * 1000.0 / DT_MS
    n = round(steps)
    if not math.isfinite(steps) or n <= 0 or abs(steps - n) > 1e-6:
        raise InputError(key, f"{seconds} s is not a positive whole number of {DT_MS} ms steps")
    return n


def chunk_count(duration_s: float, chunk_s: float, keys: str = "eeg.raw.tvb") -> int:
    """Chunk files of one simulation; an InputError unless both are whole numbers of steps
    and chunk_s divides duration_s (`keys`: where the config holds them)."""
    chunk_steps = whole_steps(chunk_s, f"{keys}.chunk_s")
    total_steps = whole_steps(duration_s, f"{keys}.duration_s")
    if total_steps % chunk_steps:
        raise InputError(
            f"{keys}.chunk_s",
            f"chunk_s = {chunk_s} s does not divide duration_s = {duration_s} s into whole chunks",
        )
    return total_steps // chunk_steps


# JansenRit's rate constant a (1/ms), TVB's default: it scales the noise intensity below.
RATE_A = 0.1


def deepsif_run(
    spiking_region: int, iteration: int, n_regions: int, fsaverage_remap: bool = False
) -> tuple[np.ndarray, float, float]:
    """DeepSIF's run (r, m): A per connectivity region (3.5 in the column that becomes r,
    3.25 elsewhere), the mean input mu and y4's noise intensity nsig of setting m."""
    mu, std = NOISE_SETTINGS[iteration]
    a_vector = np.full(n_regions, A_BACKGROUND)
    a_vector[connectivity_region(spiking_region, fsaverage_remap)] = A_SPIKING
    nsig = (RATE_A * A_BACKGROUND * (P_MAX - P_MIN) * 0.5 * std) ** 2 / 2.0
    return a_vector, mu, nsig


def noise_seed(seed: int, spiking_region: int, iteration: int) -> int:
    """The 32-bit seed of TVB's noise stream (which also draws the initial history)."""
    return int_seed(seed, "tvb_simulation", spiking_region, iteration)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def simulate_region(
    connectivity_zip: str | Path,
    spiking_region: int,
    iteration: int,
    out_dir: str | Path,
    duration_s: float = 200.0,
    chunk_s: float = 10.0,
    seed: int = 0,
    fsaverage_remap: bool = False,
) -> list[Path]:
    """Simulate `duration_s` of Jansen-Rit activity with A = 3.5 in `spiking_region` (in the
    connectivity column that becomes it, with `fsaverage_remap`: raw.connectivity_region).

    Writes one .mat per `chunk_s` (continuing the same simulator) and returns their paths.
    Reproducible: the noise and the random initial history come from `seed`, `spiking_region`
    and `iteration` only.
    """
    if not _is_int(iteration) or not 0 <= iteration < len(NOISE_SETTINGS):
        raise InputError("eeg.raw.iterations", f"iteration must be 0, 1 or 2, got {iteration!r}")
    if not _is_int(seed) or seed < 0:
        raise InputError("seed", f"must be a non-negative integer, got {seed!r}")
    if not _is_int(spiking_region):
        raise InputError("eeg.raw.regions", f"a region must be an integer, got {spiking_region!r}")
    n_chunks = chunk_count(duration_s, chunk_s)
    chunk_steps = whole_steps(chunk_s, "eeg.raw.tvb.chunk_s")
    path = Path(connectivity_zip)
    n_regions = connectivity_regions(path)
    if not 0 <= spiking_region < n_regions:
        raise InputError(
            path,
            f"spiking region {spiking_region} out of range: the connectivity has {n_regions} "
            f"regions (0..{n_regions - 1})",
        )

    tvb = _import_tvb()
    # An absolute path: TVB resolves relative ones against the tvb_data package, if installed.
    conn = tvb.Connectivity.from_file(str(path.resolve()))
    conn.configure()
    if conn.number_of_regions != n_regions:
        raise InputError(
            path, f"TVB reads {conn.number_of_regions} regions, the centres file lists {n_regions}"
        )

    a_vector, mu, y4_nsig = deepsif_run(spiking_region, iteration, n_regions, fsaverage_remap)
    model = tvb.models.JansenRit(
        A=a_vector,
        mu=np.array([mu]),
        v0=np.array([V0]),
        p_max=np.array([P_MAX]),
        p_min=np.array([P_MIN]),
    )
    nsig = np.zeros(len(model.state_variables))
    nsig[NOISY_STATE] = y4_nsig
    integrator = tvb.integrators.HeunStochastic(
        dt=DT_MS,
        noise=tvb.noise.Additive(nsig=nsig, noise_seed=noise_seed(seed, spiking_region, iteration)),
    )
    sim = tvb.simulator.Simulator(
        model=model,
        connectivity=conn,
        coupling=tvb.coupling.SigmoidalJansenRit(a=np.array([1.0])),
        integrator=integrator,
        monitors=(tvb.monitors.Raw(),),
    )
    sim.configure()
    # The Raw monitor records the model's variables of interest (default y0..y3).
    voi = list(sim.model.variables_of_interest)
    i1, i2 = voi.index("y1"), voi.index("y2")

    written = []
    progress = Progress(duration_s, f"TVB region {spiking_region} iteration {iteration}", " s")
    for chunk in range(n_chunks):
        progress.update(chunk * chunk_s)
        # The random initial history (TVB draws it uniformly over wide state ranges) drives the
        # sigmoids far into saturation during the first ~0.5 s: exp overflows to inf, and the
        # sigmoid correctly becomes 0. Do not warn about it.
        with np.errstate(over="ignore"):
            ((time, state),) = sim.run(simulation_length=chunk_steps * DT_MS, n_steps=chunk_steps)
        data = (state[:, i1, :, 0] - state[:, i2, :, 0]).astype(np.float32)
        if data.shape != (chunk_steps, n_regions):
            raise RuntimeError(f"TVB returned {data.shape}, expected {(chunk_steps, n_regions)}")
        if not np.isfinite(data).all():
            raise RuntimeError(
                f"non-finite values in chunk {chunk} "
                f"(region {spiking_region}, iteration {iteration})"
            )
        target = chunk_path(out_dir, spiking_region, iteration, chunk)
        save_mat(
            target,
            {
                "data": data,
                "time": np.asarray(time, dtype=np.float64).reshape(1, -1),
                "A": a_vector.reshape(1, -1),
            },
        )
        written.append(target)
    return written

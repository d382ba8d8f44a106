"""Jansen-Rit neural-mass simulation without TVB: the model, coupling, delays and Heun
stochastic scheme of TVB's setup in `spikeforge.eeg.tvb`, batched over runs and compiled.

TVB spends almost all its time in the coupling: every step it evaluates the coupling sigmoid
for all N x N region pairs, although the sigmoid depends only on the source region's delayed
state and the connectivity has few non-zero weights (3.6 % at 998 regions). Here the sigmoid
is evaluated once per region and step, kept in a ring of `horizon` steps (delays are whole
steps, at most `horizon - 1`), and summed over the non-zero weights only.

What is kept from TVB, so that trajectories agree (tests/test_neural_mass.py):
- the equations of `tvb.simulator.models.JansenRit` and `tvb.simulator.coupling.
  SigmoidalJansenRit` (cmin 0, cmax 0.005, midpoint 6, r 0.56, a 1);
- delays `rint(tract_length / speed / dt)` with speed 3 mm/ms, the horizon the largest of
  them (over all pairs) plus one;
- TVB's history holds y1 and y2 and its weights in float32: the sigmoid's argument is the
  float32 difference of the float32 values, the weights are float32;
- HeunStochastic: one normal draw per step and run for the noisy state y4 (TVB's additive
  noise is zero in the other states), `sqrt(dt) * sqrt(2 nsig) * z` added to the predictor
  and to the corrected state.

A batch is any set of runs on one connectivity, each with its own A per region, mean input
mu and noise amplitude: DeepSIF's runs differ only in which region spikes and in the noise.
Memory does not grow with the simulated length: the state advances `steps` at a time.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.seeding import rng

DT_MS = 0.5
SPEED_MM_PER_MS = 3.0  # TVB's default conduction speed


@dataclass(frozen=True)
class JansenRit:
    """TVB's JansenRit parameters (its defaults, with v0 = 6 as DeepSIF sets it)."""

    a: float = 0.1
    B: float = 22.0
    b: float = 0.05
    v0: float = 6.0
    nu_max: float = 0.0025
    r: float = 0.56
    J: float = 135.0
    a_1: float = 1.0
    a_2: float = 0.8
    a_3: float = 0.25
    a_4: float = 0.25
    # SigmoidalJansenRit coupling
    c_max: float = 0.005
    c_midpoint: float = 6.0
    c_r: float = 0.56
    c_a: float = 1.0


@dataclass(frozen=True)
class Connectivity:
    """Non-zero weights as edges, in the two orders the kernel sums them in: by delay (then
    source, target), so the edges of one delay read one ring row, which stays in cache; and
    by target (then delay, source), so one run's sum per target is a gather."""

    n_regions: int
    horizon: int  # ring length: the largest delay over all pairs, plus one (as TVB)
    delay_start: np.ndarray  # [horizon + 1] int64: edges of delay d are delay_start[d]:[d+1]
    target: np.ndarray  # [nnz] int64
    source: np.ndarray  # [nnz] int64
    delay: np.ndarray  # [nnz] int64, steps
    weight: np.ndarray  # [nnz] float64 (float32 values, as TVB's history holds them)
    target_start: np.ndarray  # [n_regions + 1] int64: edges of target i in the by-target order
    by_target: np.ndarray  # [nnz] int64: the edges (indices into the arrays above) by target

    @classmethod
    def from_arrays(
        cls, weights: np.ndarray, tract_lengths: np.ndarray, dt_ms: float = DT_MS
    ) -> Connectivity:
        weights = np.asarray(weights, np.float64)
        delays = np.rint(np.asarray(tract_lengths, np.float64) / SPEED_MM_PER_MS / dt_ms)
        delays = delays.astype(np.int64)
        horizon = int(delays.max()) + 1
        rows, cols = np.nonzero(weights)
        order = np.lexsort((rows, cols, delays[rows, cols]))
        rows, cols = rows[order], cols[order]
        edge_delay = delays[rows, cols]
        by_target = np.lexsort((cols, edge_delay, rows))
        return cls(
            n_regions=weights.shape[0],
            horizon=horizon,
            delay_start=np.searchsorted(edge_delay, np.arange(horizon + 1)).astype(np.int64),
            target=rows.astype(np.int64),
            source=cols.astype(np.int64),
            delay=edge_delay,
            weight=weights[rows, cols].astype(np.float32).astype(np.float64),
            target_start=np.searchsorted(rows[by_target], np.arange(weights.shape[0] + 1)),
            by_target=by_target.astype(np.int64),
        )

    @classmethod
    def from_zip(cls, path: str | Path, dt_ms: float = DT_MS) -> Connectivity:
        """weights.txt and tract_lengths.txt of a TVB connectivity zip."""
        path = Path(path)
        try:
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.startswith("__MACOSX")]
                arrays = {}
                for key in ("weights", "tract_lengths"):
                    member = [n for n in names if Path(n).name.startswith(key)]
                    if not member:
                        raise InputError(path, f"no {key}.txt in the connectivity zip")
                    arrays[key] = np.loadtxt(archive.open(member[-1]))
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InputError(path, f"cannot read the connectivity: {exc}") from exc
        return cls.from_arrays(arrays["weights"], arrays["tract_lengths"], dt_ms)


@dataclass
class Batch:
    """Per run: A per region [B, N], mean input mu [B], noise amplitude of y4 [B]
    (TVB's nsig; the added noise is sqrt(2 nsig dt) z)."""

    A: np.ndarray
    mu: np.ndarray
    nsig: np.ndarray


# TVB's JansenRit.state_variable_range: its random initial history is uniform over these.
STATE_RANGES = ((-1.0, 1.0), (-500.0, 500.0), (-50.0, 50.0), (-6.0, 6.0), (-20.0, 20.0),
                (-500.0, 500.0))  # fmt: skip


def random_start(
    n_runs: int, connectivity: Connectivity, generators: list[np.random.Generator]
) -> tuple[np.ndarray, np.ndarray]:
    """TVB's kind of start, one generator per run: every state of every history step uniform
    over STATE_RANGES; the state at step 0 is history slot 0 (as TVB's). Returns
    (initial_state [B, 6, N], initial_history [B, horizon, 2, N])."""
    n, horizon = connectivity.n_regions, connectivity.horizon
    history = np.empty((n_runs, horizon, 6, n))
    for run, gen in enumerate(generators[:n_runs]):
        for k, (lo, hi) in enumerate(STATE_RANGES):
            history[run, :, k] = gen.uniform(lo, hi, size=(horizon, n))
    return history[:, 0].copy(), history[:, :, 1:3].copy()


def run_generators(seed: int, runs: list[tuple[int, int]]) -> list[np.random.Generator]:
    """One generator per (spiking region, noise setting) run for its random initial history,
    from the project's seeding scheme: keys (seed, "neural_mass", region, iteration,
    "start"). A run's draws depend only on its keys, never on the batch it is simulated in."""
    return [rng(seed, "neural_mass", r, m, "start") for r, m in runs]


def noise_keys(seed: int, runs: list[tuple[int, int]]) -> np.ndarray:
    """Each run's 64-bit key for the normals of its y4 noise (uint64 [B]), from the seeding
    scheme: keys (seed, "neural_mass", region, iteration, "noise"). The normal of region i
    at step t is a function of (key, t N + i) only (`_jansen_rit_kernel.normal`), drawn
    inside the compiled loop, so neither the batch nor the chunking changes it."""
    return np.array(
        [rng(seed, "neural_mass", r, m, "noise").integers(0, 2**64, dtype=np.uint64)
         for r, m in runs], dtype=np.uint64,
    )  # fmt: skip


def keyed_normals(keys: np.ndarray, first_step: int, n_steps: int, n_regions: int) -> np.ndarray:
    """The normals Simulation draws for runs with these keys at steps first_step, ...:
    [n_steps, B, N] (for checks; the simulation draws them itself)."""
    from spikeforge.eeg import _jansen_rit_kernel

    keys = np.ascontiguousarray(keys, np.uint64)
    return _jansen_rit_kernel.normals(keys, first_step, n_steps, n_regions)


def coupling_sigmoid(y1: np.ndarray, y2: np.ndarray, model: JansenRit) -> np.ndarray:
    """The coupling's presynaptic sigmoid of a region, from TVB's float32 history values."""
    difference = (np.asarray(y1, np.float32) - np.asarray(y2, np.float32)).astype(np.float64)
    return model.c_max / (1.0 + np.exp(model.c_r * (model.c_midpoint - difference)))


def _kernel():
    """The compiled step loop; numba is imported on first use."""
    from spikeforge.eeg import _jansen_rit_kernel

    return _jansen_rit_kernel.run


class Simulation:
    """A batch of runs advanced together; `advance(n)` returns y1 - y2 [n, B, N] (mV) of the
    next n steps, TVB's raw output (step 1 at dt, after the initial state)."""

    def __init__(
        self,
        connectivity: Connectivity,
        batch: Batch,
        initial_state: np.ndarray,
        initial_history: np.ndarray,
        model: JansenRit = JansenRit(),
        dt_ms: float = DT_MS,
        noise_keys: np.ndarray | None = None,
    ) -> None:
        """initial_state [B, 6, N]: the state at step 0; initial_history [B, horizon, 2, N]:
        y1 and y2 at the ring's slots (slot t holds step t modulo the horizon, as in TVB's
        history buffer; slot 0 is step 0). noise_keys [B] (uint64, `noise_keys`): each run
        draws its own noise from its key; without them the noise is what `advance` is given."""
        if model.a_1 != 4.0 * model.a_3:
            raise ValueError("the kernel shares one exp between the sigmoids of a_1 and a_3, "
                             f"which needs a_1 = 4 a_3 (got {model.a_1}, {model.a_3})")  # fmt: skip
        self.conn, self.model, self.dt = connectivity, model, dt_ms
        n_runs, n = batch.A.shape
        if initial_state.shape != (n_runs, 6, n):
            raise ValueError(f"initial state must be {(n_runs, 6, n)}, got {initial_state.shape}")
        if initial_history.shape != (n_runs, connectivity.horizon, 2, n):
            raise ValueError(
                f"initial history must be {(n_runs, connectivity.horizon, 2, n)}, "
                f"got {initial_history.shape}"
            )
        self.batch = batch
        self.n_runs, self.n_regions = n_runs, n
        # flat over (region, run), runs innermost; the caller's arrays are never written
        self.state = np.array(np.transpose(initial_state, (1, 2, 0)), np.float64).reshape(6, -1)
        sigmoid = coupling_sigmoid(initial_history[:, :, 0], initial_history[:, :, 1], model)
        ring = np.transpose(sigmoid, (1, 2, 0)).reshape(connectivity.horizon, -1)
        self.ring = np.concatenate([ring, ring])  # twice over: see the kernel
        self._A = np.ascontiguousarray(np.asarray(batch.A, np.float64).T).reshape(-1)
        self._mu = np.tile(np.asarray(batch.mu, np.float64), n)
        noise_gain = np.sqrt(2.0 * np.asarray(batch.nsig, np.float64)) * np.sqrt(dt_ms)
        self._gain = np.tile(noise_gain, n)
        self.step = 0
        self._z = np.empty((0, n * n_runs))  # the normals in the kernel's layout, reused
        self._noise_key = np.zeros(0, np.uint64)
        if noise_keys is not None:
            keys = np.asarray(noise_keys, np.uint64)
            if keys.shape != (n_runs,):
                raise ValueError(f"noise keys must be {(n_runs,)}, got {keys.shape}")
            self._noise_key = np.tile(keys, n)
        c = connectivity
        e = c.by_target
        self._by_target = (c.target_start, c.delay[e] * (n * n_runs) - c.source[e] * n_runs,
                           c.weight[e])  # fmt: skip
        self._by_delay = (c.delay_start, c.target, c.source, c.weight)
        m = model
        self._params = (m.a, m.B, m.b, m.v0, m.nu_max, m.r, m.J, m.a_1, m.a_2, m.a_3, m.a_4,
                        m.c_max, m.c_midpoint, m.c_r, m.c_a, float(dt_ms))  # fmt: skip

    def advance(self, n_steps: int, z: np.ndarray | None = None) -> np.ndarray:
        """The next n steps; z [n, B, N]: the standard normals of y4's noise (None: the
        runs' own, with noise keys; no noise without)."""
        n, n_runs = self.n_regions, self.n_runs
        noise_key = self._noise_key
        if z is not None or noise_key.size == 0:
            if self._z.shape[0] < n_steps:
                self._z = np.empty((n_steps, n * n_runs))
            z_flat = self._z[:n_steps]
            noise_key = np.zeros(0, np.uint64)
            if z is None:
                z_flat[:] = 0.0
            else:
                np.copyto(z_flat.reshape(n_steps, n, n_runs), np.transpose(z, (0, 2, 1)))
        else:
            z_flat = np.zeros((0, n * n_runs))
        out = np.empty((n_steps, n * n_runs))
        _kernel()(self.state, self.ring, self.step + 1, n_steps, self._by_target,
                  self._by_delay, n_runs, self._A, self._mu, self._gain, z_flat, noise_key,
                  out, self._params)  # fmt: skip
        self.step += n_steps
        return np.transpose(out.reshape(n_steps, n, n_runs), (0, 2, 1))

    def chunks(self, n_steps: int, per_chunk: int, normals=None) -> Iterator[np.ndarray]:
        """`n_steps` in pieces of `per_chunk`; `normals(k, n)` gives z for steps k+1..k+n
        (None: the runs' own noise, or none)."""
        done = 0
        while done < n_steps:
            n = min(per_chunk, n_steps - done)
            yield self.advance(n, None if normals is None else normals(self.step, n))
            done += n

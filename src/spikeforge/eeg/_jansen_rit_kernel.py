"""The compiled Jansen-Rit step loop of spikeforge.eeg.neural_mass (imported on first use:
importing it imports numba; the first call compiles, cached beside the module).

Arrays keep the runs of a batch innermost, so every weight and delay read serves all runs.
Edges are visited by delay, so the ring slot they read stays in cache.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def run(x, ring, first_step, n_steps, delay_start, target, source, weight, A, mu,
        noise_gain, z, out, p):  # fmt: skip
    (a, B, b, v0, nu_max, r, J, a_1, a_2, a_3, a_4, c_max, c_mid, c_r, c_a, dt) = p
    _, n, n_runs = x.shape
    horizon = ring.shape[0]
    # products as TVB forms them (left to right), hoisted out of the loops
    two_a, a_sq, two_b, b_sq = 2.0 * a, a * a, 2.0 * b, b * b
    two_nu = 2.0 * nu_max
    a2J, J3, Bb, a4J = a_2 * J, a_3 * J, B * b, a_4 * J
    e_rv0 = np.exp(r * v0)
    coupling = np.empty((n, n_runs))
    d0 = np.empty((6, n_runs))
    y = np.empty((6, n_runs))
    for k in range(n_steps):
        step = first_step + k
        newest = (step - 1) % horizon
        coupling[:] = 0.0
        for d in range(horizon):
            t = newest - d
            if t < 0:
                t += horizon
            for e in range(delay_start[d], delay_start[d + 1]):
                w = weight[e]
                src = source[e]
                tgt = target[e]
                for q in range(n_runs):
                    coupling[tgt, q] += w * ring[t, src, q]
        for i in range(n):
            for q in range(n_runs):
                coupling[i, q] *= c_a
        for i in range(n):
            for q in range(n_runs):
                for v in range(6):
                    y[v, q] = x[v, i, q]
            for stage in range(2):
                for q in range(n_runs):
                    s12 = two_nu / (1.0 + np.exp(r * (v0 - (y[1, q] - y[2, q]))))
                    # exp(r (v0 - J1 y0)) = e^{r v0} u^4 and exp(r (v0 - J3 y0)) = e^{r v0} u
                    # with u = exp(-r J3 y0), as a_1 = 4 a_3: one exp for both sigmoids
                    u = np.exp(-r * J3 * y[0, q])
                    u2 = u * u
                    s01 = two_nu / (1.0 + e_rv0 * (u2 * u2))
                    s03 = two_nu / (1.0 + e_rv0 * u)
                    Aa = A[i, q] * a
                    dy0 = y[3, q]
                    dy1 = y[4, q]
                    dy2 = y[5, q]
                    dy3 = Aa * s12 - two_a * y[3, q] - a_sq * y[0, q]
                    dy4 = (
                        Aa * (mu[q] + a2J * s01 + coupling[i, q]) - two_a * y[4, q] - a_sq * y[1, q]
                    )
                    dy5 = Bb * (a4J * s03) - two_b * y[5, q] - b_sq * y[2, q]
                    noise = noise_gain[q] * z[k, i, q]
                    if stage == 0:
                        d0[0, q], d0[1, q], d0[2, q] = dy0, dy1, dy2
                        d0[3, q], d0[4, q], d0[5, q] = dy3, dy4, dy5
                        y[0, q] = x[0, i, q] + dt * dy0
                        y[1, q] = x[1, i, q] + dt * dy1
                        y[2, q] = x[2, i, q] + dt * dy2
                        y[3, q] = x[3, i, q] + dt * dy3
                        y[4, q] = x[4, i, q] + dt * dy4 + noise
                        y[5, q] = x[5, i, q] + dt * dy5
                    else:
                        x[0, i, q] = x[0, i, q] + (d0[0, q] + dy0) * dt / 2.0
                        x[1, i, q] = x[1, i, q] + (d0[1, q] + dy1) * dt / 2.0
                        x[2, i, q] = x[2, i, q] + (d0[2, q] + dy2) * dt / 2.0
                        x[3, i, q] = x[3, i, q] + (d0[3, q] + dy3) * dt / 2.0
                        x[4, i, q] = x[4, i, q] + (d0[4, q] + dy4) * dt / 2.0 + noise
                        x[5, i, q] = x[5, i, q] + (d0[5, q] + dy5) * dt / 2.0
        slot = step % horizon
        for i in range(n):
            for q in range(n_runs):
                difference = np.float64(np.float32(x[1, i, q]) - np.float32(x[2, i, q]))
                ring[slot, i, q] = c_max / (1.0 + np.exp(c_r * (c_mid - difference)))
                out[k, i, q] = x[1, i, q] - x[2, i, q]

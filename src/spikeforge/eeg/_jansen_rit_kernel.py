"""The compiled Jansen-Rit step loop of spikeforge.eeg.neural_mass (imported on first use:
importing it imports numba; the first call compiles, cached beside the module).

Layout: every per-region array is flat over (region, run), runs innermost, so the update of
the state is one loop over independent elements that LLVM vectorises. That needs an exp it
can inline: `exp` below (1 ulp; numba's np.exp calls libm, which does not vectorise), which
also makes the arithmetic the same on every machine whatever its libm.

The coupling sums the sigmoid ring over the non-zero weights. A batch's size is a
compile-time constant (numba.literally), so the loop over runs unrolls without checks:
- one run: per target, a gather over its edges, four targets at once (four independent chains
  of additions, no read-modify-write); the ring is stored twice over (rows t and
  t + horizon) so an edge's row is `newest + horizon - delay` without a modulo;
- several runs: edges by delay then source, so the ring row they read stays in cache and each
  edge adds a whole vector of runs.
Either way a target's sum adds its edges one after the other by (delay, source), so a run's
result is the same alone or in any batch, and does not depend on the machine's vector width.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


@intrinsic
def _bits_as_float64(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _float64_bits(typingctx, value):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INVERSE_FACTORIALS = [
    1.0 / float(np.prod(np.arange(1, n + 1, dtype=np.float64))) for n in range(14)
]
(_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13) = _INVERSE_FACTORIALS[2:]


@numba.njit(inline="always", error_model="numpy")
def exp(x):
    """e^x to 1 ulp, branch-free: x = k ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor
    series to r^13 (the remainder is below 2e-16 relative), 2^k from the exponent bits;
    inf above 709.78, 0 below -708 (where e^x is subnormal: a sigmoid's 1 + e^x is 1)."""
    clamped = min(max(x, -708.0), 709.0)
    k = np.floor(clamped * _LOG2E + 0.5)
    r = (clamped - k * _LN2_HI) - k * _LN2_LO
    p = _C13
    p = p * r + _C12
    p = p * r + _C11
    p = p * r + _C10
    p = p * r + _C9
    p = p * r + _C8
    p = p * r + _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    p = p * r + 1.0
    p = p * r + 1.0
    result = p * _bits_as_float64((np.int64(k) + 1023) << 52)
    result = np.inf if x > 709.78 else result
    return 0.0 if x < -708.0 else result


_SQRT2 = 1.4142135623730951
_HALF_PI = 1.5707963267948966
# 1 / (2k + 1) for the series of atanh; (-1)^k / (2k)! and (-1)^k / (2k + 1)! for cos and sin
_ATANH = tuple(1.0 / (2 * k + 1) for k in range(11))
_COS = tuple(
    (-1.0) ** k / float(np.prod(np.arange(1, 2 * k + 1, dtype=np.float64))) for k in range(11)
)
_SIN = tuple(
    (-1.0) ** k / float(np.prod(np.arange(1, 2 * k + 2, dtype=np.float64))) for k in range(11)
)
(_A0, _A1, _A2, _A3, _A4, _A5, _A6, _A7, _A8, _A9, _A10) = _ATANH
(_C_0, _C_1, _C_2, _C_3, _C_4, _C_5, _C_6, _C_7, _C_8, _C_9, _C_10) = _COS
(_S_0, _S_1, _S_2, _S_3, _S_4, _S_5, _S_6, _S_7, _S_8, _S_9, _S_10) = _SIN
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)
_TWO_TO_MINUS_32 = 2.0**-32


@numba.njit(inline="always", error_model="numpy")
def _log_unit(u):
    """ln u for normal u in (0, 1]: u = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m =
    2 atanh((m - 1) / (m + 1)) by its series to the 21st power (|f| < 0.172: below 1e-17)."""
    bits = _float64_bits(u)
    e = (bits >> 52) - 1023
    m = _bits_as_float64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    f = (m - 1.0) / (m + 1.0)
    s = f * f
    p = _A10
    p = p * s + _A9
    p = p * s + _A8
    p = p * s + _A7
    p = p * s + _A6
    p = p * s + _A5
    p = p * s + _A4
    p = p * s + _A3
    p = p * s + _A2
    p = p * s + _A1
    p = p * s + _A0
    return e * _LN2_HI + (2.0 * f * p + e * _LN2_LO)


@numba.njit(inline="always", error_model="numpy")
def _cos_two_pi(u):
    """cos(2 pi u) for u in [0, 1): the quadrant from 4u, then the series of cos or sin of
    the angle within it (to the 21st power: below 1e-16 on [0, pi/2))."""
    t = 4.0 * u
    q = np.floor(t)
    a = (t - q) * _HALF_PI
    a2 = a * a
    c = _C_10
    s = _S_10
    c = c * a2 + _C_9
    s = s * a2 + _S_9
    c = c * a2 + _C_8
    s = s * a2 + _S_8
    c = c * a2 + _C_7
    s = s * a2 + _S_7
    c = c * a2 + _C_6
    s = s * a2 + _S_6
    c = c * a2 + _C_5
    s = s * a2 + _S_5
    c = c * a2 + _C_4
    s = s * a2 + _S_4
    c = c * a2 + _C_3
    s = s * a2 + _S_3
    c = c * a2 + _C_2
    s = s * a2 + _S_2
    c = c * a2 + _C_1
    s = s * a2 + _S_1
    c = c * a2 + _C_0
    s = s * a2 + _S_0
    s = s * a
    quadrant = np.int64(q)
    value = s if quadrant & 1 else c
    return -value if ((quadrant + 1) >> 1) & 1 else value


@numba.njit(inline="always", error_model="numpy")
def normal(key, counter):
    """A standard normal from (key, counter), both uint64: SplitMix64's output function of
    key + counter * golden gamma gives 64 bits; its halves are u1 in (0, 1] and u2 in
    [0, 1), and Box-Muller's sqrt(-2 ln u1) cos(2 pi u2) the normal (tails cut at 6.66)."""
    z = key + counter * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    u1 = (np.float64(np.int64(z >> np.uint64(32))) + 1.0) * _TWO_TO_MINUS_32
    u2 = np.float64(np.int64(z & _LOW32)) * _TWO_TO_MINUS_32
    return np.sqrt(-2.0 * _log_unit(u1)) * _cos_two_pi(u2)


@numba.njit(cache=True, error_model="numpy")
def normals(keys, first_step, n_steps, n_regions):
    """The normals the kernel draws for runs with these keys: [n_steps, runs, regions], step
    first_step + k, region i of run q from (keys[q], step n_regions + i)."""
    out = np.empty((n_steps, keys.size, n_regions))
    for k in range(n_steps):
        step = np.uint64(first_step + k)
        for q in range(keys.size):
            for i in range(n_regions):
                out[k, q, i] = normal(keys[q], step * np.uint64(n_regions) + np.uint64(i))
    return out


@numba.njit(inline="always", error_model="numpy")
def _derivatives(y0, y1, y2, y3, y4, y5, Aa, mu, c, e_rv0, p):
    """dy3, dy4, dy5 of JansenRit (dy0..dy2 are y3..y5) with coupling c; e_rv0 = e^{r v0}.
    Products as TVB forms them (left to right)."""
    (a, B, b, v0, nu_max, r, J, a_1, a_2, a_3, a_4, c_max, c_mid, c_r, c_a, dt) = p
    two_nu = 2.0 * nu_max
    # exp(r (v0 - J1 y0)) = e^{r v0} u^4 and exp(r (v0 - J3 y0)) = e^{r v0} u with
    # u = exp(-r J3 y0), as a_1 = 4 a_3: one exp for both sigmoids
    s12 = two_nu / (1.0 + exp(r * (v0 - (y1 - y2))))
    u = exp(-r * (a_3 * J) * y0)
    u2 = u * u
    s01 = two_nu / (1.0 + e_rv0 * (u2 * u2))
    s03 = two_nu / (1.0 + e_rv0 * u)
    d3 = Aa * s12 - 2.0 * a * y3 - a * a * y0
    d4 = Aa * (mu + a_2 * J * s01 + c) - 2.0 * a * y4 - a * a * y1
    d5 = B * b * (a_4 * J * s03) - 2.0 * b * y5 - b * b * y2
    return d3, d4, d5


@numba.njit(cache=True)
def run(x, ring, first_step, n_steps, by_target, by_delay, n_runs, A, mu, gain, z, noise_key,
        out, p):  # fmt: skip
    """Advance n_steps. x [6, M] state; ring [2 horizon, M] coupling sigmoids (M = regions x
    runs); by_target (ptr, offset, weight) with offset = delay M - source n_runs; by_delay
    (delay_start, target, source, weight); A, mu, gain [M]; the normals of y4's noise are
    z [n_steps, M], or drawn here (`normal`) from noise_key [M] (uint64, the run's key) when
    it is not empty; out [n_steps, M] receives y1 - y2."""
    return _run(x, ring, first_step, n_steps, by_target, by_delay, numba.literally(n_runs),
                A, mu, gain, z, noise_key, out, p)  # fmt: skip


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def _run(x, ring, first_step, n_steps, by_target, by_delay, n_runs, A, mu, gain, z, noise_key,
         out, p):  # fmt: skip
    (a, B, b, v0, nu_max, r, J, a_1, a_2, a_3, a_4, c_max, c_mid, c_r, c_a, dt) = p
    ptr, offset, target_weight = by_target
    delay_start, target, source, weight = by_delay
    m = x.shape[1]
    n = m // n_runs
    horizon = ring.shape[0] // 2
    flat = ring.reshape(-1)
    e_rv0 = exp(r * v0)
    own_noise = noise_key.size > 0
    n_u64 = np.uint64(n)
    coupling = np.empty(m)
    for k in range(n_steps):
        step = first_step + k
        newest = (step - 1) % horizon
        if n_runs == 1:
            base = (newest + horizon) * m
            for i in range(0, n - n % 4, 4):
                # four targets at once: four independent chains of additions
                e0, e1, e2, e3 = ptr[i], ptr[i + 1], ptr[i + 2], ptr[i + 3]
                shared = min(ptr[i + 1] - e0, ptr[i + 2] - e1, ptr[i + 3] - e2, ptr[i + 4] - e3)
                s0 = s1 = s2 = s3 = 0.0
                for h in range(shared):
                    s0 += target_weight[e0 + h] * flat[base - offset[e0 + h]]
                    s1 += target_weight[e1 + h] * flat[base - offset[e1 + h]]
                    s2 += target_weight[e2 + h] * flat[base - offset[e2 + h]]
                    s3 += target_weight[e3 + h] * flat[base - offset[e3 + h]]
                for e in range(e0 + shared, ptr[i + 1]):
                    s0 += target_weight[e] * flat[base - offset[e]]
                for e in range(e1 + shared, ptr[i + 2]):
                    s1 += target_weight[e] * flat[base - offset[e]]
                for e in range(e2 + shared, ptr[i + 3]):
                    s2 += target_weight[e] * flat[base - offset[e]]
                for e in range(e3 + shared, ptr[i + 4]):
                    s3 += target_weight[e] * flat[base - offset[e]]
                coupling[i], coupling[i + 1], coupling[i + 2], coupling[i + 3] = s0, s1, s2, s3
            for i in range(n - n % 4, n):
                s0 = 0.0
                for e in range(ptr[i], ptr[i + 1]):
                    s0 += target_weight[e] * flat[base - offset[e]]
                coupling[i] = s0
        else:
            coupling[:] = 0.0
            for d in range(horizon):
                t = newest - d
                if t < 0:
                    t += horizon
                row = t * m
                for e in range(delay_start[d], delay_start[d + 1]):
                    w = weight[e]
                    src = row + source[e] * n_runs
                    tgt = target[e] * n_runs
                    for q in range(n_runs):
                        coupling[tgt + q] += w * flat[src + q]
        slot = step % horizon
        for j in range(m):
            y0, y1, y2, y3, y4, y5 = x[0, j], x[1, j], x[2, j], x[3, j], x[4, j], x[5, j]
            c = coupling[j] * c_a
            Aa = A[j] * a
            mu_j = mu[j]
            if own_noise:
                region = np.uint64(j // n_runs)
                noise = gain[j] * normal(noise_key[j], np.uint64(step) * n_u64 + region)
            else:
                noise = gain[j] * z[k, j]
            # Heun: the predictor from y, the corrector from the predicted state p; the
            # coupling and the noise are the same in both (as TVB's HeunStochastic).
            d3, d4, d5 = _derivatives(y0, y1, y2, y3, y4, y5, Aa, mu_j, c, e_rv0, p)
            p0 = y0 + dt * y3
            p1 = y1 + dt * y4
            p2 = y2 + dt * y5
            p3 = y3 + dt * d3
            p4 = y4 + dt * d4 + noise
            p5 = y5 + dt * d5
            e3, e4, e5 = _derivatives(p0, p1, p2, p3, p4, p5, Aa, mu_j, c, e_rv0, p)
            y0 = y0 + (y3 + p3) * dt / 2.0
            y1 = y1 + (y4 + p4) * dt / 2.0
            y2 = y2 + (y5 + p5) * dt / 2.0
            y3 = y3 + (d3 + e3) * dt / 2.0
            y4 = y4 + (d4 + e4) * dt / 2.0 + noise
            y5 = y5 + (d5 + e5) * dt / 2.0
            x[0, j], x[1, j], x[2, j], x[3, j], x[4, j], x[5, j] = y0, y1, y2, y3, y4, y5
            out[k, j] = y1 - y2
            # the ring holds the sigmoid of TVB's float32 history values
            difference = np.float64(np.float32(y1) - np.float32(y2))
            sigmoid = c_max / (1.0 + exp(c_r * (c_mid - difference)))
            ring[slot, j] = sigmoid
            ring[slot + horizon, j] = sigmoid

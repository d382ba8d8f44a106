"""One BLAS thread per process: jobs run one per core and their matrix products are small, so
BLAS threads would only compete. The workflow, the tests and the benchmarks all set it here."""

from __future__ import annotations

import os

BLAS_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def one_blas_thread(*, override: bool = False) -> None:
    """Set every BLAS/OpenMP thread count to 1 (before numpy is imported to take effect).

    `override=False` keeps a value the user already set."""
    for variable in BLAS_THREAD_VARIABLES:
        if override:
            os.environ[variable] = "1"
        else:
            os.environ.setdefault(variable, "1")

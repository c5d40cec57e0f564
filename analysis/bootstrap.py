"""Bootstrap: resampling, percentile intervals, and the batched refit of the approach-3 fit.

`resample_counts` draws the resamples of every fitter; `percentile_interval` (and `finite_interval`,
for plans where some resampled laws have no answer) turns draws into the intervals that fits, plans
and backtests report.

Approach 3 refits every resample at once with the batched optimiser (`bootstrap_theta`).

A resample draws n rows with replacement; its objective is the full-data objective with each point
weighted by how often it was drawn, so all resamples share one (log N, log D, log L) table and differ
only in a row of weights. Each resample is fitted from a few starts at once:

* the full-data optimum (warm start: the resample optimum is usually a small move away),
* the best distinct *other* local optima of the full-data multi-start (in case a resample prefers
  another basin), and
* a few grid starts that reached the best basin on the full data, from far away (an independent
  route to the same basin, so a warm start cannot hide a better optimum).

All starts of all resamples run through `objective.minimize_batched` in single precision; the best
start of each resample is then finished in double precision (to ~1e-9 relative in the objective
and ~1e-4 in the parameters: far inside the spread of the resamples, e.g. 0.015 in alpha on
Epoch's data). `benchmarks/bench_fit.py` checks, on a sample of resamples, that this finds the
same optima as independent 4,500-start fits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from analysis.objective import minimize_batched


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) how often each of n rows is drawn in each resample (rows drawn with replacement)."""
    draws = rng.integers(0, n, size=(n_resamples, n))
    offsets = (np.arange(n_resamples) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(float)


def percentile_interval(samples: np.ndarray, level: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval: the (1 - level)/2 and (1 + level)/2 quantiles of `samples`."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must lie in (0, 1), got {level}")
    q = np.quantile(samples, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=axis)
    return q[0], q[1]


def finite_interval(samples: np.ndarray, level: float) -> list[float] | None:
    """[lo, hi] percentile interval of the finite values among `samples`; None with fewer than two."""
    x = np.asarray(samples, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2:
        return None
    return [float(v) for v in percentile_interval(x, level)]


def bootstrap_theta(starts: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray, counts: np.ndarray,
                    *, delta: float = 1e-3, max_iter: int = 500,
                    update: Callable[[int], None] | None = None,
                    problems_per_batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Fit every resample (rows of `counts`, point weights) from every row of `starts` (K, 5).

    Returns (theta (R, 5), objective (R,)): for each resample the best optimum over its starts.
    `update(k)` is called as k more resamples finish (progress bars).
    """
    K = starts.shape[0]
    R = counts.shape[0]
    per_batch = max(1, problems_per_batch // K)
    theta_out = np.empty((R, 5))
    f_out = np.empty(R)
    for lo in range(0, R, per_batch):
        hi = min(R, lo + per_batch)
        r = hi - lo
        W = np.repeat(counts[lo:hi], K, axis=0)                 # problem p = resample p // K, start p % K
        theta0 = np.tile(starts, (r, 1))
        remaining = np.full(r, K)

        def on_done(idx: np.ndarray) -> None:
            if update is None:
                return
            owners = idx // K
            np.subtract.at(remaining, owners, 1)
            update(int(np.sum(remaining[np.unique(owners)] == 0)))

        theta1, f1, _, _ = minimize_batched(theta0, logN, logD, logL, delta=delta, weights=W, ftol=1e-6,
                                            max_iter=max_iter, dtype=np.float32, on_converged=on_done)
        best = np.argmin(f1.reshape(r, K), axis=1) + np.arange(r) * K
        theta2, f2, _, _ = minimize_batched(theta1[best], logN, logD, logL, delta=delta, weights=counts[lo:hi],
                                            ftol=1e-10, max_iter=min(max_iter, 200), dtype=np.float64)
        theta_out[lo:hi], f_out[lo:hi] = theta2, f2
        if update is not None:
            update(int(np.sum(remaining > 0)))                 # any that hit max_iter
    return theta_out, f_out

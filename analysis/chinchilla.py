"""Chinchilla's approach 3: L(N, D) = E + A/N^alpha + B/D^beta by sum-Huber on log loss (`ChinchillaFit`).

The fit runs every start of a grid at once (`analysis.objective`), polishes the best with scipy,
and refits bootstrap resamples in one batch (`analysis.bootstrap`); `analysis.fit` re-exports it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from analysis.bootstrap import bootstrap_theta, percentile_interval, resample_counts
from analysis.errors import InputError
from analysis.estimator import FitEstimator, NotFittedError, progress_bar
from analysis.io import FitWarning, Points, as_points
from analysis.laws import ChinchillaLaw, chinchilla_frontier, chinchilla_loss, chinchilla_optimum
from analysis.objective import PARAM_NAMES, minimize_batched, objective_and_grad, start_grid

LAW_PARAMS = ("E", "A", "B", "alpha", "beta")
DERIVED = ("a", "b", "G")


def _theta_to_params(theta: np.ndarray) -> dict[str, np.ndarray]:
    """theta (..., 5) = (log A, log B, log E, alpha, beta) -> E, A, B, alpha, beta."""
    theta = np.asarray(theta, dtype=float)
    logA, logB, logE, alpha, beta = (theta[..., i] for i in range(5))
    return {"E": np.exp(logE), "A": np.exp(logA), "B": np.exp(logB), "alpha": alpha, "beta": beta}


class ChinchillaFit(FitEstimator):
    """Chinchilla approach 3 (Hoffmann et al. 2022 §3.3, with Besiroglu et al. 2024's corrections).

    Fits L(N, D) = E + A/N^alpha + B/D^beta by minimising

        sum_i Huber_delta( LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i ),   A, B, E = e^a, e^b, e^e

    (eq. 11; delta = 1e-3; the *sum*, since the mean stops L-BFGS early) from every start of a grid,
    by default Chinchilla's 4,500 (alpha, beta in {0, .5, ..., 2}, e in {-1, -.5, ..., 1},
    a, b in {0, 5, ..., 25}), keeping the best optimum.

    How: all starts take damped Gauss-Newton steps together in numpy (`analysis.objective`), in
    single precision until each start stalls; the best `n_refine` are finished in double precision
    and the best distinct ones polished by scipy's L-BFGS-B at tight tolerances (ftol 1e-15, gtol 1e-12).

    With `bootstrap=B`, B resamples of the rows (with replacement, seeded by `random_state`) are
    refitted, all at once, from the full-data optimum plus a few starts (`analysis.bootstrap`);
    percentile intervals at `interval_level` are kept for E, A, B, alpha, beta, a, b, G, and
    `predict(N, D, interval=0.95)` gives prediction intervals. Each resample starts from the
    full-data optimum plus `bootstrap_starts` more: half from the next-best distinct local optima of
    the full-data search, the rest grid starts that reached the best optimum on the full data.

    Parameters (keyword-only): delta, init_grid (None = Chinchilla's grid; a dict of value lists for
    a, b, e, alpha, beta; or an array of starts (k, 5) in that order), bootstrap, interval_level,
    bootstrap_starts (starts per resample besides the full-data optimum), random_state, progress
    (tqdm bar for the bootstrap), n_refine (starts finished in double precision), max_iter.

    Fitted: E_, A_, B_, alpha_, beta_, a_, b_, G_, law_ (`ChinchillaLaw`), theta_, objective_,
    n_starts_, n_starts_at_optimum_, n_points_, data_range_, n_convention_, ... and, bootstrapped,
    bootstrap_params_ ({name: (B,) array}), intervals_ ({name: (lo, hi)}), interval_level_.
    """

    approach = 3

    def __init__(self, *, delta: float = 1e-3, init_grid: Mapping[str, Any] | np.ndarray | None = None,
                 bootstrap: int = 0, interval_level: float = 0.95, bootstrap_starts: int = 4,
                 random_state: int | None = None, progress: bool = False, n_refine: int = 32,
                 max_iter: int = 500) -> None:
        self.delta = delta
        self.init_grid = init_grid
        self.bootstrap = bootstrap
        self.interval_level = interval_level
        self.bootstrap_starts = bootstrap_starts
        self.random_state = random_state
        self.progress = progress
        self.n_refine = n_refine
        self.max_iter = max_iter

    # ------------------------------------------------------------------ fitting
    def fit(self, N: Any, D: ArrayLike | None = None, loss: ArrayLike | None = None, *,
            C: ArrayLike | None = None, columns: Mapping[str, str | None] | None = None,
            sample_weight: ArrayLike | None = None, source: str | None = None,
            n_convention: str | None = None) -> "ChinchillaFit":
        """Fit to arrays (N, D, loss; or N, loss and C), a DataFrame + `columns` map, or `Points`."""
        self._validate_settings()
        pts = as_points(N, D, loss, C=C, columns=columns, source=source, n_convention=n_convention)
        if pts.distinct_nd() < 5:
            raise InputError(f"{pts.source}: {pts.distinct_nd()} distinct (N, D) points (of {len(pts)} rows) are "
                             "fewer than the 5 parameters of L(N, D) = E + A/N^alpha + B/D^beta")
        x, y, t = np.log(pts.N), np.log(pts.D), np.log(pts.loss)
        w = None if sample_weight is None else _weights(sample_weight, len(pts), pts.source)
        starts = self._starts()
        theta1, f1, n_iter, conv, best_theta, best_f = _multistart(starts, x, y, t, w, self.delta, self.n_refine,
                                                                   self.max_iter)
        order = np.argsort(f1)
        self.theta_ = best_theta
        self.objective_ = best_f
        self.n_starts_ = int(starts.shape[0])
        self.n_starts_at_optimum_ = int(np.sum(f1 <= best_f * (1 + 1e-4)))
        self.n_iter_ = int(n_iter.max())
        self.converged_ = bool(np.all(conv))
        self.delta_ = float(self.delta)
        self._set_law(_theta_to_params(best_theta))
        self._set_data_info(pts)
        self._warn_if_odd(pts)
        self._clear_bootstrap()
        if self.bootstrap:
            k = max(0, int(self.bootstrap_starts))
            others = _distinct(theta1[order], k // 2, exclude=best_theta) if k // 2 else []
            good = starts[order[f1[order] <= best_f * (1 + 1e-4)]]
            self._bootstrap(x, y, t, w, good, others, k - len(others))
        return self

    def _validate_settings(self) -> None:
        if not (isinstance(self.delta, (int, float)) and self.delta > 0):
            raise ValueError(f"delta must be > 0, got {self.delta!r}")
        if int(self.bootstrap) < 0:
            raise ValueError(f"bootstrap must be >= 0 resamples, got {self.bootstrap!r}")
        if not 0 < self.interval_level < 1:
            raise ValueError(f"interval_level must lie in (0, 1), got {self.interval_level!r}")

    def _starts(self) -> np.ndarray:
        if self.init_grid is None or isinstance(self.init_grid, Mapping):
            return start_grid(None if self.init_grid is None else dict(self.init_grid))
        starts = np.atleast_2d(np.asarray(self.init_grid, dtype=float))
        if starts.shape[1] != 5:
            raise ValueError(f"init_grid array must have 5 columns {PARAM_NAMES}, got shape {starts.shape}")
        return starts

    def _set_law(self, params: Mapping[str, Any]) -> None:
        """E_ .. beta_ from `params`, the law, and its frontier a_, b_, G_."""
        self.law_ = ChinchillaLaw(**{k: float(params[k]) for k in LAW_PARAMS})
        for k in (*LAW_PARAMS, *DERIVED):
            setattr(self, f"{k}_", float(getattr(self.law_, k)))

    def _warn_if_odd(self, pts: Points) -> None:
        if self.alpha_ <= 0 or self.beta_ <= 0:
            warnings.warn(f"{pts.source}: fitted exponent alpha={self.alpha_:.3g}, beta={self.beta_:.3g} is not "
                          "positive; the data do not pin down L(N, D) (too few sizes or token counts?)",
                          FitWarning, stacklevel=3)
        if self.E_ > float(np.min(pts.loss)):
            warnings.warn(f"{pts.source}: fitted E={self.E_:.4g} exceeds the lowest loss {np.min(pts.loss):.4g}",
                          FitWarning, stacklevel=3)

    def _bootstrap(self, x, y, t, w, good_starts: np.ndarray, other_optima: list[np.ndarray], n_grid: int) -> None:
        rng = np.random.default_rng(self.random_state)
        B = int(self.bootstrap)
        n = x.shape[0]
        counts = resample_counts(n, B, rng)
        if w is not None:
            counts = counts * w
        starts = _bootstrap_starts(self.theta_, other_optima, good_starts, n_grid, rng)
        bar = progress_bar(B, "bootstrap", self.progress)
        try:
            theta, f = bootstrap_theta(starts, x, y, t, counts, delta=self.delta, max_iter=self.max_iter,
                                       update=bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
        params = _theta_to_params(theta)
        self.bootstrap_params_ = {k: params[k] for k in LAW_PARAMS}
        self.bootstrap_objective_ = f
        self._set_intervals()

    def _bootstrap_samples(self) -> dict[str, np.ndarray]:
        """The bootstrap draws of E, A, B, alpha, beta and of the frontier's a, b, G they imply."""
        bp = self.bootstrap_params_
        G, a, b = chinchilla_frontier(bp["A"], bp["B"], bp["alpha"], bp["beta"])
        return {**{k: bp[k] for k in LAW_PARAMS}, "a": a, "b": b, "G": G}

    # ------------------------------------------------------------------ using the fit
    def predict(self, N: ArrayLike, D: ArrayLike, interval: float | None = None):
        """Loss L(N, D) in nats/token; with `interval` (e.g. 0.95), (mid, lo, hi) from the bootstrap fits."""
        self._check_fitted()
        mid = self.law_(N, D)
        if interval is None:
            return mid
        samples = self._require_bootstrap("prediction intervals")
        p = {k: np.asarray(samples[k])[(...,) + (None,) * np.ndim(mid)] for k in LAW_PARAMS}
        draws = chinchilla_loss(N, D, **p)
        lo, hi = percentile_interval(draws, interval)
        return mid, lo, hi

    def compute_optimal(self, C: ArrayLike, interval: float | None = None):
        """(N_opt, D_opt) at FLOPs C = 6 N D (eq. 4); with `interval`, each as (mid, lo, hi)."""
        self._check_fitted()
        N, D = self.law_.compute_optimal(C)
        if interval is None:
            return N, D
        s = self._require_bootstrap("compute-optimal intervals")
        G, a, b = (np.asarray(s[k])[(...,) + (None,) * np.ndim(N)] for k in ("G", "a", "b"))
        Ns, Ds = chinchilla_optimum(np.asarray(C, dtype=float)[None, ...], G, a, b)
        return (N, *percentile_interval(Ns, interval)), (D, *percentile_interval(Ds, interval))

    def bootstrap_laws(self) -> list[ChinchillaLaw]:
        """One `ChinchillaLaw` per bootstrap resample (for planning with intervals)."""
        self._check_fitted()
        bp = self._require_bootstrap("bootstrap laws")
        return [ChinchillaLaw(*(float(bp[k][i]) for k in LAW_PARAMS)) for i in range(len(bp["E"]))]

    def _require_bootstrap(self, what: str) -> dict[str, np.ndarray]:
        if not hasattr(self, "bootstrap_params_"):
            raise NotFittedError(f"{what} need a bootstrap: fit with ChinchillaFit(bootstrap=1000, ...)")
        return self._bootstrap_samples()

    # ------------------------------------------------------------------ JSON (analysis.fitjson)
    def _fields(self) -> dict[str, Any]:
        return {"law": "chinchilla", **{k: getattr(self, f"{k}_") for k in (*LAW_PARAMS, *DERIVED)},
                "objective": self.objective_, "delta": self.delta_, "n_starts": self.n_starts_,
                "n_starts_at_optimum": self.n_starts_at_optimum_}

    @classmethod
    def _settings(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"delta": float(d.get("delta") or 1e-3)}

    def _read_fields(self, d: Mapping[str, Any]) -> None:
        self._set_law(d)
        self.theta_ = np.array([np.log(self.A_), np.log(self.B_), np.log(self.E_), self.alpha_, self.beta_])
        self.objective_ = float(d.get("objective", np.nan))
        self.delta_ = float(self.delta)
        self.n_starts_ = int(d.get("n_starts", 0))
        self.n_starts_at_optimum_ = int(d.get("n_starts_at_optimum", 0))


# ---------------------------------------------------------------------------------------------- helpers

def _weights(w: ArrayLike, n: int, source: str) -> np.ndarray:
    w = np.asarray(w, dtype=float).ravel()
    if w.shape[0] != n:
        raise InputError(f"{source}: sample_weight has {w.shape[0]} entries for {n} points")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InputError(f"{source}: sample_weight must be finite and >= 0")
    return w


def _multistart(starts: np.ndarray, x, y, t, w, delta: float, n_refine: int, max_iter: int):
    """The best optimum from every start: (theta, objective, iterations, converged) of each start after
    the single-precision pass, and the best (theta, objective) after refinement and polish."""
    # 1) every start at once, single precision, until it stalls
    theta1, f1, n_iter, conv = minimize_batched(starts, x, y, t, delta=delta, weights=w, ftol=1e-5,
                                                max_iter=max_iter, dtype=np.float32)
    # 2) the best few, double precision
    top = np.argsort(f1)[: max(1, n_refine)]
    theta2, f2, _, _ = minimize_batched(theta1[top], x, y, t, delta=delta, weights=w, ftol=1e-12,
                                        max_iter=max_iter, dtype=np.float64)
    # 3) scipy L-BFGS-B polish of the best distinct optima
    best_theta, best_f = theta2[np.argmin(f2)], float(np.min(f2))
    for th in _distinct(theta2[np.argsort(f2)], 3):
        th_p, f_p = _polish(th, x, y, t, delta, w)
        if f_p < best_f:
            best_theta, best_f = th_p, f_p
    return theta1, f1, n_iter, conv, best_theta, best_f


def _bootstrap_starts(theta: np.ndarray, other_optima: list[np.ndarray], good_starts: np.ndarray, n_grid: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Every resample's starts: the full-data optimum, other local optima, and up to `n_grid` grid
    starts (drawn from `good_starts`) that reached the best optimum on the full data."""
    k = min(n_grid, good_starts.shape[0])
    picks = good_starts[rng.choice(good_starts.shape[0], size=k, replace=False)] if k else np.empty((0, 5))
    return np.vstack([theta[None, :], *[o[None, :] for o in other_optima], picks])


def _distinct(thetas: np.ndarray, k: int, exclude: np.ndarray | None = None, rtol: float = 1e-3) -> list[np.ndarray]:
    """Up to k rows of `thetas` (already in order of preference) that differ from each other (and from
    `exclude`) by more than rtol, relative, in some parameter."""
    kept: list[np.ndarray] = [] if exclude is None else [np.asarray(exclude)]
    out: list[np.ndarray] = []
    for th in thetas:
        if not np.all(np.isfinite(th)):
            continue
        if all(np.max(np.abs(th - o) / (1.0 + np.abs(o))) > rtol for o in kept):
            kept.append(th)
            out.append(th)
            if len(out) >= k:
                break
    return out


def _polish(theta: np.ndarray, x, y, t, delta: float, w) -> tuple[np.ndarray, float]:
    """scipy L-BFGS-B from theta with tolerances tight enough for a sum-Huber objective of ~1e-3."""
    from scipy.optimize import minimize

    res = minimize(objective_and_grad, theta, args=(x, y, t, delta, w), jac=True, method="L-BFGS-B",
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000, "maxcor": 20})
    if not np.all(np.isfinite(res.x)) or not np.isfinite(res.fun):
        return theta, np.inf
    return res.x, float(res.fun)

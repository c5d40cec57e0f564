"""Scaling-law fitters in scikit-learn style: Chinchilla approaches 1, 2, 3 and Kaplan's laws.

    ChinchillaFit   approach 3: L(N, D) = E + A/N^alpha + B/D^beta by sum-Huber on log loss
    IsoFLOPFit      approach 2: a parabola per IsoFLOP budget, then N_opt = k C^a, D_opt = k' C^b
    EnvelopeFit     approach 1: the lower envelope of training curves in FLOPs, then the same power laws
    KaplanFit       Kaplan et al. 2020: L(N), L(D), L(C) and L(N, D) (eq. 1.5) by least squares on log loss

Every fitter takes arrays (N, D, loss; D = C/(6N) when only C is given), a DataFrame with a column
map, or `analysis.io.Points`; `fit(...)` returns self; fitted values end in `_`; `to_dict()` is the
fit JSON of CONTRACTS.md and `load_fit(path_or_dict)` turns it back into a fitted estimator.

    >>> fit = ChinchillaFit(bootstrap=1000, random_state=0).fit(df, columns={"n": "Model Size",
    ...                                                                       "c": "Training FLOP", "loss": "loss"})
    >>> fit.alpha_, fit.intervals_["a"], fit.predict(70e9, 1.4e12, interval=0.95)
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from analysis.bootstrap import bootstrap_theta, resample_counts
from analysis.errors import InputError
from analysis.estimator import FitEstimator, NotFittedError, percentile_interval
from analysis.frontier import EnvelopeFit, IsoFLOPFit
from analysis.io import FitWarning, Points, as_points
from analysis.laws import (ChinchillaLaw, KaplanLawC, KaplanLawD, KaplanLawN, KaplanLawND, chinchilla_frontier,
                           chinchilla_loss, chinchilla_optimum)
from analysis.objective import PARAM_NAMES, minimize_batched, objective_and_grad, start_grid

__all__ = ["ChinchillaFit", "IsoFLOPFit", "EnvelopeFit", "KaplanFit", "load_fit", "from_dict",
           "NotFittedError"]

LAW_PARAMS = ("E", "A", "B", "alpha", "beta")
DERIVED = ("a", "b", "G")


def _theta_to_params(theta: np.ndarray) -> dict[str, np.ndarray]:
    """theta (..., 5) = (log A, log B, log E, alpha, beta) -> E, A, B, alpha, beta, a, b, G."""
    theta = np.asarray(theta, dtype=float)
    logA, logB, logE, alpha, beta = (theta[..., i] for i in range(5))
    A, B = np.exp(logA), np.exp(logB)
    G, a, b = chinchilla_frontier(A, B, alpha, beta)
    return {"E": np.exp(logE), "A": A, "B": B, "alpha": alpha, "beta": beta, "a": a, "b": b, "G": G}


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
        if len(pts) < 5:
            raise InputError(f"{pts.source}: {len(pts)} points are fewer than the 5 parameters of "
                             "L(N, D) = E + A/N^alpha + B/D^beta")
        x, y, t = np.log(pts.N), np.log(pts.D), np.log(pts.loss)
        w = None if sample_weight is None else _weights(sample_weight, len(pts), pts.source)
        starts = self._starts()

        # 1) every start at once, single precision, until it stalls
        theta1, f1, n_iter, conv = minimize_batched(starts, x, y, t, delta=self.delta, weights=w,
                                                    ftol=1e-5, max_iter=self.max_iter, dtype=np.float32)
        order = np.argsort(f1)
        # 2) the best few, double precision
        top = order[: max(1, self.n_refine)]
        theta2, f2, _, _ = minimize_batched(theta1[top], x, y, t, delta=self.delta, weights=w,
                                            ftol=1e-12, max_iter=self.max_iter, dtype=np.float64)
        # 3) scipy L-BFGS-B polish of the best distinct optima
        candidates = _distinct(theta2[np.argsort(f2)], 3)
        best_theta, best_f = theta2[np.argmin(f2)], float(np.min(f2))
        for th in candidates:
            th_p, f_p = _polish(th, x, y, t, self.delta, w)
            if f_p < best_f:
                best_theta, best_f = th_p, f_p
        self.theta_ = best_theta
        self.objective_ = best_f
        self.n_starts_ = int(starts.shape[0])
        self.n_starts_at_optimum_ = int(np.sum(f1 <= best_f * (1 + 1e-4)))
        self.n_iter_ = int(n_iter.max())
        self.converged_ = bool(np.all(conv))
        self.delta_ = float(self.delta)
        self._set_law(best_theta)
        self._set_data_info(pts)
        self._warn_if_odd(pts)

        for attr in ("bootstrap_params_", "bootstrap_objective_", "intervals_", "interval_level_"):
            self.__dict__.pop(attr, None)
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

    def _set_law(self, theta: np.ndarray) -> None:
        p = {k: float(v) for k, v in _theta_to_params(theta).items()}
        self.E_, self.A_, self.B_, self.alpha_, self.beta_ = (p[k] for k in LAW_PARAMS)
        self.a_, self.b_, self.G_ = p["a"], p["b"], p["G"]
        self.law_ = ChinchillaLaw(E=self.E_, A=self.A_, B=self.B_, alpha=self.alpha_, beta=self.beta_)

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
        k = min(n_grid, good_starts.shape[0])
        picks = good_starts[rng.choice(good_starts.shape[0], size=k, replace=False)] if k else np.empty((0, 5))
        starts = np.vstack([self.theta_[None, :], *[o[None, :] for o in other_optima], picks])
        bar = _progress_bar(B, "bootstrap", self.progress)
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

    def _set_intervals(self) -> None:
        self.interval_level_ = float(self.interval_level)
        samples = self._bootstrap_samples()
        self.intervals_ = {k: tuple(float(v) for v in percentile_interval(samples[k], self.interval_level_))
                           for k in (*LAW_PARAMS, *DERIVED)}

    def _bootstrap_samples(self) -> dict[str, np.ndarray]:
        bp = self.bootstrap_params_
        theta = np.stack([np.log(bp["A"]), np.log(bp["B"]), np.log(bp["E"]), bp["alpha"], bp["beta"]], axis=-1)
        return _theta_to_params(theta)

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

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        d: dict[str, Any] = {"approach": 3, "law": "chinchilla"}
        d.update({k: getattr(self, f"{k}_") for k in (*LAW_PARAMS, *DERIVED)})
        d.update({"n_points": self.n_points_, "objective": self.objective_, "delta": self.delta_,
                  "n_convention": self.n_convention_, "flops_convention": "6ND"})
        if hasattr(self, "intervals_"):
            d["intervals"] = {k: list(v) for k, v in self.intervals_.items()}
            d["interval_level"] = self.interval_level_
            d["bootstrap"] = {k: [float(v) for v in self.bootstrap_params_[k]] for k in LAW_PARAMS}
        d.update({"data_range": self.data_range_, "source": self.source_, "columns": self.columns_,
                  "n_starts": self.n_starts_, "n_starts_at_optimum": self.n_starts_at_optimum_})
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ChinchillaFit":
        """A fitted ChinchillaFit from its fit JSON (bootstrap draws included when present)."""
        missing = [k for k in LAW_PARAMS if k not in d]
        if missing:
            raise InputError(f"{d.get('source', 'fit JSON')}: approach-3 fit lacks {missing}")
        boot = d.get("bootstrap") or {}
        est = cls(delta=float(d.get("delta", 1e-3)), bootstrap=len(boot.get("E", [])),
                  interval_level=float(d.get("interval_level", 0.95)))
        theta = np.array([np.log(d["A"]), np.log(d["B"]), np.log(d["E"]), d["alpha"], d["beta"]], dtype=float)
        est.theta_ = theta
        est._set_law(theta)
        est.objective_ = float(d.get("objective", np.nan))
        est.delta_ = est.delta
        est.n_starts_ = int(d.get("n_starts", 0))
        est.n_starts_at_optimum_ = int(d.get("n_starts_at_optimum", 0))
        est._read_data_info(dict(d))
        if boot:
            est.bootstrap_params_ = {k: np.asarray(boot[k], dtype=float) for k in LAW_PARAMS}
            est._set_intervals()
        elif d.get("intervals"):          # intervals without the draws: kept, but no prediction intervals
            est.intervals_ = {k: tuple(float(u) for u in v) for k, v in d["intervals"].items()}
            est.interval_level_ = est.interval_level
        return est


class KaplanFit(FitEstimator):
    """Kaplan et al. 2020 laws, fitted by least squares on log loss.

    form "n":  L(N) = (N_c / N)^alpha_N            (eq. 1.1)
    form "d":  L(D) = (D_c / D)^alpha_D            (eq. 1.2)
    form "c":  L(C) = (C_c / C)^alpha_C            (eq. 1.3; C in FLOPs here, not PF-days)
    form "nd": L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D   (eq. 1.5)

    The one-variable forms are straight lines in log-log space (closed form); eq. 1.5 is fitted by
    scipy's least_squares (trust-region reflective, analytic Jacobian, alpha's > 0) from a small grid
    of starts. `form=None` picks "nd" when the points vary in both N and D, else "n".
    With `bootstrap=B`, rows are resampled and refitted (warm-started) for percentile intervals.

    Fitted: form_, alpha_N_, N_c_ / alpha_D_, D_c_ / alpha_C_, C_c_ (as the form has them), law_,
    rss_ (sum of squared log residuals), and with a bootstrap bootstrap_params_, intervals_.
    """

    approach = "kaplan"
    _PARAMS = {"n": ("alpha_N", "N_c"), "d": ("alpha_D", "D_c"), "c": ("alpha_C", "C_c"),
               "nd": ("alpha_N", "alpha_D", "N_c", "D_c")}

    def __init__(self, *, form: str | None = None, bootstrap: int = 0, interval_level: float = 0.95,
                 random_state: int | None = None, progress: bool = False) -> None:
        self.form = form
        self.bootstrap = bootstrap
        self.interval_level = interval_level
        self.random_state = random_state
        self.progress = progress

    def fit(self, N: Any, D: ArrayLike | None = None, loss: ArrayLike | None = None, *,
            C: ArrayLike | None = None, columns: Mapping[str, str | None] | None = None,
            source: str | None = None, n_convention: str | None = None) -> "KaplanFit":
        pts = as_points(N, D, loss, C=C, columns=columns, source=source, n_convention=n_convention)
        form = self.form
        if form is None:   # "nd" when log N and log D vary independently, else L(N)
            design = np.stack([np.ones(len(pts)), np.log(pts.N), np.log(pts.D)], axis=1)
            form = "nd" if np.linalg.matrix_rank(design - design.mean(0) * [0, 1, 1], tol=1e-6) == 3 else "n"
        form = form.lower()
        if form not in self._PARAMS:
            raise ValueError(f"form must be one of {sorted(self._PARAMS)}, got {self.form!r}")
        k = len(self._PARAMS[form])
        if len(pts) < k + 1:
            raise InputError(f"{pts.source}: {len(pts)} points are too few for the {k} parameters "
                             f"of Kaplan's L({form.upper()})")
        xs = self._inputs(pts, form)
        t = np.log(pts.loss)
        theta, rss = _kaplan_fit(form, xs, t, None, None)
        self.form_ = form
        self._set_law(theta)
        self.rss_ = rss
        self._set_data_info(pts)
        for attr in ("bootstrap_params_", "intervals_", "interval_level_"):
            self.__dict__.pop(attr, None)
        if self.bootstrap:
            rng = np.random.default_rng(self.random_state)
            counts = resample_counts(len(pts), int(self.bootstrap), rng)
            bar = _progress_bar(int(self.bootstrap), "bootstrap", self.progress)
            draws = []
            for row in counts:
                draws.append(_kaplan_fit(form, xs, t, row, theta)[0])
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                bar.close()
            draws = np.array(draws)
            names = self._PARAMS[form]
            self.bootstrap_params_ = {nm: _kaplan_public(form, draws)[nm] for nm in names}
            self.interval_level_ = float(self.interval_level)
            self.intervals_ = {nm: tuple(float(v) for v in percentile_interval(self.bootstrap_params_[nm],
                                                                                 self.interval_level_))
                               for nm in names}
        return self

    @staticmethod
    def _inputs(pts: Points, form: str) -> tuple[np.ndarray, ...]:
        return {"n": (np.log(pts.N),), "d": (np.log(pts.D),), "c": (np.log(pts.C),),
                "nd": (np.log(pts.N), np.log(pts.D))}[form]

    def _set_law(self, theta: np.ndarray) -> None:
        for k, v in _kaplan_public(self.form_, theta[None, :]).items():
            setattr(self, f"{k}_", float(v[0]))
        self.theta_ = theta
        self.law_ = {"n": lambda: KaplanLawN(self.alpha_N_, self.N_c_),
                     "d": lambda: KaplanLawD(self.alpha_D_, self.D_c_),
                     "c": lambda: KaplanLawC(self.alpha_C_, self.C_c_),
                     "nd": lambda: KaplanLawND(self.alpha_N_, self.alpha_D_, self.N_c_, self.D_c_)}[self.form_]()

    def predict(self, N: ArrayLike | None = None, D: ArrayLike | None = None, *, C: ArrayLike | None = None):
        """Loss from the fitted form: predict(N) for "n", predict(D=...) for "d", predict(C=...) for "c",
        predict(N, D) for "nd"."""
        self._check_fitted()
        need = {"n": ("N",), "d": ("D",), "c": ("C",), "nd": ("N", "D")}[self.form_]
        given = {"N": N, "D": D, "C": C}
        absent = [k for k in need if given[k] is None]
        if absent:
            raise ValueError(f"Kaplan L({self.form_.upper()}) needs {', '.join(need)}; missing {', '.join(absent)}")
        return self.law_(*(given[k] for k in need))

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        d: dict[str, Any] = {"approach": "kaplan", "law": f"kaplan_{self.form_}", "form": self.form_}
        d.update({k: getattr(self, f"{k}_") for k in self._PARAMS[self.form_]})
        d["rss"] = self.rss_
        if hasattr(self, "intervals_"):
            d["intervals"] = {k: list(v) for k, v in self.intervals_.items()}
            d["interval_level"] = self.interval_level_
            d["bootstrap"] = {k: [float(v) for v in self.bootstrap_params_[k]] for k in self.bootstrap_params_}
        d.update(self._data_info())
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "KaplanFit":
        form = str(d.get("form") or ("nd" if "alpha_D" in d and "alpha_N" in d else
                                     "n" if "alpha_N" in d else "d" if "alpha_D" in d else "c"))
        names = cls._PARAMS.get(form)
        if names is None or any(k not in d for k in names):
            raise InputError(f"{d.get('source', 'fit JSON')}: Kaplan fit lacks parameters {names}")
        boot = d.get("bootstrap") or {}
        est = cls(form=form, bootstrap=len(next(iter(boot.values()), [])),
                  interval_level=float(d.get("interval_level", 0.95)))
        est.form_ = form
        est._set_law(_kaplan_theta(form, {k: float(d[k]) for k in names}))
        est.rss_ = float(d.get("rss", np.nan))
        est._read_data_info(dict(d))
        if boot:
            est.bootstrap_params_ = {k: np.asarray(v, dtype=float) for k, v in boot.items()}
            est.interval_level_ = est.interval_level
            est.intervals_ = {k: tuple(float(u) for u in percentile_interval(v, est.interval_level_))
                              for k, v in est.bootstrap_params_.items()}
        return est


# ---------------------------------------------------------------------------------------------- Kaplan internals
# theta: one-variable forms (alpha, log X_c); "nd" (alpha_N, alpha_D, log N_c, log D_c).

def _kaplan_public(form: str, theta: np.ndarray) -> dict[str, np.ndarray]:
    if form == "nd":
        return {"alpha_N": theta[:, 0], "alpha_D": theta[:, 1], "N_c": np.exp(theta[:, 2]), "D_c": np.exp(theta[:, 3])}
    alpha, xc = KaplanFit._PARAMS[form]
    return {alpha: theta[:, 0], xc: np.exp(theta[:, 1])}


def _kaplan_theta(form: str, p: Mapping[str, float]) -> np.ndarray:
    if form == "nd":
        return np.array([p["alpha_N"], p["alpha_D"], np.log(p["N_c"]), np.log(p["D_c"])])
    alpha, xc = KaplanFit._PARAMS[form]
    return np.array([p[alpha], np.log(p[xc])])


def _kaplan_fit(form: str, xs: tuple[np.ndarray, ...], t: np.ndarray, w: np.ndarray | None,
                warm: np.ndarray | None) -> tuple[np.ndarray, float]:
    """Least squares on log loss (weights w = row counts of a resample); returns (theta, rss)."""
    w = np.ones_like(t) if w is None else w
    if form != "nd":
        # log L = alpha log X_c - alpha log X: weighted line fit, slope -alpha
        X = np.stack([np.ones_like(xs[0]), xs[0]], axis=1)
        sw = np.sqrt(w)
        coef, *_ = np.linalg.lstsq(X * sw[:, None], t * sw, rcond=None)
        alpha = -coef[1]
        log_xc = coef[0] / alpha if alpha != 0 else np.inf
        rss = float(np.sum(w * (X @ coef - t) ** 2))
        return np.array([alpha, log_xc]), rss
    from scipy.optimize import least_squares

    x, y = xs
    sw = np.sqrt(w)

    def residual(th):
        aN, aD, u, v = th
        z1, z2 = aN / aD * (u - x), v - y
        return sw * (aD * np.logaddexp(z1, z2) - t)

    def jac(th):
        aN, aD, u, v = th
        z1, z2 = aN / aD * (u - x), v - y
        s = np.logaddexp(z1, z2)
        q1 = np.exp(z1 - s)
        q2 = 1.0 - q1
        J = np.stack([q1 * (u - x), s - q1 * z1, q1 * aN, aD * q2], axis=1)
        return J * sw[:, None]

    if warm is not None:
        starts = [warm]
    else:
        span_x, span_y = x.max(), y.max()
        starts = [np.array([aN, aD, span_x + du, span_y + du])
                  for aN in (0.05, 0.3) for aD in (0.05, 0.3) for du in (3.0, 15.0)]
    best = None
    for th0 in starts:
        res = least_squares(residual, th0, jac=jac, bounds=([1e-6, 1e-6, -np.inf, -np.inf], [10, 10, np.inf, np.inf]),
                            method="trf", x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=2000)
        if best is None or res.cost < best.cost:
            best = res
    return best.x, float(2.0 * best.cost)


# ---------------------------------------------------------------------------------------------- helpers

def _weights(w: ArrayLike, n: int, source: str) -> np.ndarray:
    w = np.asarray(w, dtype=float).ravel()
    if w.shape[0] != n:
        raise InputError(f"{source}: sample_weight has {w.shape[0]} entries for {n} points")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InputError(f"{source}: sample_weight must be finite and >= 0")
    return w


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


def _progress_bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="resample", leave=False)


# ---------------------------------------------------------------------------------------------- JSON round trip

_CLASSES = {3: ChinchillaFit, "3": ChinchillaFit, 2: IsoFLOPFit, "2": IsoFLOPFit, 1: EnvelopeFit, "1": EnvelopeFit,
            "kaplan": KaplanFit}


def from_dict(d: Mapping[str, Any]) -> FitEstimator:
    """A fitted estimator from a fit JSON dict (the class is chosen by its "approach")."""
    approach = d.get("approach")
    cls = _CLASSES.get(approach if not isinstance(approach, str) else approach.lower())
    if cls is None:
        raise InputError(f"{d.get('source', 'fit JSON')}: unknown approach {approach!r} (expected 1, 2, 3 or 'kaplan')")
    return cls.from_dict(d)


def load_fit(path_or_dict: str | Path | Mapping[str, Any]) -> FitEstimator:
    """A fitted estimator from a fit JSON file (what `scaling fit --out` writes) or its dict."""
    if isinstance(path_or_dict, Mapping):
        return from_dict(path_or_dict)
    path = Path(path_or_dict)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such fit file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a fit JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise InputError(f"{path}: not a fit JSON (expected an object)")
    return from_dict(d)

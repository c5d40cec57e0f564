"""The data-constrained scaling law of Muennighoff et al. 2023 ("Scaling Data-Constrained Language
Models", NeurIPS 2023, eqs. 5-7) and its fitter (`DataConstrainedFit`).

Repeating data is worth less than new data, and a model larger than the data can feed is worth less
than its size. With U_D unique tokens seen D times in all (R_D = D / U_D - 1 repetitions):

    D' = U_D + U_D R*_D (1 - exp(-R_D / R*_D))                               (eq. 5)

and, with U_N = min(N_opt(U_D), N) the compute-optimal model for U_D tokens (R_N = N / U_N - 1):

    N' = U_N + U_N R*_N (1 - exp(-R_N / R*_N))                               (eq. 6)

    L(N, D, U_D) = E + A / N'^alpha + B / D'^beta                              (eq. 7)

R*_D is the number of repetitions after which repeated tokens are worth 1 - 1/e of new ones
(about 15 in the paper), R*_N the same for excess parameters (about 5). With D <= U (one epoch or
less) the law is Chinchilla's. N_opt(U_D) is read off the base law's frontier: D_opt(C) = G^-1 (C/6)^b
gives C/6 = (G U_D)^(1/b) and N_opt = G (G U_D)^(a/b) (Hoffmann et al. 2022 eq. 4).

Fitting follows the paper: the base law (E, A, B, alpha, beta) on the single-epoch rows (D <= U) by
`ChinchillaFit`, then R*_N, R*_D on every row with the base held, by least squares on log loss; then
all seven are polished together (L-BFGS-B) from there.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize

from analysis.bootstrap import percentile_interval, resample_counts
from analysis.chinchilla import ChinchillaFit
from analysis.errors import InputError
from analysis.estimator import FitEstimator, progress_bar
from analysis.io import FitWarning, Points, as_points
from analysis.laws import ChinchillaLaw
from contracts.conventions import FLOPS_PER_PARAM_TOKEN

MIN_SINGLE_EPOCH = 8
"""Single-epoch rows needed to fit the base law on them alone (else every row is used, with a warning)."""


def effective_count(unique: ArrayLike, total: ArrayLike, r_star: ArrayLike) -> np.ndarray:
    """U + U R* (1 - exp(-R / R*)), R = total / U - 1 (clipped at 0): eqs. 5 and 6 of Muennighoff et al."""
    U, X = np.asarray(unique, dtype=float), np.asarray(total, dtype=float)
    R = np.maximum(X / U - 1.0, 0.0)
    return U + U * r_star * (-np.expm1(-R / r_star))


@dataclass(frozen=True)
class DataConstrainedLaw:
    """L(N, D, U) = E + A / N'^alpha + B / D'^beta with D', N' of eqs. 5-6 (Muennighoff et al. 2023)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    R_N: float
    R_D: float

    @property
    def base(self) -> ChinchillaLaw:
        """The law for unrepeated data (Chinchilla's)."""
        return ChinchillaLaw(E=self.E, A=self.A, B=self.B, alpha=self.alpha, beta=self.beta)

    def effective(self, N: ArrayLike, D: ArrayLike, U: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
        """(N', D'): the parameters and tokens the repeated data are worth."""
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        if U is None:
            return N, D
        U_D = np.minimum(np.asarray(U, dtype=float), D)
        base = self.base
        N_for_U = base.G * (base.G * U_D) ** (base.a / base.b)
        U_N = np.minimum(N_for_U, N)
        return effective_count(U_N, N, self.R_N), effective_count(U_D, D, self.R_D)

    def __call__(self, N: ArrayLike, D: ArrayLike, U: ArrayLike | None = None) -> np.ndarray:
        """Loss in nats/token of N parameters trained on D tokens drawn from U unique ones (None: D unique)."""
        Ne, De = self.effective(N, D, U)
        return self.base(Ne, De)

    def to_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in ("E", "A", "B", "alpha", "beta", "R_N", "R_D")}


class DataConstrainedFit(FitEstimator):
    """Fits `DataConstrainedLaw` to points with a unique-tokens column (Points.U).

    Step 1: `ChinchillaFit` (settings `delta`, `init_grid`) on the rows with D <= U; with fewer than
    `MIN_SINGLE_EPOCH` such rows, on every row (FitWarning). Step 2: R*_N, R*_D minimise
    sum (log L(N, D, U) - log loss)^2 over every row, from a grid of starts (R* in 1..1000), bounds
    0.1 <= R* <= 1e5.

    Fitted: law_ (`DataConstrainedLaw`), E_, A_, B_, alpha_, beta_, R_N_, R_D_, a_, b_, G_ (the base
    law's frontier), n_single_epoch_, max_epochs_, rss_. `predict(N, D, U=None)`.
    """

    approach = "data_constrained"

    def __init__(self, *, delta: float = 1e-3, init_grid: Mapping[str, Any] | np.ndarray | None = None,
                 bootstrap: int = 0, interval_level: float = 0.95, random_state: int | None = None,
                 progress: bool = False) -> None:
        self.delta = delta
        self.init_grid = init_grid
        self.bootstrap = bootstrap
        self.interval_level = interval_level
        self.random_state = random_state
        self.progress = progress

    def fit(self, N: Any, D: ArrayLike | None = None, loss: ArrayLike | None = None, *, U: ArrayLike | None = None,
            C: ArrayLike | None = None, columns: Mapping[str, str | None] | None = None,
            source: str | None = None, n_convention: str | None = None) -> "DataConstrainedFit":
        """Fit to `Points` with U, a DataFrame + columns (role "u"), or arrays N, D, loss, U."""
        pts = as_points(N, D, loss, C=C, columns=columns, source=source, n_convention=n_convention)
        if U is not None:
            from dataclasses import replace

            U = np.asarray(U, dtype=float).ravel()
            if U.shape != pts.N.shape or not np.all(np.isfinite(U) & (U > 0)):
                raise InputError(f"{pts.source}: U must be {len(pts)} finite positive unique-token counts")
            pts = replace(pts, U=U)
        if pts.U is None:
            raise InputError(f"{pts.source}: the data-constrained law needs a unique-tokens column "
                             f"(role 'u', e.g. --u-col unique_tokens)")
        single = pts.D <= pts.U * (1.0 + 1e-9)
        self.n_single_epoch_ = int(single.sum())
        self.max_epochs_ = float(np.max(pts.D / pts.U))
        base_pts = pts.subset(single) if self.n_single_epoch_ >= MIN_SINGLE_EPOCH else pts
        if self.n_single_epoch_ < MIN_SINGLE_EPOCH:
            warnings.warn(f"{pts.source}: {self.n_single_epoch_} single-epoch rows (D <= U), fewer than "
                          f"{MIN_SINGLE_EPOCH}: the base law is fitted on every row, repeated ones included",
                          FitWarning, stacklevel=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            base = ChinchillaFit(delta=self.delta, init_grid=self.init_grid).fit(base_pts).law_
        self._fit_r_star(base, pts)
        self._set_data_info(pts)
        self._clear_bootstrap()
        if int(self.bootstrap):
            self._bootstrap(pts, int(self.bootstrap))
        return self

    def _bootstrap(self, pts: Points, n_resamples: int) -> None:
        """Pairs bootstrap: each resample of the rows (drawn with replacement) refits all seven parameters
        by the joint least squares of `_fit_r_star`, started from the full-data optimum (the base law and
        R*_N, R*_D found once; a resample moves them a little)."""
        law = self.law_
        theta0 = np.array([math.log(law.A), math.log(law.B), math.log(law.E), law.alpha, law.beta,
                           math.log(law.R_N), math.log(law.R_D)])
        logL = np.log(pts.loss)
        counts = resample_counts(len(pts), n_resamples, np.random.default_rng(self.random_state))
        bounds = [(None, None)] * 3 + [(1e-3, 3.0)] * 2 + [(np.log(0.1), np.log(1e5))] * 2
        bar = progress_bar(n_resamples, "bootstrap", self.progress)
        draws = []
        for w in counts:
            def rss(theta: np.ndarray, w=w) -> float:
                r = np.log(_law_of(theta)(pts.N, pts.D, pts.U)) - logL
                return float(w @ (r * r))

            res = minimize(rss, theta0, method="L-BFGS-B", bounds=bounds,
                           options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
            draws.append(res.x)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        t = np.array(draws)
        self.bootstrap_params_ = {"E": np.exp(t[:, 2]), "A": np.exp(t[:, 0]), "B": np.exp(t[:, 1]), "alpha": t[:, 3],
                                  "beta": t[:, 4], "R_N": np.exp(t[:, 5]), "R_D": np.exp(t[:, 6])}
        self._set_intervals()

    def bootstrap_laws(self) -> list[DataConstrainedLaw]:
        """One `DataConstrainedLaw` per bootstrap draw (empty without a bootstrap)."""
        bp = getattr(self, "bootstrap_params_", None) or {}
        n = len(next(iter(bp.values()), []))
        return [DataConstrainedLaw(**{k: float(v[i]) for k, v in bp.items()}) for i in range(n)]

    def _fit_r_star(self, base: ChinchillaLaw, pts: Points) -> None:
        logL = np.log(pts.loss)

        def rss(theta: np.ndarray) -> float:
            law = DataConstrainedLaw(**_base_dict(base), R_N=float(np.exp(theta[0])), R_D=float(np.exp(theta[1])))
            r = np.log(law(pts.N, pts.D, pts.U)) - logL
            return float(r @ r)

        bounds = [(np.log(0.1), np.log(1e5))] * 2
        best = None
        for r_n in (1.0, 5.0, 30.0, 300.0):
            for r_d in (1.0, 5.0, 30.0, 300.0):
                res = minimize(rss, np.log([r_n, r_d]), method="L-BFGS-B", bounds=bounds)
                if best is None or res.fun < best.fun:
                    best = res
        # step 3: all seven together from there (a single-epoch run larger than its data's
        # compute-optimal model is discounted too, eq. 6, so step 1 alone is not the base law's optimum)
        def rss_all(theta: np.ndarray) -> float:
            r = np.log(_law_of(theta)(pts.N, pts.D, pts.U)) - logL
            return float(r @ r)

        start = np.array([np.log(base.A), np.log(base.B), np.log(base.E), base.alpha, base.beta, *best.x])
        joint = minimize(rss_all, start, method="L-BFGS-B",
                         bounds=[(None, None)] * 3 + [(1e-3, 3.0)] * 2 + bounds,
                         options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
        final = joint if joint.fun <= best.fun else None
        self._set_law(_law_of(final.x) if final is not None else
                      DataConstrainedLaw(**_base_dict(base), R_N=float(np.exp(best.x[0])), R_D=float(np.exp(best.x[1]))))
        self.rss_ = float(min(joint.fun, best.fun))

    def _set_law(self, law: DataConstrainedLaw) -> None:
        self.law_ = law
        for k, v in law.to_dict().items():
            setattr(self, f"{k}_", v)
        base = law.base
        self.a_, self.b_, self.G_ = float(base.a), float(base.b), float(base.G)

    def predict(self, N: ArrayLike, D: ArrayLike, U: ArrayLike | None = None, interval: float | None = None):
        """Loss of N parameters trained on D tokens drawn from U unique ones (None: every token new)."""
        self._check_fitted()
        mid = self.law_(N, D, U)
        if interval is None:
            return mid
        laws = self.bootstrap_laws()
        if not laws:
            raise InputError("interval: the data-constrained fit has no bootstrap; fit it with bootstrap > 0")
        lo, hi = percentile_interval(np.array([law(N, D, U) for law in laws]), interval)
        return mid, lo, hi

    def compute_optimal(self, C: ArrayLike, U: float | None = None,
                        k: float = FLOPS_PER_PARAM_TOKEN) -> tuple[np.ndarray, np.ndarray]:
        """(N, D) minimising L(N, D, U) under k N D = C (a grid in log N, then a golden refinement)."""
        self._check_fitted()
        from analysis.solvers import numeric_budget

        if U is None:
            return self.law_.base.compute_optimal(C, k)
        law = lambda N, D: self.law_(N, D, U)  # noqa: E731
        out = [numeric_budget(law, float(c), k) for c in np.atleast_1d(np.asarray(C, dtype=float))]
        N, D = (np.array(v) for v in zip(*out))
        return (N[0], D[0]) if np.ndim(C) == 0 else (N, D)

    # ---- JSON (analysis.fitjson)
    def _fields(self) -> dict[str, Any]:
        return {"law": "data_constrained", **self.law_.to_dict(), "a": self.a_, "b": self.b_, "G": self.G_,
                "n_single_epoch": self.n_single_epoch_, "max_epochs": self.max_epochs_, "rss": self.rss_,
                "delta": float(self.delta)}

    @classmethod
    def _settings(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"delta": float(d.get("delta") or 1e-3)}

    def _read_fields(self, d: Mapping[str, Any]) -> None:
        self._set_law(DataConstrainedLaw(**{k: float(d[k]) for k in ("E", "A", "B", "alpha", "beta", "R_N", "R_D")}))
        self.n_single_epoch_ = int(d.get("n_single_epoch", 0))
        self.max_epochs_ = float(d.get("max_epochs", np.nan))
        self.rss_ = float(d.get("rss", d.get("objective", np.nan)))


def _law_of(theta: np.ndarray) -> DataConstrainedLaw:
    """theta = (log A, log B, log E, alpha, beta, log R*_N, log R*_D) -> the law."""
    return DataConstrainedLaw(E=float(np.exp(theta[2])), A=float(np.exp(theta[0])), B=float(np.exp(theta[1])),
                              alpha=float(theta[3]), beta=float(theta[4]), R_N=float(np.exp(theta[5])),
                              R_D=float(np.exp(theta[6])))


def _base_dict(base: ChinchillaLaw) -> dict[str, float]:
    return {k: float(getattr(base, k)) for k in ("E", "A", "B", "alpha", "beta")}

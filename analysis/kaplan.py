"""Kaplan et al. 2020's laws L(N), L(D), L(C) and L(N, D), fitted by least squares on log loss (`KaplanFit`).

`analysis.fit` re-exports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from analysis.bootstrap import resample_counts
from analysis.errors import InputError
from analysis.estimator import FitEstimator, progress_bar
from analysis.io import Points, as_points
from analysis.laws import KaplanLawC, KaplanLawD, KaplanLawN, KaplanLawND, bound_by_ceiling

START_EXPONENTS = (0.05, 0.3)
"""The start grid of L(N, D)'s least squares: alpha_N and alpha_D each take these values..."""
START_OFFSETS = (3.0, 15.0)
"""...and log N_c, log D_c start this far (in e-folds) beyond the data's largest log N, log D."""
N_STARTS = len(START_EXPONENTS) ** 2 * len(START_OFFSETS)


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

    `ceiling=L0` (form "nd" only; ln V for a vocabulary of V tokens, `ceiling_for_vocab`) fits the bounded
    form L = L0 / (1 + 1/K(N, D)), K eq. 1.5 (Alabdulmohsin et al. 2022's M4 with eps_inf = 0, alpha = 1;
    `analysis.laws.bound_by_ceiling`), still by least squares on log loss. Every loss must lie below L0.

    Fitted: form_, alpha_N_, N_c_ / alpha_D_, D_c_ / alpha_C_, C_c_ (as the form has them), ceiling_,
    law_, rss_ (sum of squared log residuals), and with a bootstrap bootstrap_params_, intervals_.
    """

    approach = "kaplan"
    _PARAMS = {"n": ("alpha_N", "N_c"), "d": ("alpha_D", "D_c"), "c": ("alpha_C", "C_c"),
               "nd": ("alpha_N", "alpha_D", "N_c", "D_c")}

    def __init__(self, *, form: str | None = None, ceiling: float | None = None, bootstrap: int = 0,
                 interval_level: float = 0.95, random_state: int | None = None, progress: bool = False,
                 warm_start: np.ndarray | None = None) -> None:
        self.form = form
        self.warm_start = warm_start
        self.ceiling = ceiling
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
        if pts.distinct_nd() < k + 1:
            raise InputError(f"{pts.source}: {pts.distinct_nd()} distinct (N, D) points (of {len(pts)} rows) are "
                             f"too few for the {k} parameters of Kaplan's L({form.upper()})")
        ceiling = _check_ceiling(self.ceiling, form, pts)
        xs = self._inputs(pts, form)
        t = np.log(pts.loss)
        theta, rss = _kaplan_fit(form, xs, t, None, None, ceiling, first=self.warm_start)
        self.form_ = form
        self.ceiling_ = ceiling
        self._set_law(theta)
        self.rss_ = rss
        self._set_data_info(pts)
        self._clear_bootstrap()
        if self.bootstrap:
            rng = np.random.default_rng(self.random_state)
            counts = resample_counts(len(pts), int(self.bootstrap), rng)
            bar = progress_bar(int(self.bootstrap), "bootstrap", self.progress)
            draws = []
            for row in counts:
                draws.append(_kaplan_fit(form, xs, t, row, theta, ceiling)[0])
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                bar.close()
            self.bootstrap_params_ = _kaplan_public(form, np.array(draws))
            self._set_intervals()
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
                     "nd": lambda: KaplanLawND(self.alpha_N_, self.alpha_D_, self.N_c_, self.D_c_,
                                               self.ceiling_)}[self.form_]()

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

    # ------------------------------------------------------------------ JSON (analysis.fitjson)
    def _fields(self) -> dict[str, Any]:
        bounded = {} if self.ceiling_ is None else {
            "ceiling": self.ceiling_,
            "ceiling_meaning": "L0 of the bounded form L = L0 / (1 + 1/K): nats/token of a uniform guess, ln V; "
                               "every fitted loss was checked to lie below it"}
        return {"law": f"kaplan_{self.form_}", "form": self.form_,
                **{k: getattr(self, f"{k}_") for k in self._PARAMS[self.form_]}, **bounded, "rss": self.rss_}

    @classmethod
    def _settings(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        form = str(d.get("form") or ("nd" if "alpha_D" in d and "alpha_N" in d else
                                     "n" if "alpha_N" in d else "d" if "alpha_D" in d else "c")).lower()
        if form not in cls._PARAMS:
            raise ValueError(f"field 'form': {form!r} is not one of {', '.join(cls._PARAMS)}")
        ceiling = d.get("ceiling")
        if ceiling is not None:
            problem = _ceiling_problem(ceiling, form)
            if problem:
                raise ValueError(f"field 'ceiling': {problem}")
            ceiling = float(ceiling)
        return {"form": form, "ceiling": ceiling}

    def _read_fields(self, d: Mapping[str, Any]) -> None:
        self.form_ = self.form
        self.ceiling_ = self.ceiling
        self._set_law(_kaplan_theta(self.form_, {k: float(d[k]) for k in self._PARAMS[self.form_]}))
        self.rss_ = float(d.get("rss", np.nan))


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


def ceiling_for_vocab(vocab_size: int) -> float:
    """ln V: the loss in nats/token of a uniform guess over a vocabulary of V tokens, the bounded form's L0."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or vocab_size < 2:
        raise InputError(f"vocab size: {vocab_size!r} is not a whole number of tokens >= 2")
    return math.log(int(vocab_size))


def _ceiling_problem(ceiling: Any, form: str) -> str | None:
    """What is wrong with a bounded form's L0 (a finite positive number, Kaplan's L(N, D) only), or None;
    the one check behind a fit's argument and a fit JSON's field."""
    if form != "nd":
        return f"the bounded form is Kaplan's L(N, D); form {form!r} takes no ceiling"
    if isinstance(ceiling, bool) or not isinstance(ceiling, (int, float, np.floating)) or not math.isfinite(ceiling) \
            or ceiling <= 0:
        return f"{ceiling!r} is not a positive number of nats/token"
    return None


def _check_ceiling(ceiling: Any, form: str, pts: Points) -> float | None:
    """The bounded form's L0, checked where it enters: a finite positive number above every loss."""
    if ceiling is None:
        return None
    problem = _ceiling_problem(ceiling, form)
    if problem:
        raise InputError(f"ceiling: {problem}")
    top = float(np.max(pts.loss))
    if top >= ceiling:
        raise InputError(f"{pts.source}: a loss of {top:.4g} nats/token is not below the ceiling {ceiling:.4g} "
                         "(ln V, a uniform guess): wrong vocabulary size, or losses not in nats/token")
    return float(ceiling)


def _kaplan_fit(form: str, xs: tuple[np.ndarray, ...], t: np.ndarray, w: np.ndarray | None,
                warm: np.ndarray | None, ceiling: float | None = None,
                first: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Least squares on log loss (weights w = row counts of a resample); returns (theta, rss). `warm`: the
    only start (a bootstrap resample from the full-data optimum); `first`: a start tried before two of
    the grid's (a refit of a subset from the full-data optimum, `warm_start`). With a
    ceiling L0 the model is log L = log L0 - log(1 + e^(-log K)); its Jacobian is K's times
    d log L / d log K = 1 / (1 + K)."""
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
        log_k = aD * np.logaddexp(z1, z2)
        return sw * ((log_k if ceiling is None else bound_by_ceiling(log_k, ceiling)) - t)

    def jac(th):
        aN, aD, u, v = th
        z1, z2 = aN / aD * (u - x), v - y
        s = np.logaddexp(z1, z2)
        q1 = np.exp(z1 - s)
        q2 = 1.0 - q1
        J = np.stack([q1 * (u - x), s - q1 * z1, q1 * aN, aD * q2], axis=1)
        if ceiling is not None:
            J = J * np.exp(-np.logaddexp(0.0, aD * s))[:, None]
        return J * sw[:, None]

    if warm is not None:
        starts = [warm]
    else:
        span_x, span_y = x.max(), y.max()
        starts = [np.array([aN, aD, span_x + du, span_y + du])
                  for aN in START_EXPONENTS for aD in START_EXPONENTS for du in START_OFFSETS]
        if first is not None and form == "nd":
            starts = [np.asarray(first, dtype=float), starts[0], starts[-1]]
    best = None
    for th0 in starts:
        res = least_squares(residual, th0, jac=jac, bounds=([1e-6, 1e-6, -np.inf, -np.inf], [10, 10, np.inf, np.inf]),
                            method="trf", x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=2000)
        if best is None or res.cost < best.cost:
            best = res
    return best.x, float(2.0 * best.cost)

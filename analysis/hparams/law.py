"""The law of an optimal setting: ln s* = a + b ln N + c ln D, or ln s* = a + b ln C.

DeepSeek LLM (2024, §3.1, eq. 1) fits eta_opt = 0.3118 C^-0.1250 and B_opt = 0.2920 C^0.3271, the C-only
form; Li et al. 2025 ("(Mis)fitting scaling laws") and Porian et al. 2024 find the LR optimum drifting
with N and D separately, the (N, D) form. Both are ordinary least squares in logs over the cells'
optima (`analysis.hparams.cells`).

**Which form** is decided by the forecaster's rule (`analysis.forecast`), on its own cuts
(`analysis.forecast.cuts.choose_axis` / `cuts_for` on the cells, question axis "budget"): at each cut
both forms are refitted on the smaller cells and forecast the larger ones; r_f^2 is form f's mean
squared log error averaged over cuts, floored at the smallest in-sample residual variance sigma_0^2
(below it no held-out error tells two forms apart), m_f = max(r_f^2, sigma_0^2). With 2 cuts or more
the form of smaller m_f is chosen (a tie goes to the C-only form, the one with fewer parameters); with
fewer than 2 cuts a cut only rejects: the reference form (C-only, DeepSeek's) is chosen unless its m is
more than 4 times the other's (the forecaster's trim, a factor 2 in RMS). The (N, D) form is not a
candidate when the cells' ln N and ln D are collinear (one tokens-per-parameter ratio: only C is
identified).

**Intervals**: a residual bootstrap (Davison & Hinkley 1997, §6.3, Algorithm 6.3 with the modified
residuals r_i / sqrt(1 - h_ii), centred): the design is fixed (the cells the user chose), each resample
adds resampled residuals to the fitted values and refits. Percentile intervals of the parameters and of
the prediction ln s*(N, D) at any point; the prediction interval is a confidence interval for the
law's optimum, not for one run's best setting. With a handful of cells the residual variance is itself
estimated from n - p degrees of freedom, which the percentile bootstrap ignores (it covered 84% at a
nominal 95% on the synthetic sweep of `benchmarks/bench_hparams.py`): the draws' deviations from the
fit are scaled by t_{n-p}(1 - a/2) / z(1 - a/2), the small-sample correction of the normal-theory
interval (Davison & Hinkley 1997, §5.2).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

from analysis.bootstrap import percentile_interval
from analysis.forecast.cuts import choose_axis, cuts_for
from analysis.forecast.forecaster import TRIM_RMS_FACTOR
from analysis.io import points_from_arrays

FORMS = ("N,D", "C")
"""The (N, D) form and the C-only form."""

REFERENCE_FORM = "C"
TRIM_FACTOR = TRIM_RMS_FACTOR ** 2
"""The forecaster's trim in mean squared error (its factor in RMS, squared)."""

PARAM_NAMES = {"N,D": ("a", "b", "c"), "C": ("a", "b")}


def design(form: str, N, D, C) -> np.ndarray:
    """The regression matrix of `form`: [1, ln N, ln D] or [1, ln C]."""
    N, D, C = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (N, D, C))
    if form == "N,D":
        return np.column_stack([np.ones_like(N), np.log(N), np.log(D)])
    return np.column_stack([np.ones_like(C), np.log(C)])


def law_text(form: str, setting: str = "s") -> str:
    return f"ln {setting}* = a + b ln N + c ln D" if form == "N,D" else f"ln {setting}* = a + b ln C"


def _identified(X: np.ndarray) -> bool:
    return X.shape[0] > X.shape[1] and np.linalg.matrix_rank(X, tol=1e-6 * np.abs(X).max()) == X.shape[1]


class HparamLaw:
    """ln s* as a linear function of ln N, ln D (or ln C), its form chosen on cuts (module docstring).

    Settings: form ("auto", "N,D", "C"), bootstrap (resamples), interval_level, random_state.
    Fitted: form_, coef_ (a, b[, c]), params_ ({name: value}), intervals_ ({name: [lo, hi]}),
    draws_ ((bootstrap, p) coefficients), residual_rms_, selection_ ({axis, why, n_cuts, mse: {form: m},
    candidates, reason}).
    """

    def __init__(self, *, form: str = "auto", bootstrap: int = 1000, interval_level: float = 0.95,
                 random_state: int = 0):
        self.form = form
        self.bootstrap = bootstrap
        self.interval_level = interval_level
        self.random_state = random_state

    def fit(self, N, D, C, optimum) -> "HparamLaw":
        N, D, C, y = (np.asarray(v, dtype=float) for v in (N, D, C, optimum))
        ln_y = np.log(y)
        candidates = {f: design(f, N, D, C) for f in FORMS if _identified(design(f, N, D, C))}
        if not candidates:
            raise ValueError(f"{len(y)} cells cannot identify ln s* = a + b ln C (need 3 cells at 2 budgets or more)")
        self.selection_ = self._select(N, D, C, ln_y, candidates)
        self.form_ = self.selection_["chosen"] if self.form == "auto" else self.form
        if self.form_ not in candidates:
            raise ValueError(f"form {self.form_!r} is not identified by these cells")
        X = candidates[self.form_]
        self.coef_, *_ = np.linalg.lstsq(X, ln_y, rcond=None)
        resid = ln_y - X @ self.coef_
        self.residual_rms_ = float(np.sqrt(np.mean(resid**2)))
        self.n_cells_ = len(y)
        self.draws_ = self._residual_bootstrap(X, ln_y, resid)
        names = PARAM_NAMES[self.form_]
        self.params_ = dict(zip(names, map(float, self.coef_)))
        self.intervals_ = {} if not len(self.draws_) else {
            n: [float(v) for v in percentile_interval(self.draws_[:, j], self.interval_level)]
            for j, n in enumerate(names)}
        return self

    def _select(self, N, D, C, ln_y, candidates: dict[str, np.ndarray]) -> dict:
        pts = points_from_arrays(N, D, loss=np.ones_like(N), C=C, source="cells")
        axis, why = choose_axis(pts, "budget")
        cuts = cuts_for(pts, axis)
        mse: dict[str, list[float]] = {f: [] for f in candidates}
        for k in cuts.cuts:
            fit_rows, test_rows = cuts.split(k)
            for f, X in candidates.items():
                if not _identified(X[fit_rows]):
                    mse[f].append(np.inf)
                    continue
                coef, *_ = np.linalg.lstsq(X[fit_rows], ln_y[fit_rows], rcond=None)
                mse[f].append(float(np.mean((ln_y[test_rows] - X[test_rows] @ coef) ** 2)))
        sigma0 = min(float(np.mean((ln_y - X @ np.linalg.lstsq(X, ln_y, rcond=None)[0]) ** 2))
                     for X in candidates.values())
        m = {f: max(float(np.mean(v)), sigma0) if v else None for f, v in mse.items()}
        chosen, reason = self._choose(m, len(cuts.cuts), candidates)
        return {"axis": axis, "why": why, "n_cuts": len(cuts.cuts), "cut_edges": [float(e) for e in cuts.edges],
                "mse": {f: (None if v is None or not np.isfinite(v) else v) for f, v in m.items()},
                "candidates": list(candidates), "chosen": chosen, "reason": reason}

    @staticmethod
    def _choose(m: dict[str, float | None], n_cuts: int, candidates) -> tuple[str, str]:
        if len(candidates) == 1:
            only = next(iter(candidates))
            return only, (f"only {only} is identified: the cells' ln N and ln D are collinear" if only == "C"
                          else "only the (N, D) form is identified")
        ref, other = REFERENCE_FORM, "N,D"
        if n_cuts and m[other] is not None and not np.isfinite(m[other]):
            return ref, (f"the (N, D) form cannot be refitted on the smaller cells of {n_cuts} cut"
                         f"{'s' if n_cuts != 1 else ''} (3 parameters need 4 cells with N and D not collinear): "
                         "the C-only form")
        if n_cuts >= 2:
            if m[other] < m[ref]:
                return other, f"the (N, D) form forecast the held-out cells better on {n_cuts} cuts"
            return ref, f"the C-only form forecast the held-out cells as well or better on {n_cuts} cuts"
        if n_cuts == 1 and m[ref] > TRIM_FACTOR * m[other]:
            return other, f"one cut only rejects: the C-only form's error was over {TRIM_FACTOR:g}x the (N, D) form's"
        return ref, (f"{n_cuts} cut{'s' if n_cuts != 1 else ''} cannot rank the forms: the reference C-only form "
                     "(DeepSeek LLM) is used")

    def _residual_bootstrap(self, X: np.ndarray, ln_y: np.ndarray, resid: np.ndarray) -> np.ndarray:
        n, p = X.shape
        if self.bootstrap <= 0 or n <= p:
            return np.empty((0, p))
        h = np.einsum("ij,ji->i", X, np.linalg.pinv(X))
        r = resid / np.sqrt(np.clip(1 - h, 1e-6, None))
        r = r - r.mean()
        rng = np.random.default_rng(self.random_state)
        fitted = X @ self.coef_
        Y = fitted[None, :] + r[rng.integers(0, n, size=(self.bootstrap, n))]
        draws = np.linalg.lstsq(X, Y.T, rcond=None)[0].T
        a = (1 - self.interval_level) / 2
        widen = float(student_t.ppf(1 - a, n - p) / norm.ppf(1 - a))
        return self.coef_[None, :] + widen * (draws - self.coef_[None, :])

    def n_bootstrap_text(self) -> str:
        n = len(self.draws_)
        return f"{n} residual-bootstrap refits" if n else "no bootstrap"

    def predict(self, N, D, C=None) -> np.ndarray:
        """s*(N, D) (C = 6 N D unless given)."""
        return np.exp(self._X(N, D, C) @ self.coef_)

    def predict_interval(self, N, D, C=None) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) of s*(N, D) at `interval_level` from the bootstrap draws (NaN without draws)."""
        X = self._X(N, D, C)
        if not len(self.draws_):
            nan = np.full(X.shape[0], np.nan)
            return nan, nan
        lo, hi = percentile_interval(X @ self.draws_.T, self.interval_level, axis=1)
        return np.exp(lo), np.exp(hi)

    def _X(self, N, D, C) -> np.ndarray:
        N, D = np.atleast_1d(np.asarray(N, dtype=float)), np.atleast_1d(np.asarray(D, dtype=float))
        return design(self.form_, N, D, 6.0 * N * D if C is None else C)

    def to_dict(self) -> dict:
        return {"form": self.form_, "params": self.params_, "intervals": self.intervals_,
                "interval_level": self.interval_level if self.intervals_ else None,
                "n_bootstrap": int(len(self.draws_)), "residual_rms": self.residual_rms_,
                "selection": self.selection_, "draws": self.draws_.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "HparamLaw":
        """The fitted law of `to_dict` (the JSON's law block)."""
        law = cls(form=d["form"], bootstrap=int(d.get("n_bootstrap", 0)),
                  interval_level=d.get("interval_level") or 0.95)
        law.form_, law.params_, law.intervals_ = d["form"], dict(d["params"]), dict(d.get("intervals") or {})
        law.coef_ = np.array([law.params_[n] for n in PARAM_NAMES[law.form_]], dtype=float)
        law.draws_ = np.asarray(d.get("draws") or np.empty((0, len(law.coef_))), dtype=float).reshape(-1, len(law.coef_))
        law.residual_rms_, law.selection_ = d.get("residual_rms"), d.get("selection")
        return law


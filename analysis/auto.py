"""`auto`: the law chosen by its out-of-sample forecast error on the user's own data, with intervals
that include the error of the form itself.

Candidates (`candidates_for`): Chinchilla's approach 3 L = E + A/N^alpha + B/D^beta (Hoffmann et al.
2022 eq. 2), Kaplan's L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020 eq.
1.5), and, when the table repeats data (D > U), the data-constrained law (Muennighoff et al. 2023 eqs.
5-7). Each is fitted on every model size but the largest and forecasts the largest ("leave the largest
out": the step a forecast takes beyond the data, Besiroglu et al. 2024 and the OLMo ladder paper check
forecasts the same way); the candidate with the smallest RMS log error there is chosen (ties within
1e-4 go to the earlier candidate, approach 3) and refitted on every row.

Interval (`AutoFit.predict(..., interval=level)`), on the log-loss scale:

    h(x) = sqrt( h_fit(x)^2 + (z * s * d(x))^2 )

h_fit(x) is the half-width of the chosen law's bootstrap-plus-residual prediction interval (quantiles
of log L_b(x) + r_j over bootstrap laws b and training residuals r_j, as `analysis.backtest`);
s = |mean log error| / step of the leave-largest-out forecast, the form's systematic drift per unit of
ln N beyond the data (step = ln(N_largest / N_largest fitted) in that fold); d(x) = max(0, ln N_x -
ln N_max) the forecast's own extrapolation distance beyond the sizes fitted; z the normal quantile of
the level. This generalises `analysis.selection.extrapolation_error` (one held-out budget, linear in
the log distance) to any candidate and to the bias, not the scatter, of the held-out forecast: the
scatter of single runs is already in h_fit.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm

from analysis.bootstrap import percentile_interval
from analysis.chinchilla import ChinchillaFit
from analysis.data_constrained import DataConstrainedFit
from analysis.errors import InputError
from analysis.estimator import FitEstimator
from analysis.io import Points, as_points, repeats_data
from analysis.kaplan import KaplanFit
from analysis.laws import chinchilla_loss, kaplan_nd_loss

CANDIDATE_LAWS = {"chinchilla": "Hoffmann et al. 2022 eq. 2", "kaplan_nd": "Kaplan et al. 2020 eq. 1.5",
                  "data_constrained": "Muennighoff et al. 2023 eqs. 5-7"}
"""The candidate forms and where they come from."""


def candidates_for(pts: Points) -> list[str]:
    """The forms `auto` tries on these points: approach 3, Kaplan L(N, D), and the data-constrained
    law when some row trains past its unique tokens."""
    out = ["chinchilla", "kaplan_nd"]
    if repeats_data(pts):
        out.append("data_constrained")
    return out


def fit_candidate(name: str, pts: Points, *, bootstrap: int = 0, random_state: int | None = 0,
                  fit_kwargs: Mapping[str, Any] | None = None) -> FitEstimator:
    """One candidate fitted to `pts` (warnings of the fitters silenced: a candidate is tried, not reported)."""
    kw = dict(fit_kwargs or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "chinchilla":
            return ChinchillaFit(bootstrap=bootstrap, random_state=random_state, **kw).fit(pts)
        if name == "kaplan_nd":
            return KaplanFit(form="nd", bootstrap=bootstrap, random_state=random_state).fit(pts)
        if name == "data_constrained":
            return DataConstrainedFit(**{k: v for k, v in kw.items() if k in ("delta", "init_grid")}).fit(pts)
    raise InputError(f"auto: unknown candidate {name!r} (candidates: {', '.join(CANDIDATE_LAWS)})")


def _predict(est: FitEstimator, N, D, U=None) -> np.ndarray:
    if isinstance(est, DataConstrainedFit):
        return np.asarray(est.predict(N, D, U), dtype=float)
    return np.asarray(est.predict(N, D), dtype=float)


def size_groups(N: np.ndarray, max_groups: int = 8) -> np.ndarray:
    """A group per row: each distinct model size, or, with more than `max_groups` sizes (digitised or
    continuous N), `max_groups` bins of equal width in ln N (empty bins dropped), numbered by size."""
    sizes = np.unique(N)
    if len(sizes) <= max_groups:
        return np.searchsorted(sizes, N)
    edges = np.linspace(np.log(sizes[0]), np.log(sizes[-1]) + 1e-9, max_groups + 1)
    g = np.clip(np.searchsorted(edges, np.log(N), side="right") - 1, 0, max_groups - 1)
    return np.unique(g, return_inverse=True)[1]


def leave_largest_out(pts: Points, names: list[str], fit_kwargs: Mapping[str, Any] | None = None,
                      min_fit_groups: int = 3, max_cuts: int = 3) -> dict[str, Any]:
    """Forecast the larger model sizes from the smaller ones, at up to `max_cuts` cuts: fit each
    candidate on the size groups (`size_groups`) up to the k-th, forecast every larger group. Per
    candidate: the RMS log error over all forecast rows, and the drift s = RMS over (cut, group) of
    mean log error / ln(N_group / N_cut), N_group the group's geometric-mean size and N_cut the
    largest size fitted: the form's error per unit of ln N beyond the data."""
    groups = size_groups(pts.N)
    n_groups = int(groups.max()) + 1
    if n_groups < min_fit_groups + 1:
        raise InputError(f"{pts.source}: auto needs at least {min_fit_groups + 1} model sizes (fit on the smaller, "
                         f"forecast the larger); the data have {n_groups}")
    cuts = list(range(max(min_fit_groups - 1, n_groups - 1 - max_cuts), n_groups - 1))
    rows = []
    cut_N = [float(np.max(pts.N[groups <= k])) for k in cuts]
    for name in names:
        errs, drifts = [], []
        for k, n_cut in zip(cuts, cut_N):
            train, test = pts.subset(groups <= k), pts.subset(groups > k)
            est = fit_candidate(name, train, fit_kwargs=fit_kwargs)
            log_err = np.log(_predict(est, test.N, test.D, test.U)) - np.log(test.loss)
            errs.append(log_err)
            test_groups = groups[groups > k]
            for g in np.unique(test_groups):
                sel = test_groups == g
                dist = float(np.mean(np.log(test.N[sel]))) - math.log(n_cut)
                drifts.append(float(np.mean(log_err[sel])) / dist)
        e = np.concatenate(errs)
        rows.append({"candidate": name, "law": CANDIDATE_LAWS[name],
                     "rms_log_error": float(np.sqrt(np.mean(e**2))), "mean_log_error": float(np.mean(e)),
                     "mean_abs_rel_error_pct": float(100 * np.mean(np.abs(np.expm1(e)))),
                     "max_abs_rel_error_pct": float(100 * np.max(np.abs(np.expm1(e)))),
                     "drift_per_ln_N": float(np.sqrt(np.mean(np.square(drifts))))})
    return {"method": f"forecast the larger model sizes from the smaller, {len(cuts)} cut(s)",
            "cuts_N": cut_N, "n_size_groups": n_groups, "table": rows}


class AutoFit(FitEstimator):
    """The candidate with the smallest leave-largest-out forecast error, refitted on every row (with
    `bootstrap` resamples), and its extrapolation-aware prediction intervals (module docstring).

    Fitted: chosen_ (candidate name), estimator_ (the chosen fitted law), selection_ (the error table),
    drift_per_ln_N_ (s of the interval formula), N_max_ (largest size fitted), residuals_ (log).
    """

    approach = "auto"

    def __init__(self, *, bootstrap: int = 200, interval_level: float = 0.95, random_state: int | None = 0,
                 progress: bool = False, fit_kwargs: Mapping[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.interval_level = interval_level
        self.random_state = random_state
        self.progress = progress
        self.fit_kwargs = fit_kwargs

    def fit(self, N: Any, D: ArrayLike | None = None, loss: ArrayLike | None = None, *,
            columns: Mapping[str, str | None] | None = None, source: str | None = None,
            n_convention: str | None = None) -> "AutoFit":
        pts = as_points(N, D, loss, columns=columns, source=source, n_convention=n_convention)
        names = candidates_for(pts)
        sel = leave_largest_out(pts, names, self.fit_kwargs)
        best = min(sel["table"], key=lambda r: r["rms_log_error"] + (1e-4 if r["candidate"] != names[0] else 0.0))
        sel["chosen"] = best["candidate"]
        sel["reason"] = "smallest RMS log error forecasting larger model sizes from smaller ones"
        self.chosen_ = best["candidate"]
        self.selection_ = sel
        self.drift_per_ln_N_ = best["drift_per_ln_N"]
        boot = int(self.bootstrap) if self.chosen_ != "data_constrained" else 0
        self.estimator_ = fit_candidate(self.chosen_, pts, bootstrap=boot, random_state=self.random_state,
                                        fit_kwargs=self.fit_kwargs)
        self.N_max_ = float(np.max(pts.N))
        self.residuals_ = np.log(pts.loss) - np.log(_predict(self.estimator_, pts.N, pts.D, pts.U))
        self._set_data_info(pts)
        return self

    def predict(self, N: ArrayLike, D: ArrayLike, U: ArrayLike | None = None, interval: float | None = None):
        """Loss from the chosen law; with `interval`, (mid, lo, hi) per the module docstring."""
        self._check_fitted()
        N, D = np.atleast_1d(np.asarray(N, dtype=float)), np.atleast_1d(np.asarray(D, dtype=float))
        mid = _predict(self.estimator_, N, D, U)
        if interval is None:
            return mid
        logm = np.log(mid)
        draws = self._bootstrap_log_predictions(N, D)
        if draws is None:
            h_fit = np.full(mid.shape, float(np.quantile(np.abs(self.residuals_), interval)))
        else:
            pred = (draws[:, None, :] + self.residuals_[None, :, None]).reshape(-1, len(N))
            lo, hi = percentile_interval(pred, interval)
            h_fit = (hi - lo) / 2.0
        z = float(norm.ppf(0.5 + interval / 2.0))
        dist = np.maximum(0.0, np.log(N) - math.log(self.N_max_))
        h = np.sqrt(h_fit**2 + (z * self.drift_per_ln_N_ * dist) ** 2)
        return mid, np.exp(logm - h), np.exp(logm + h)

    def extrapolation_term(self, N: ArrayLike) -> np.ndarray:
        """s * d(N): the form's expected log error at N from the leave-largest-out drift."""
        return self.drift_per_ln_N_ * np.maximum(0.0, np.log(np.asarray(N, dtype=float)) - math.log(self.N_max_))

    def _bootstrap_log_predictions(self, N: np.ndarray, D: np.ndarray) -> np.ndarray | None:
        bp = getattr(self.estimator_, "bootstrap_params_", None)
        if not bp:
            return None
        draws = {k: np.asarray(v, dtype=float)[:, None] for k, v in bp.items()}
        f = chinchilla_loss if self.chosen_ == "chinchilla" else kaplan_nd_loss
        return np.log(f(N[None, :], D[None, :], **draws))

    # ---- JSON: the choice, the table, and the chosen fit (its own fit JSON)
    def _fields(self) -> dict[str, Any]:
        return {"chosen": self.chosen_, "selection": self.selection_, "drift_per_ln_N": self.drift_per_ln_N_,
                "N_max": self.N_max_, "residuals": [float(r) for r in self.residuals_],
                "fit": self.estimator_.to_dict()}

    def _read_fields(self, d: Mapping[str, Any]) -> None:
        self.chosen_ = str(d["chosen"])
        self.selection_ = dict(d["selection"])
        self.drift_per_ln_N_ = float(d["drift_per_ln_N"])
        self.N_max_ = float(d["N_max"])
        self.residuals_ = np.asarray(d.get("residuals", []), dtype=float)
        inner = d["fit"]
        classes = {3: ChinchillaFit, "kaplan": KaplanFit, "data_constrained": DataConstrainedFit}
        if inner.get("approach") not in classes:
            raise ValueError(f"field 'fit': approach {inner.get('approach')!r} is not a candidate of auto")
        self.estimator_ = classes[inner["approach"]].from_dict(inner)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for key in ("bootstrap", "intervals", "interval_level"):
            out.pop(key, None)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AutoFit":
        est = cls(bootstrap=0)
        est._read_fields(d)
        est._read_data_info(d)
        return est


def describe_selection(fit: AutoFit) -> str:
    """The choice and every candidate's leave-largest-out error, one block of text."""
    sel = fit.selection_
    lines = [f"auto: {fit.chosen_} ({CANDIDATE_LAWS[fit.chosen_]}), chosen by {sel['method']} "
             f"(cuts at N = {', '.join(f'{c:.3g}' for c in sel['cuts_N'])})",
             f"  {'candidate':<18}{'RMS log error':>14}{'mean error':>12}{'max |error|':>13}"]
    for r in sel["table"]:
        mark = "  <- chosen" if r["candidate"] == fit.chosen_ else ""
        lines.append(f"  {r['candidate']:<18}{r['rms_log_error']:>14.4f}{100 * np.expm1(r['mean_log_error']):>+11.2f}%"
                     f"{r['max_abs_rel_error_pct']:>12.2f}%{mark}")
    lines.append(f"  form drift beyond the data: {100 * fit.drift_per_ln_N_:.3f}% of loss per unit ln N "
                 "(added to the prediction interval at each forecast's distance)")
    return "\n".join(lines)


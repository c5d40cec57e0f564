"""`auto`: the law chosen by its out-of-sample forecast error on the user's own data, with intervals
calibrated on that error.

Candidates (`candidates_for`): Chinchilla's approach 3 L = E + A/N^alpha + B/D^beta (Hoffmann et al.
2022 eq. 2, the default form), Kaplan's L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan
et al. 2020 eq. 1.5), approach 3 under non-embedding N when a total-N table also holds the
non-embedding count (`params_nonembedding`: Kaplan et al. 2020 §2.1 fit non-embedding N; Pearce &
Song 2024, "Reconciling Kaplan and Chinchilla scaling laws", trace much of the two papers' disagreement
at small N to that choice), and, when the table repeats data (D > U), the data-constrained law
(Muennighoff et al. 2023 eqs. 5-7). A candidate that cannot apply is left out with its reason
(`skipped_candidates`; also a caller's `exclude`, e.g. targets without the non-embedding count). The
chosen candidate's N convention is the fit's: `n_convention` and `columns.n` of the fit JSON, and
`AutoFit.predict` takes N in it.

Ranking (`leave_largest_out`, `choose`): at up to three cuts k, every candidate is fitted on the model
sizes up to the k-th and forecasts every larger size ("leave the largest k sizes out", k = 1..3,
keeping at least 3 sizes to fit: the step a forecast takes beyond the data, as Besiroglu et al. 2024
and the OLMo ladder paper check forecasts). r_c,k is candidate c's RMS log error at cut k. Approach 3
stays the choice unless another candidate beats it at every cut by a mean margin larger than the
cut-to-cut spread of that margin:

    Delta_k = r_3,k - r_c,k,   choose c  iff  K >= 2  and  mean_k Delta_k > sd_k Delta_k  (ddof 1)

(the mean improvement is more than one standard deviation of the per-cut improvements, i.e. a paired
t statistic above sqrt(K)); among several such candidates the largest mean margin wins. With a single
cut there is no spread to beat and approach 3 stays: one cut is one draw of the forecast error, and on
the OLMo ladder (4 sizes under 2B, one cut) the form that won the single cut lost the real forecast.

Interval (`AutoFit.predict(..., interval=level)`), on the log-loss scale, a studentised split-conformal
interval (Lei et al. 2018, "Distribution-free predictive inference for regression", §5.2, locally
weighted residuals):

    log L(x) in  log L_hat(x) +- z * s * sigma(x),   sigma(x)^2 = Var_b[log L_b(x)] + mean_j r_j^2

sigma(x) is the bootstrap's spread of the chosen law at x (parameter uncertainty, grows with the
extrapolation distance) together with the RMS training residual r (scatter of one run about the law),
z the normal quantile of the level. The scale s is measured out of sample: at every cut the chosen
candidate is refitted with its own bootstrap and each held-out row gets a scaled error
u_i = e_i / sigma_k(x_i) (e_i its log error, sigma_k the same formula for the cut's fit); then

    s^2 = (n0 + sum_i u_i^2) / (n0 + m)

the posterior mean of the scale under a scaled-inverse-chi^2 prior centred on s = 1 (sigma calibrated)
worth n0 = 5 observations (`PRIOR_WEIGHT`), m held-out rows. Where the form holds, the held-out errors
are about as large as sigma predicts (s near 1); where the form drifts, they outgrow sigma_k, s > 1,
and the interval widens by the measured factor. s takes the place of the residual quantile of the
bootstrap-plus-residual interval of `analysis.backtest` (quantiles of log L_b(x) + r_j) instead of a
term added on top of it. n0 was set on synthetic replicates only (tests/analysis/test_auto.py, 8
seeds): a prior weight of 5 kept coverage >= 90% where the form is right at 5 runs per size; there the
mean half-width was 1.06% against 1.14% bootstrap-plus-residual (coverage 95.0% vs 99.2%), and where
the frontier steepens with N (no candidate's form) 97.5% against 91.7%.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm

from analysis.chinchilla import ChinchillaFit
from analysis.data_constrained import DataConstrainedFit
from analysis.errors import InputError
from analysis.estimator import FitEstimator
from analysis.io import Points, as_points, repeats_data
from analysis.kaplan import KaplanFit
from analysis.laws import chinchilla_loss, kaplan_nd_loss

CANDIDATE_LAWS = {"chinchilla": "Hoffmann et al. 2022 eq. 2", "kaplan_nd": "Kaplan et al. 2020 eq. 1.5",
                  "chinchilla_nonembedding": "Hoffmann et al. 2022 eq. 2, non-embedding N (Pearce & Song 2024)",
                  "data_constrained": "Muennighoff et al. 2023 eqs. 5-7"}
"""The candidate forms and where they come from."""

CANDIDATE_CONVENTIONS = {"chinchilla_nonembedding": "nonembedding"}
"""Candidates fitted under another N convention than the table's own (`Points.under`)."""

DEFAULT_CANDIDATE = "chinchilla"
"""The form `auto` keeps unless another beats it by more than the cut-to-cut spread (`choose`)."""

PRIOR_WEIGHT = 5.0
"""n0 of the interval scale's prior (module docstring): how many held-out errors the prior s = 1 is worth."""

MIN_FIT_SIZES = 3
"""Model sizes every cut keeps to fit (5 parameters of approach 3 need at least 3 sizes along N)."""

CUT_BOOTSTRAP = 50
"""Bootstrap resamples of each cut's refit of the chosen form (sigma_k of the interval's scaled errors)."""


def candidates_for(pts: Points, exclude: Mapping[str, str] | None = None) -> list[str]:
    """The forms `auto` tries on these points: approach 3, Kaplan L(N, D), approach 3 under non-embedding
    N when the points carry it, and the data-constrained law when some row trains past its unique
    tokens; less those in `exclude` ({candidate: reason})."""
    out = ["chinchilla", "kaplan_nd"]
    if "nonembedding" in pts.other_n:
        out.append("chinchilla_nonembedding")
    if repeats_data(pts):
        out.append("data_constrained")
    return [c for c in out if c not in (exclude or {})]


def skipped_candidates(pts: Points, exclude: Mapping[str, str] | None = None) -> dict[str, str]:
    """{candidate: why it is not tried} for the convention candidate (and any caller's `exclude`)."""
    out = {}
    if pts.n_convention != "total":
        out["chinchilla_nonembedding"] = f"the table's N is already {pts.n_convention}"
    elif "nonembedding" not in pts.other_n:
        out["chinchilla_nonembedding"] = ("the table has no non-embedding parameter column "
                                          "('params_nonembedding' with a value > 0 in every row)")
    return out | dict(exclude or {})


def view(name: str, pts: Points) -> Points:
    """The points as candidate `name` reads them: N under its convention (`CANDIDATE_CONVENTIONS`)."""
    return pts.under(CANDIDATE_CONVENTIONS[name]) if name in CANDIDATE_CONVENTIONS else pts


def fit_candidate(name: str, pts: Points, *, bootstrap: int = 0, random_state: int | None = 0,
                  fit_kwargs: Mapping[str, Any] | None = None) -> FitEstimator:
    """One candidate fitted to `pts` (warnings of the fitters silenced: a candidate is tried, not reported)."""
    kw = dict(fit_kwargs or {})
    pts = view(name, pts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in ("chinchilla", "chinchilla_nonembedding"):
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


def log_draws(est: FitEstimator, N: np.ndarray, D: np.ndarray) -> np.ndarray | None:
    """(B, n) log losses of the estimator's bootstrap laws at (N, D); None without a bootstrap."""
    bp = getattr(est, "bootstrap_params_", None)
    if not bp or isinstance(est, DataConstrainedFit):
        return None
    draws = {k: np.asarray(v, dtype=float)[:, None] for k, v in bp.items()}
    if not isinstance(est, ChinchillaFit):
        draws["ceiling"] = getattr(est, "ceiling_", None)
    f = chinchilla_loss if isinstance(est, ChinchillaFit) else kaplan_nd_loss
    return np.log(f(np.asarray(N, dtype=float)[None, :], np.asarray(D, dtype=float)[None, :], **draws))


def spread(est: FitEstimator, residuals: np.ndarray, N: ArrayLike, D: ArrayLike) -> np.ndarray:
    """sigma(x) = sqrt(Var_b[log L_b(x)] + mean_j r_j^2) at (N, D): the bootstrap laws' spread of the
    log loss (parameter uncertainty, growing with the distance beyond the data) and the RMS training
    residual (one run's scatter about the law); the residual term alone without a bootstrap. Floored
    at 1e-6 (a millionth of the loss) so that noiseless data give finite scaled errors."""
    N, D = np.atleast_1d(np.asarray(N, dtype=float)), np.atleast_1d(np.asarray(D, dtype=float))
    var = np.full(N.shape, float(np.mean(np.square(residuals))))
    draws = log_draws(est, N, D)
    if draws is not None:
        var = var + np.nanvar(draws, axis=0)
    return np.maximum(np.sqrt(var), 1e-6)


def size_groups(N: np.ndarray, max_groups: int = 8) -> np.ndarray:
    """A group per row: each distinct model size, or, with more than `max_groups` sizes (digitised or
    continuous N), `max_groups` bins of equal width in ln N (empty bins dropped), numbered by size."""
    sizes = np.unique(N)
    if len(sizes) <= max_groups:
        return np.searchsorted(sizes, N)
    edges = np.linspace(np.log(sizes[0]), np.log(sizes[-1]) + 1e-9, max_groups + 1)
    g = np.clip(np.searchsorted(edges, np.log(N), side="right") - 1, 0, max_groups - 1)
    return np.unique(g, return_inverse=True)[1]


def _cuts(pts: Points, min_fit_groups: int, max_cuts: int) -> tuple[np.ndarray, list[int]]:
    groups = size_groups(pts.N)
    n_groups = int(groups.max()) + 1
    if n_groups < min_fit_groups + 1:
        raise InputError(f"{pts.source}: auto needs at least {min_fit_groups + 1} model sizes (fit on the smaller, "
                         f"forecast the larger); the data have {n_groups}")
    return groups, list(range(max(min_fit_groups - 1, n_groups - 1 - max_cuts), n_groups - 1))


def leave_largest_out(pts: Points, names: list[str], fit_kwargs: Mapping[str, Any] | None = None,
                      min_fit_groups: int = 3, max_cuts: int = 3) -> dict[str, Any]:
    """Forecast the larger model sizes from the smaller ones, at up to `max_cuts` cuts: fit each
    candidate on the size groups (`size_groups`) up to the k-th, forecast every larger group. Per
    candidate: the RMS log error at each cut (`rms_log_error_by_cut`) and over all forecast rows, and
    the drift s = RMS over (cut, group) of mean log error / ln(N_group / N_cut), N_group the group's
    geometric-mean size and N_cut the largest size fitted: the form's error per unit of ln N beyond
    the data."""
    groups, cuts = _cuts(pts, min_fit_groups, max_cuts)
    rows = []
    cut_N = [float(np.max(pts.N[groups <= k])) for k in cuts]
    for name in names:
        errs, drifts, by_cut = [], [], []
        for k, n_cut in zip(cuts, cut_N):
            train, test = pts.subset(groups <= k), view(name, pts.subset(groups > k))
            est = fit_candidate(name, train, fit_kwargs=fit_kwargs)
            log_err = np.log(_predict(est, test.N, test.D, test.U)) - np.log(test.loss)
            errs.append(log_err)
            by_cut.append(float(np.sqrt(np.mean(log_err**2))))
            test_groups = groups[groups > k]
            for g in np.unique(test_groups):
                sel = test_groups == g
                dist = float(np.mean(np.log(test.N[sel]))) - math.log(n_cut)
                drifts.append(float(np.mean(log_err[sel])) / dist)
        e = np.concatenate(errs)
        rows.append({"candidate": name, "law": CANDIDATE_LAWS[name],
                     "rms_log_error": float(np.sqrt(np.mean(e**2))), "mean_log_error": float(np.mean(e)),
                     "rms_log_error_by_cut": by_cut,
                     "mean_abs_rel_error_pct": float(100 * np.mean(np.abs(np.expm1(e)))),
                     "max_abs_rel_error_pct": float(100 * np.max(np.abs(np.expm1(e)))),
                     "drift_per_ln_N": float(np.sqrt(np.mean(np.square(drifts))))})
    return {"method": f"forecast the larger model sizes from the smaller, {len(cuts)} cut(s)",
            "cuts_N": cut_N, "n_size_groups": int(groups.max()) + 1, "table": rows}


def choose(selection: Mapping[str, Any], default: str = DEFAULT_CANDIDATE) -> tuple[str, str]:
    """(candidate, reason) by the rule of the module docstring: `default` unless another candidate's
    per-cut margin Delta_k = r_default,k - r_c,k has mean > 0 and mean > its standard deviation over
    the K >= 2 cuts; the largest such mean wins. Each table row gets `margin_mean` and `margin_sd`."""
    table = {r["candidate"]: r for r in selection["table"]}
    if default not in table:
        default = selection["table"][0]["candidate"]
    base = np.asarray(table[default]["rms_log_error_by_cut"], dtype=float)
    best, best_margin = default, 0.0
    for name, row in table.items():
        delta = base - np.asarray(row["rms_log_error_by_cut"], dtype=float)
        row["margin_mean"] = float(np.mean(delta))
        row["margin_sd"] = float(np.std(delta, ddof=1)) if len(delta) >= 2 else None
        if name == default or len(delta) < 2:
            continue
        if row["margin_mean"] > max(row["margin_sd"], 0.0) and row["margin_mean"] > best_margin:
            best, best_margin = name, row["margin_mean"]
    if len(base) < 2:
        return default, f"{default} (the default form): one cut gives no cut-to-cut spread for another form to beat"
    if best == default:
        return default, (f"{default} (the default form): no other form beats it at the {len(base)} cuts by more than "
                         "the cut-to-cut spread of its margin")
    return best, (f"{best} beats {default} at the {len(base)} cuts by a mean RMS log error {best_margin:.4f}, more "
                  f"than the cut-to-cut spread {table[best]['margin_sd']:.4f}")


def calibrate(pts: Points, name: str, fit_kwargs: Mapping[str, Any] | None = None, *, bootstrap: int = CUT_BOOTSTRAP,
              random_state: int | None = 0, min_fit_groups: int = 3, max_cuts: int = 3) -> np.ndarray:
    """The scaled held-out errors u_i = (log truth - log forecast) / sigma_k(x_i) of candidate `name` at
    every cut (module docstring), each cut's fit with `bootstrap` resamples."""
    groups, cuts = _cuts(pts, min_fit_groups, max_cuts)
    out = []
    for k in cuts:
        train, test = view(name, pts.subset(groups <= k)), view(name, pts.subset(groups > k))
        est = fit_candidate(name, train, bootstrap=bootstrap, random_state=random_state, fit_kwargs=fit_kwargs)
        resid = np.log(train.loss) - np.log(_predict(est, train.N, train.D, train.U))
        up = np.log(test.loss) - np.log(_predict(est, test.N, test.D, test.U))   # truth above the forecast: > 0
        out.append(up / spread(est, resid, test.N, test.D))
    return np.concatenate(out)


def interval_scale(scores: np.ndarray, prior_weight: float = PRIOR_WEIGHT) -> float:
    """s = sqrt((n0 + sum u^2) / (n0 + m)): the scale of the scaled held-out errors, shrunk to 1."""
    u = np.asarray(scores, dtype=float)
    u = u[np.isfinite(u)]
    return float(math.sqrt((prior_weight + float(np.sum(u**2))) / (prior_weight + u.size)))


class AutoFit(FitEstimator):
    """The candidate `choose` picks from its leave-largest-out forecast errors, refitted on every row
    (with `bootstrap` resamples), and its calibrated prediction intervals (module docstring).

    Fitted: chosen_ (candidate name), estimator_ (the chosen fitted law), selection_ (the error table,
    the rule's margins, the reason), interval_scale_ (s), interval_scores_ (the u_i), N_max_ (largest
    size fitted), residuals_ (log), drift_per_ln_N_ (the chosen form's drift, `extrapolation_term`).
    """

    approach = "auto"

    def __init__(self, *, bootstrap: int = 200, interval_level: float = 0.95, random_state: int | None = 0,
                 progress: bool = False, fit_kwargs: Mapping[str, Any] | None = None,
                 exclude: Mapping[str, str] | None = None) -> None:
        self.exclude = exclude
        self.bootstrap = bootstrap
        self.interval_level = interval_level
        self.random_state = random_state
        self.progress = progress
        self.fit_kwargs = fit_kwargs

    def fit(self, N: Any, D: ArrayLike | None = None, loss: ArrayLike | None = None, *,
            columns: Mapping[str, str | None] | None = None, source: str | None = None,
            n_convention: str | None = None) -> "AutoFit":
        pts = as_points(N, D, loss, columns=columns, source=source, n_convention=n_convention)
        names = candidates_for(pts, self.exclude)
        n_sizes = int(size_groups(pts.N).max()) + 1
        if n_sizes >= MIN_FIT_SIZES + 1:
            sel = leave_largest_out(pts, names, self.fit_kwargs, min_fit_groups=MIN_FIT_SIZES)
            self.chosen_, sel["reason"] = choose(sel)
        else:   # no cut: nothing to rank on, and s = 1 (the prior alone, m = 0)
            sel = {"method": "no cut (fewer than 4 model sizes)", "cuts_N": [], "n_size_groups": n_sizes, "table": []}
            self.chosen_ = "data_constrained" if "data_constrained" in names else DEFAULT_CANDIDATE
            sel["reason"] = (f"{self.chosen_}: {n_sizes} model size(s) leave no larger size to forecast from smaller "
                             "ones, so no form is ranked and the interval is uncalibrated (s = 1)")
        sel["chosen"] = self.chosen_
        sel["skipped"] = [{"candidate": c, "reason": r} for c, r in skipped_candidates(pts, self.exclude).items()]
        sel["rule"] = "approach 3 unless another form's per-cut margin has mean > 0 and mean > its sd over >= 2 cuts"
        self.selection_ = sel
        self.drift_per_ln_N_ = next((r["drift_per_ln_N"] for r in sel["table"] if r["candidate"] == self.chosen_), 0.0)
        # the data-constrained bootstrap refits seven parameters numerically per resample (about a second
        # each): auto calibrates that law on its residual scatter alone (sigma = RMS residual, s measured)
        boot = int(self.bootstrap) if self.chosen_ != "data_constrained" else 0
        self.interval_scores_ = (calibrate(pts, self.chosen_, self.fit_kwargs, bootstrap=min(boot, CUT_BOOTSTRAP),
                                           random_state=self.random_state, min_fit_groups=MIN_FIT_SIZES)
                                 if sel["table"] else np.zeros(0))
        self.interval_scale_ = interval_scale(self.interval_scores_)
        self.estimator_ = fit_candidate(self.chosen_, pts, bootstrap=boot, random_state=self.random_state,
                                        fit_kwargs=self.fit_kwargs)
        pts = view(self.chosen_, pts)   # the chosen convention's N: the fit's n_convention and columns.n
        self.N_max_ = float(np.max(pts.N))
        self.residuals_ = np.log(pts.loss) - np.log(_predict(self.estimator_, pts.N, pts.D, pts.U))
        self._set_data_info(pts)
        return self

    def predict(self, N: ArrayLike, D: ArrayLike, U: ArrayLike | None = None, interval: float | None = None):
        """Loss from the chosen law at N in the fit's convention (`n_convention_`); with `interval`,
        (mid, lo, hi) = L_hat exp(-+ z s sigma(x))."""
        self._check_fitted()
        N, D = np.atleast_1d(np.asarray(N, dtype=float)), np.atleast_1d(np.asarray(D, dtype=float))
        mid = _predict(self.estimator_, N, D, U)
        if interval is None:
            return mid
        h = self.half_width(N, D, interval)
        return mid, mid * np.exp(-h), mid * np.exp(h)

    def half_width(self, N: ArrayLike, D: ArrayLike, level: float | None = None) -> np.ndarray:
        """z s sigma(x) on the log-loss scale at (N, D) (module docstring)."""
        level = self.interval_level if level is None else level
        if not 0 < level < 1:
            raise InputError(f"interval level: {level} is not in (0, 1)")
        return float(norm.ppf(0.5 + level / 2.0)) * self.interval_scale_ * spread(self.estimator_, self.residuals_, N, D)

    def extrapolation_term(self, N: ArrayLike) -> np.ndarray:
        """s_drift * d(N): the chosen form's mean log error per unit ln N beyond the largest size fitted
        (leave-largest-out drift) times the distance; zero inside the data."""
        return self.drift_per_ln_N_ * np.maximum(0.0, np.log(np.asarray(N, dtype=float)) - math.log(self.N_max_))

    def _bootstrap_log_predictions(self, N: np.ndarray, D: np.ndarray) -> np.ndarray | None:
        return log_draws(self.estimator_, np.asarray(N, dtype=float), np.asarray(D, dtype=float))

    # ---- JSON: the choice, the table, the interval's calibration, and the chosen fit (its own fit JSON)
    def _fields(self) -> dict[str, Any]:
        return {"chosen": self.chosen_, "selection": self.selection_, "drift_per_ln_N": self.drift_per_ln_N_,
                "interval_scale": self.interval_scale_, "interval_scores": [float(u) for u in self.interval_scores_],
                "interval_prior_weight": PRIOR_WEIGHT,
                "N_max": self.N_max_, "residuals": [float(r) for r in self.residuals_],
                "fit": self.estimator_.to_dict()}

    def _read_fields(self, d: Mapping[str, Any]) -> None:
        self.chosen_ = str(d["chosen"])
        self.selection_ = dict(d["selection"])
        self.drift_per_ln_N_ = float(d["drift_per_ln_N"])
        # a file of the first auto (no calibration) reads with s = 1: bootstrap and residual scatter only
        self.interval_scale_ = float(d.get("interval_scale", 1.0))
        self.interval_scores_ = np.asarray(d.get("interval_scores", []), dtype=float)
        self.N_max_ = float(d["N_max"])
        self.residuals_ = np.asarray(d.get("residuals", []), dtype=float)
        if not (math.isfinite(self.interval_scale_) and self.interval_scale_ > 0):
            raise ValueError(f"field 'interval_scale': {self.interval_scale_!r} is not a finite number > 0")
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
    """The choice, the rule's reason and every candidate's leave-largest-out error, one block of text."""
    sel = fit.selection_
    cuts = f" (cuts at N = {', '.join(f'{c:.3g}' for c in sel['cuts_N'])})" if sel["cuts_N"] else ""
    lines = [f"auto: {fit.chosen_} ({CANDIDATE_LAWS[fit.chosen_]}), chosen by {sel['method']}{cuts}",
             f"  {'candidate':<18}{'RMS log error':>14}{'by cut':>24}{'mean error':>12}{'max |error|':>13}"]
    for r in sel["table"]:
        mark = "  <- chosen" if r["candidate"] == fit.chosen_ else ""
        by_cut = ", ".join(f"{v:.4f}" for v in r.get("rms_log_error_by_cut", []))
        lines.append(f"  {r['candidate']:<18}{r['rms_log_error']:>14.4f}{by_cut:>24}"
                     f"{100 * np.expm1(r['mean_log_error']):>+11.2f}%{r['max_abs_rel_error_pct']:>12.2f}%{mark}")
    if sel.get("reason"):
        lines.append(f"  why: {sel['reason']}")
    for skip in sel.get("skipped", []):
        lines.append(f"  not tried: {skip['candidate']}: {skip['reason']}")
    lines.append(f"  interval scale s = {fit.interval_scale_:.3f} (the {len(fit.interval_scores_)} held-out errors in units "
                 "of their fit's bootstrap-plus-scatter sigma):\n  95% interval = exp(+-1.96 s sigma(N, D)) around the forecast")
    return "\n".join(lines)

"""The forecaster: one answer to "what loss, which law, how sure" for every command.

`plan`, `backtest`, `report`, `fit --approach auto` and `scaling demo` all fit a `Forecaster`; no
command chooses a law itself. In order, `Forecaster.fit`:

1. **Domain** (`analysis.forecast.domain`): rows no candidate law describes (non-finite, at or above
   ln V, beaten by a smaller run: diverged or overfitting) are set aside and named in one FitWarning.
2. **Candidates** (`analysis.forecast.candidates`): every form that applies, each fitted on all kept rows;
   a degenerate fit (exponent <= 0, no finite optimum) is named and never weighed.
3. **Cuts along the question's axis** (`analysis.forecast.cuts`): budget for a budget forecast, size for a
   size forecast, tokens per parameter for over-training; at each cut every candidate is refitted on the
   smaller part and forecasts the rest. r_c^2 is candidate c's mean squared log error, averaged over cuts.
4. **Weights**: a forecast combination with inverse-MSE weights (Bates & Granger 1969, "The combination of
   forecasts"), trimmed to the candidates within a factor 2 of the best in RMS error (Aiolfi & Timmermann
   2006 trim the worst forecasts before combining):

       m_c = max(r_c^2, sigma_0^2),  keep c iff m_c <= 4 min_c' m_c',  w_c = (1/m_c) / sum_kept (1/m_c')

   sigma_0 is the smallest in-sample RMS log residual of a candidate: the scatter of one run about a
   law, below which no held-out error tells two forms apart. A form that forecasts the held-out part
   much better takes (nearly) all the weight; forms the cuts cannot tell apart share it, and their
   disagreement enters the interval instead of a coin flip of one cut. Members share one N convention
   (that of the best). The heaviest is `chosen_`. This needs 2 cuts or more: one cut is one draw of
   the forecast error (on the OLMo ladder, 4 sizes under 2B, the form that won the single cut lost
   the real forecast). With fewer than 2 cuts the cut only rejects (the same trim); it does not rank:
   the forecast is the reference form when it is kept (`reference_form`: Kaplan's law bounded by ln V
   when the runs record V, the one candidate that respects that known ceiling, else approach 3), else
   the kept forms equally weighted, and the interval spans the disagreement of every kept form with it
   (the prior; without any cut, every non-degenerate form is kept, or the data-constrained law alone
   for repeated data).
5. **Forecast and interval**, on the log-loss scale, a studentised split-conformal interval (Lei et al.
   2018, "Distribution-free predictive inference for regression", §5.2):

       log L(x) = sum_c w_c log L_c(x)
       log L(x) in log L(x) +- z s sigma(x),
       sigma(x)^2 = Var_b[sum_c w_c log L_c,b(x)] + mean_j r_j^2 + sum_c v_c (log L_c(x) - log L(x))^2

   the bootstrap spread of the combined law (parameter uncertainty, growing with the distance beyond
   the data), the RMS training residual (one run's scatter) and the members' disagreement (model
   uncertainty; v_c = w_c with 2+ cuts, equal over the kept forms with fewer). The scale s is measured on the cuts: every member is refitted at each cut with
   `CUT_BOOTSTRAP` resamples, each held-out row gets u_i = e_i / sigma_k(x_i), and

       s^2 = (n0 + sum_i u_i^2) / (n0 + m),   n0 = 5 (`PRIOR_WEIGHT`)

   the posterior mean of the scale under a prior centred on s = 1 worth n0 rows. With a single cut s is
   not allowed below 1: one cut is one draw of the forecast error, and a lucky one must not narrow
   the interval (it widens to the prior instead).
6. **Bend check** (budget axis, 3+ budgets): the slope of the per-budget minimum log loss per decade of
   C, against the combined law's compute-optimal loss at the same budgets; a frontier that steepens
   beyond what the law follows is said (`bend_`).

The choice of rules (trim factor 2 in RMS, n0 = 5, s >= 1 with one cut, 2% monotone tolerance) was
frozen before any of the sweeps it was checked on were run (see the README's forecast section).
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
from analysis.forecast import candidates as cand
from analysis.forecast.bend import bend_check
from analysis.forecast.combine import CombinedLaw, member_law
from analysis.forecast.cuts import Cuts, choose_axis, cuts_for
from analysis.forecast.domain import law_domain
from analysis.io import Points, as_points
from analysis.kaplan import KaplanFit, ceiling_for_vocab
from analysis.objective import start_grid

DEFAULT_BOOTSTRAP = 200
"""Bootstrap resamples of every member's fit on all rows: `plan`, `backtest` and the demo use this."""

CUT_BOOTSTRAP = 50
"""Bootstrap resamples of each member's refit at each cut (sigma_k of the scaled held-out errors)."""

PRIOR_WEIGHT = 5.0
"""n0 of the interval scale's prior: how many held-out rows the prior s = 1 is worth."""

def reference_form(names) -> str:
    """The form a forecast falls back on when fewer than 2 cuts cannot rank the candidates: Kaplan's law
    bounded by ln V when the runs record their vocabulary (the one candidate that respects that known
    ceiling: approach 3's and Kaplan's power laws exceed the loss of a uniform guess at small enough N
    or D), else approach 3 (Hoffmann et al. 2022, the field's reference form)."""
    return "kaplan_bounded" if "kaplan_bounded" in names else "chinchilla"

TRIM_RMS_FACTOR = 2.0
"""Candidates whose cut RMS log error exceeds the best's by more than this factor get no weight."""

CUT_START_STRIDE = 45
"""Approach-3 refits at a cut start from the full-data optimum and every 45th start of the grid (100 of
Chinchilla's 4,500); Kaplan refits from the full-data optimum and two grid starts."""


class Forecaster(FitEstimator):
    """The candidate laws weighed by their forecasts along the question's axis, and the calibrated
    interval of their combination (module docstring). `approach` "auto" in the fit JSON.

    Settings: axis ("auto", "budget", "size", "tokens_per_param"), bootstrap, interval_level,
    random_state, vocab_size (V for L0 = ln V when the points do not record it), keep_all (no domain
    rules), fit_kwargs (approach-3 settings such as init_grid), exclude ({candidate: reason}).

    Fitted: axis_, axis_reason_, ceiling_, domain_, selection_ (the cut table: each candidate's error
    per cut, weight, degenerate reason), weights_, chosen_, members_ ({name: fitted estimator}),
    interval_scale_, interval_scores_, n_cuts_, residuals_, N_max_, bend_; and in memory only (not in
    the JSON) candidates_, every candidate's fit on all kept rows.
    """

    approach = "auto"

    def __init__(self, *, axis: str = "auto", bootstrap: int = DEFAULT_BOOTSTRAP, interval_level: float = 0.95,
                 random_state: int | None = 0, vocab_size: int | None = None, keep_all: bool = False,
                 progress: bool = False, fit_kwargs: Mapping[str, Any] | None = None,
                 exclude: Mapping[str, str] | None = None) -> None:
        self.axis = axis
        self.bootstrap = bootstrap
        self.interval_level = interval_level
        self.random_state = random_state
        self.vocab_size = vocab_size
        self.keep_all = keep_all
        self.progress = progress
        self.fit_kwargs = fit_kwargs
        self.exclude = exclude

    # ------------------------------------------------------------------ fitting
    def fit(self, N: Any, D: ArrayLike | None = None, loss: ArrayLike | None = None, *,
            columns: Mapping[str, str | None] | None = None, source: str | None = None,
            n_convention: str | None = None) -> "Forecaster":
        pts = as_points(N, D, loss, columns=columns, source=source, n_convention=n_convention)
        vocab = pts.vocab_size if pts.vocab_size is not None else self.vocab_size
        if self.vocab_size is not None and pts.vocab_size is not None and int(self.vocab_size) != pts.vocab_size:
            raise InputError(f"{pts.source}: the runs record a vocabulary of {pts.vocab_size} tokens; the vocab size "
                             f"given, {self.vocab_size}, disagrees (give none for a folder that records it)")
        self.vocab_size_ = None if vocab is None else int(vocab)
        self.ceiling_ = None if vocab is None else ceiling_for_vocab(vocab)
        dom = law_domain(pts, self.ceiling_, keep_all=self.keep_all)
        self.domain_ = dom.to_dict()
        pts = pts.subset(dom.keep)
        if pts.distinct_nd() < 5:
            raise InputError(f"{pts.source}: {pts.distinct_nd()} distinct (N, D) points are left to fit; every "
                             "candidate law needs at least 5")
        names, skipped = cand.applicable(pts, self.ceiling_, self.exclude)
        self.axis_, self.axis_reason_ = choose_axis(pts, self.axis)
        cuts = cuts_for(pts, self.axis_)
        boot = int(self.bootstrap)
        full = {n: self._fit(n, pts, 0) for n in names}
        degenerate = {n: cand.degenerate_reason(n, est, float(np.max(pts.C))) if est is not None else
                      f"{n}: the fit failed on these points" for n, est in full.items()}
        if all(degenerate.values()):
            raise InputError(f"{pts.source}: every candidate law's fit is degenerate ("
                             + "; ".join(r for r in degenerate.values() if r) + "): the data cannot pin a law "
                             "(more model sizes and token counts are needed)")
        # the cuts: every usable candidate refitted on the smaller part (no bootstrap: the ranking needs
        # central fits); then the members again with a bootstrap for the interval's calibration (below)
        cut_fits = [{n: None if degenerate[n] else self._fit(n, pts.subset(cuts.split(k)[0]), 0, full.get(n))
                     for n in names} for k in cuts.cuts]
        table = _cut_table(names, pts, cuts, cut_fits)
        noise = min((float(np.sqrt(np.mean(_log_err(est, pts) ** 2))) for n, est in full.items()
                     if est is not None and not degenerate[n]), default=0.0)
        weights, spread, reason = _weights(table, degenerate, cuts, pts, noise, full)
        for row in table:
            row["weight"] = weights.get(row["candidate"], 0.0)
            row["spread_weight"] = spread.get(row["candidate"], 0.0)
            row["degenerate"] = degenerate[row["candidate"]]
        self.weights_ = weights
        self.spread_weights_ = spread
        self.chosen_ = max(weights, key=weights.get)
        self.candidates_ = {n: est for n, est in full.items() if est is not None}   # in memory only
        self.members_ = {n: (full[n] if not boot or isinstance(full[n], DataConstrainedFit)
                             else self._fit(n, pts, boot, full[n])) for n in {**spread, **weights}}
        if boot:
            cut_fits = [{**fits, **{n: self._fit(n, pts.subset(cuts.split(k)[0]), min(boot, CUT_BOOTSTRAP), full[n])
                                    for n in self.members_ if fits.get(n) is not None}}
                        for k, fits in zip(cuts.cuts, cut_fits)]
        self.n_cuts_ = sum(any(math.isfinite(r["rms_log_error_by_cut"][i]) for r in table if not degenerate[r["candidate"]])
                           for i in range(len(cuts.cuts)))   # cuts where some usable candidate forecast
        self.noise_ = noise
        self.interval_scores_ = _scores(self, pts, cuts, cut_fits)
        s = interval_scale(self.interval_scores_)
        self.interval_scale_ = max(s, 1.0) if self.n_cuts_ < 2 else s
        pts_c = cand.view(self.chosen_, pts)
        self.N_max_ = float(np.max(pts_c.N))
        self.residuals_ = np.log(pts_c.loss) - np.log(self.predict(pts_c.N, pts_c.D, pts_c.U))
        self.selection_ = {
            "axis": self.axis_, "axis_reason": self.axis_reason_,
            "method": (f"forecast the larger {_AXIS_WORDS[self.axis_]} from the smaller, {len(cuts.cuts)} cut(s)"
                       if cuts.cuts else f"no cut along {_AXIS_WORDS[self.axis_]}"),
            "cuts": cuts.edges, "n_groups": cuts.n_groups, "table": table, "chosen": self.chosen_,
            "weights": weights, "spread_weights": spread, "reason": reason, "noise_rms_log": noise,
            "skipped": [{"candidate": c, "reason": r} for c, r in skipped.items()],
            "degenerate": [{"candidate": n, "reason": r} for n, r in degenerate.items() if r],
            "rule": (f"inverse-MSE weights over the cuts, trimmed to RMS error within {TRIM_RMS_FACTOR:g}x of the "
                     "best, errors floored at the residual scatter (Bates & Granger 1969)"),
        }
        for r in self.selection_["degenerate"]:
            warnings.warn(f"{pts.source}: degenerate fit, not used: {r['reason']}", _fit_warning(), stacklevel=2)
        self.bend_ = bend_check(pts, self.law_for(), self.axis_) if self.axis_ == "budget" else None
        self._set_data_info(pts_c)
        return self

    def _fit(self, name: str, pts: Points, bootstrap: int, warm: FitEstimator | None = None) -> FitEstimator | None:
        """Candidate `name` on `pts`, or None when it cannot be fitted there. Approach 3 warm-starts from
        `warm` (the full-data optimum) plus a coarse grid instead of the 4,500 starts; Kaplan's forms from
        `warm`'s parameters and two grid starts."""
        kw = dict(self.fit_kwargs or {})
        if warm is not None and isinstance(warm, KaplanFit):
            kw["warm_start"] = warm.theta_
        if warm is not None and isinstance(warm, ChinchillaFit):
            grid = kw.get("init_grid")
            base = start_grid(dict(grid) if isinstance(grid, Mapping) else None) if not isinstance(grid, np.ndarray) \
                else np.atleast_2d(grid)
            kw["init_grid"] = np.vstack([warm.theta_[None, :], base[::CUT_START_STRIDE]])
        try:
            return cand.fit_candidate(name, pts, ceiling=self.ceiling_, bootstrap=bootstrap,
                                      random_state=self.random_state, fit_kwargs=kw)
        except (InputError, ValueError, FloatingPointError, np.linalg.LinAlgError):
            return None

    # ------------------------------------------------------------------ using the fit
    def law_for(self, U: float | None = None) -> CombinedLaw:
        """The combined law L(N, D) (U: unique tokens for a data-constrained member; None plans its base law)."""
        return CombinedLaw([(w, member_law(self.members_[n], U)) for n, w in self.weights_.items()])

    def bootstrap_laws(self, U: float | None = None) -> list[CombinedLaw]:
        """One combined law per bootstrap draw: member c's b-th law (its central law if it has none)."""
        from analysis.solvers import laws_from_samples

        per = {}
        for n in self.weights_:
            est = self.members_[n]
            bp = getattr(est, "bootstrap_params_", None)
            if bp and not isinstance(est, DataConstrainedFit):
                per[n] = laws_from_samples(est.law_, bp)
        if not per:
            return []
        B = min(len(v) for v in per.values())
        return [CombinedLaw([(w, per[n][b] if n in per else member_law(self.members_[n], U))
                             for n, w in self.weights_.items()]) for b in range(B)]

    def member_log_predictions(self, N: ArrayLike, D: ArrayLike, U: ArrayLike | None = None) -> dict[str, np.ndarray]:
        """{member: log L_c(N, D)} (N in the fit's convention)."""
        N, D = np.atleast_1d(np.asarray(N, dtype=float)), np.atleast_1d(np.asarray(D, dtype=float))
        return {n: np.log(cand.predict(self.members_[n], N, D, U)) for n in self.weights_}

    def predict(self, N: ArrayLike, D: ArrayLike, U: ArrayLike | None = None, interval: float | None = None):
        """The combined forecast at N (in `n_convention_`) and D; with `interval`, (mid, lo, hi) =
        L exp(-+ z s sigma(x))."""
        logs = self.member_log_predictions(N, D, U)
        mid = np.exp(sum(self.weights_[n] * v for n, v in logs.items()))
        if interval is None:
            return mid
        h = self.half_width(N, D, interval, U)
        return mid, mid * np.exp(-h), mid * np.exp(h)

    def sigma(self, N: ArrayLike, D: ArrayLike, U: ArrayLike | None = None) -> np.ndarray:
        """sigma(x) of the module docstring (before the scale s)."""
        return _sigma(self.members_, self.weights_, self.spread_weights_, getattr(self, "residuals_", np.zeros(0)),
                      N, D, U)

    def half_width(self, N: ArrayLike, D: ArrayLike, level: float | None = None, U: ArrayLike | None = None) -> np.ndarray:
        """z s sigma(x) on the log-loss scale."""
        self._check_fitted()
        level = self.interval_level if level is None else level
        if not 0 < level < 1:
            raise InputError(f"interval level: {level} is not in (0, 1)")
        return float(norm.ppf(0.5 + level / 2.0)) * self.interval_scale_ * self.sigma(N, D, U)

    def bootstrap_log_predictions(self, N: np.ndarray, D: np.ndarray) -> np.ndarray | None:
        return _combined_draws(self.members_, self.weights_, np.asarray(N, dtype=float), np.asarray(D, dtype=float))

    # ------------------------------------------------------------------ JSON
    def _fields(self) -> dict[str, Any]:
        known = {} if self.ceiling_ is None else {"ceiling": self.ceiling_, "vocab_size": self.vocab_size_,
                                                  "ceiling_meaning": "ln V, the loss of a uniform guess over the "
                                                  "runs' recorded vocabulary of V tokens"}
        return {"chosen": self.chosen_, "axis": self.axis_, "weights": dict(self.weights_),
                "selection": self.selection_, "domain": self.domain_, **known,
                "interval_scale": self.interval_scale_, "interval_scores": [float(u) for u in self.interval_scores_],
                "interval_prior_weight": PRIOR_WEIGHT, "n_cuts": self.n_cuts_, "N_max": self.N_max_,
                "residuals": [float(r) for r in self.residuals_], "bend": self.bend_,
                "spread_weights": dict(self.spread_weights_),
                "members": [{"candidate": n, "weight": self.weights_.get(n, 0.0),
                             "spread_weight": self.spread_weights_.get(n, 0.0), "fit": est.to_dict()}
                            for n, est in self.members_.items()],
                "fit": self.members_[self.chosen_].to_dict()}

    def _read_fields(self, d: Mapping[str, Any]) -> None:
        from analysis.forecast.jsonread import read_forecaster_fields

        read_forecaster_fields(self, d)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for key in ("bootstrap", "intervals", "interval_level"):
            out.pop(key, None)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Forecaster":
        est = cls(bootstrap=0)
        est._read_fields(d)
        est._read_data_info(d)
        return est


_AXIS_WORDS = {"budget": "budgets", "size": "model sizes", "tokens_per_param": "tokens per parameter"}


def _fit_warning():
    from analysis.io import FitWarning

    return FitWarning


def _log_err(est: FitEstimator, pts: Points) -> np.ndarray:
    return np.log(cand.predict(est, pts.N, pts.D, pts.U)) - np.log(pts.loss)


def _cut_table(names: list[str], pts: Points, cuts: Cuts, cut_fits: list[dict]) -> list[dict[str, Any]]:
    """Per candidate: RMS log error at each cut (inf where its fit failed), over all forecast rows, mean
    error, mean and largest |relative error|."""
    rows = []
    for n in names:
        by_cut, errs = [], []
        for k, fits in zip(cuts.cuts, cut_fits):
            test = cand.view(n, pts.subset(cuts.split(k)[1]))
            est = fits[n]
            e = _log_err(est, test) if est is not None else np.full(len(test), np.inf)
            e = np.where(np.isfinite(e), e, np.inf)
            by_cut.append(float(np.sqrt(np.mean(e**2))))
            errs.append(e)
        e = np.concatenate(errs) if errs else np.zeros(0)
        finite = bool(e.size) and bool(np.all(np.isfinite(e)))
        rows.append({"candidate": n, "law": cand.CANDIDATES[n].law, "rms_log_error_by_cut": by_cut,
                     "rms_log_error": float(np.sqrt(np.mean([b * b for b in by_cut]))) if by_cut else None,
                     "mean_log_error": float(np.mean(e)) if finite else None,
                     "mean_abs_rel_error_pct": float(100 * np.mean(np.abs(np.expm1(e)))) if finite else None,
                     "max_abs_rel_error_pct": float(100 * np.max(np.abs(np.expm1(e)))) if finite else None})
    return rows


def _weights(table: list[dict], degenerate: Mapping[str, str | None], cuts: Cuts, pts: Points, noise: float,
             full: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float], str]:
    """(forecast weights, disagreement weights, the reason in words): the rule of the module docstring."""
    usable = [r["candidate"] for r in table if not degenerate[r["candidate"]]]   # never empty: fit() refused that
    mse = {r["candidate"]: max(float(r["rms_log_error"]) ** 2, noise**2) for r in table
           if r["candidate"] in usable and r["rms_log_error"] is not None and math.isfinite(r["rms_log_error"])}
    if not cuts.cuts or not mse:
        kept = ["data_constrained"] if "data_constrained" in usable else usable
        kept = [n for n in kept if cand.CANDIDATES[n].n_convention is None] or kept[:1]
        why = (f"no cut along {_AXIS_WORDS[cuts.axis]}" if not cuts.cuts else
               f"no candidate could be refitted below the cuts along {_AXIS_WORDS[cuts.axis]} (too few rows)")
        why += ": nothing ranks the candidates"
    else:
        best = min(mse.values())
        heaviest = min(mse, key=mse.get)
        kept = sorted((n for n, m in mse.items() if m <= TRIM_RMS_FACTOR**2 * best
                       and cand.CANDIDATES[n].n_convention == cand.CANDIDATES[heaviest].n_convention), key=mse.get)
        dropped = [n for n in mse if n not in kept]
        why = (f"{len(cuts.cuts)} cut(s) along {_AXIS_WORDS[cuts.axis]}"
               + (f"; out: {', '.join(dropped)} (RMS error over {TRIM_RMS_FACTOR:g}x the best's, or another N "
                  "convention than the best's)" if dropped else ""))
        if len(cuts.cuts) >= 2:
            total = sum(1.0 / mse[n] for n in kept)
            weights = {n: (1.0 / mse[n]) / total for n in kept}
            shares = ", ".join(f"{n} {100 * w:.0f}%" for n, w in weights.items())
            return weights, dict(weights), f"inverse held-out MSE weights over {why}: {shares}"
    equal = {n: 1.0 / len(kept) for n in kept}
    ref = reference_form([r["candidate"] for r in table])
    weights = {ref: 1.0} if ref in kept else dict(equal)
    lead = f"{ref} (the reference form)" if ref in kept else "the kept forms, equally weighted"
    return weights, equal, (f"{why}: fewer than 2 cuts only reject, they do not rank; the forecast is {lead}, and "
                            f"the interval spans the disagreement of {', '.join(kept)} with it (the prior), its "
                            "scale not allowed below 1" if len(kept) > 1 or cuts.cuts else
                            f"{why}: the forecast is {lead}")


def _combined_draws(members: Mapping[str, FitEstimator], weights: Mapping[str, float], N: np.ndarray,
                    D: np.ndarray, U: np.ndarray | None = None) -> np.ndarray | None:
    """(B, n) log losses of the combined law's bootstrap draws; members without draws add their central value."""
    draws = {n: cand.log_draws(members[n], N, D) for n in weights}
    have = [d for d in draws.values() if d is not None]
    if not have:
        return None
    B = min(d.shape[0] for d in have)
    out = np.zeros((B, N.size))
    for n, w in weights.items():
        d = draws[n]
        out += w * (d[:B] if d is not None else np.log(cand.predict(members[n], N, D, U))[None, :])
    return out


def _sigma(members, weights, spread, residuals, N, D, U=None) -> np.ndarray:
    """sigma(x): residual scatter, the bootstrap spread of the forecast, and the disagreement of the
    `spread` members with it, sum_c s_c (log L_c(x) - log L(x))^2."""
    N, D = np.atleast_1d(np.asarray(N, dtype=float)), np.atleast_1d(np.asarray(D, dtype=float))
    var = np.full(N.shape, float(np.mean(np.square(residuals))) if len(residuals) else 0.0)
    draws = _combined_draws(members, weights, N, D, U)
    if draws is not None:
        var = var + np.nanvar(draws, axis=0)
    logs = {n: np.log(cand.predict(members[n], N, D, U)) for n in {**spread, **weights}}
    mix = sum(weights[n] * logs[n] for n in weights)
    var = var + sum(spread[n] * (logs[n] - mix) ** 2 for n in spread)
    return np.maximum(np.sqrt(var), 1e-6)


def _scores(fc: Forecaster, pts: Points, cuts: Cuts, cut_fits: list[dict]) -> np.ndarray:
    """u_i = (log truth - log forecast) / sigma_k(x_i) of the combination at every cut where every member
    could be refitted."""
    out = []
    for k, fits in zip(cuts.cuts, cut_fits):
        members = {n: fits[n] for n in fc.members_}
        if any(m is None for m in members.values()):
            continue
        fit_rows, test_rows = cuts.split(k)
        view = cand.view(fc.chosen_, pts)
        train, test = view.subset(fit_rows), view.subset(test_rows)
        mix_train = sum(w * np.log(cand.predict(members[n], train.N, train.D, train.U)) for n, w in fc.weights_.items())
        mix_test = sum(w * np.log(cand.predict(members[n], test.N, test.D, test.U)) for n, w in fc.weights_.items())
        resid = np.log(train.loss) - mix_train
        out.append((np.log(test.loss) - mix_test) / _sigma(members, fc.weights_, fc.spread_weights_, resid,
                                                           test.N, test.D, test.U))
    return np.concatenate(out) if out else np.zeros(0)


def cut_errors(pts: Points, names: list[str], axis: str = "size", *, ceiling: float | None = None,
               fit_kwargs: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Each candidate's errors forecasting the held-out part of `pts` at the cuts along `axis` (the table
    rows of `Forecaster.selection_`, without weights); InputError when the axis has no cut."""
    cuts = cuts_for(pts, axis)
    if not cuts.cuts:
        raise InputError(f"{pts.source}: {cuts.n_groups} groups along {_AXIS_WORDS[axis]} leave no cut")
    fc = Forecaster(bootstrap=0, fit_kwargs=fit_kwargs)
    fc.ceiling_ = ceiling
    fits = [{n: fc._fit(n, pts.subset(cuts.split(k)[0]), 0) for n in names} for k in cuts.cuts]
    return _cut_table(names, pts, cuts, fits)


def interval_scale(scores: np.ndarray, prior_weight: float = PRIOR_WEIGHT) -> float:
    """s = sqrt((n0 + sum u^2) / (n0 + m)): the scale of the scaled held-out errors, shrunk to 1."""
    u = np.asarray(scores, dtype=float)
    u = u[np.isfinite(u)]
    return float(math.sqrt((prior_weight + float(np.sum(u**2))) / (prior_weight + u.size)))


__all__ = ["Forecaster", "DEFAULT_BOOTSTRAP", "interval_scale", "KaplanFit"]

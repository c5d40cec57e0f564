"""Compare two sweeps: the effective-compute multiplier of a change, its interval and its trend with scale.

A change (an architecture, a data mix, an optimiser) is worth k x compute at budget C when the variant
B, trained compute-optimally with C FLOPs, reaches the loss the baseline A needs k C FLOPs for:

    L_B,opt(C) = L_A,opt(k(C) C),    L_opt(C) = min_{6 N D = C} L(N, D)

along each sweep's compute-optimal frontier (the frontier `analysis.plan.Planner` plans on: the
forecaster's combined law, `analysis.forecast.combine`). For Chinchilla's law L_opt(C) = E + K (C/6)^-gamma
(Hoffmann et al. 2022 eq. 4 put into eq. 2), so k = (C_A / C) with C_A = 6 ((L_B,opt(C) - E_A) / K_A)^(-1/gamma_A);
any other law is solved on a grid here. Researchers argue changes this way (nanochat's scaling-law
notes; Marin compares ladders; Kaplan et al. 2020 Fig. 7 compare LSTMs and Transformers by it).

- **One form for both** (`shared_form`): each sweep is fitted by the forecaster (`Forecaster`, axis budget),
  and both are refitted with the form each keeps (its heaviest, the base's first) when the other also
  keeps it (weight or spread weight > 0: not trimmed out by its cuts): a k between two forms measures the
  forms as much as the change. When neither keeps the other's, the data reject a common form; each keeps
  its own law, and the result says so.
- **Interval**: each sweep's own bootstrap (the forecaster's, `Forecaster.bootstrap_laws`: rows resampled,
  every member refitted), the two resampled independently (different seeds); draw b of A is paired with
  draw b of B and k solved for each pair. The parameter bootstrap's percentile interval falls short on
  the synthetic check of `benchmarks/bench_compare.py` (k = m^2 inside its 95% interval at 92% of 75
  budgets; with one seed and 100 draws, 60%: its draws sit on the side of the estimate away from the
  truth, a nonlinear fit's bias reproduced), so at each C the draws' spread of log k is widened, never
  narrowed, to the forecasters' calibrated loss intervals carried through the frontier
  (`calibrated_sigma`, the delta method), and the interval is the basic bootstrap interval of the
  widened draws (`basic_interval`), on log k (75 of 75 inside); the trend's likewise. A k at
  which a draw of B falls below every loss A can reach (k infinite) counts as +inf (null in JSON).
- **Trend**: s = d log10 k / d log10 C, the least-squares slope of log10 k over the budgets of the two
  sweeps, per draw for its interval: k changes by a factor 10^s per decade of compute.
- **Resolved**: at which budgets the interval of k excludes 1.

Only laws on C = 6 N D with the tables' own N are compared: the non-embedding form counts other FLOPs and
the data-constrained law another question (repeated data), so they are left out of both fits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.errors import InputError
from analysis.fitjson import fit_json
from analysis.forecast import Forecaster
from analysis.forecast.candidates import CANDIDATES
from analysis.frontier import group_budgets
from analysis.io import Points
from analysis.provenance import check_comparable
from contracts.conventions import FLOPS_PER_PARAM_TOKEN

COMPARE_EXCLUDE = {
    "chinchilla_nonembedding": "compare: k is a ratio of C = 6 N D with the tables' N; this form counts other FLOPs",
    "data_constrained": "compare: the multiplier is read off single-epoch laws (the data-constrained law answers "
                        "another question)",
}
"""Candidates neither sweep's fit may use (module docstring)."""

DEFAULT_TO_FACTOR = 100.0
"""`to` defaults to this times the largest budget of the two sweeps."""

_LOG_N_SPAN = 14.0      # the frontier's search: log N within +-14 (e-folds) of N = D, step 0.1
_LOG_N_STEP = 0.1
_COARSE_STEP = 0.25     # the inverse frontier's bracketing grid, in log10 C


# --------------------------------------------------------------------------------------------------
# the frontier and its inverse, for any law L(N, D)

def frontier_loss(law, C: Any, k: float = FLOPS_PER_PARAM_TOKEN, *, with_n: bool = False):
    """L_opt(C) = min over N of L(N, C / (k N)), on a grid in log N refined by a parabola through the
    grid's three lowest neighbours; nan where the law has no finite loss. With `with_n`, (L_opt, N_opt)."""
    C = np.atleast_1d(np.asarray(C, dtype=float))
    steps = np.arange(-_LOG_N_SPAN, _LOG_N_SPAN + _LOG_N_STEP / 2, _LOG_N_STEP)
    u = 0.5 * np.log(C / k)[:, None] + steps[None, :]
    N = np.exp(u)
    with np.errstate(all="ignore"):
        L = np.asarray(law(N, C[:, None] / (k * N)), dtype=float)
    L = np.where(np.isfinite(L), L, np.inf)
    i = np.clip(np.argmin(L, axis=1), 1, steps.size - 2)
    rows = np.arange(C.size)
    y0, y1, y2 = L[rows, i - 1], L[rows, i], L[rows, i + 1]
    with np.errstate(all="ignore"):
        curv = y0 - 2 * y1 + y2
        vertex = y1 - (y2 - y0) ** 2 / (8 * curv)
    good = np.isfinite(vertex) & (curv > 0)
    out = np.where(good, np.minimum(vertex, y1), y1)
    out = np.where(np.isfinite(out), out, np.nan)
    if not with_n:
        return out
    with np.errstate(all="ignore"):
        shift = np.where(good, 0.5 * (y0 - y2) / curv, 0.0)
    return out, np.exp(u[rows, i] + _LOG_N_STEP * np.clip(shift, -1, 1))


def compute_for_loss(law, losses: np.ndarray, C_lo: float, C_hi: float, k: float = FLOPS_PER_PARAM_TOKEN) -> np.ndarray:
    """The budget C at which the law's frontier reaches each loss (L_opt(C) = loss): bracketed on a grid
    of a quarter decade from C_lo to C_hi, then bisected in log C to 1e-5 decades; +inf below the lowest
    loss reached by C_hi, 0 above the highest at C_lo, nan for a non-finite loss."""
    losses = np.atleast_1d(np.asarray(losses, dtype=float))
    grid = np.arange(math.log10(C_lo), math.log10(C_hi) + _COARSE_STEP, _COARSE_STEP)
    Lg = frontier_loss(law, 10.0 ** grid, k)
    Lg = np.minimum.accumulate(np.where(np.isfinite(Lg), Lg, np.inf))   # the frontier never rises with compute
    out = np.full(losses.shape, np.nan)
    ok = np.isfinite(losses)
    out[ok & (losses < Lg[-1])] = np.inf
    out[ok & (losses > Lg[0])] = 0.0
    todo = np.flatnonzero(ok & (losses <= Lg[0]) & (losses >= Lg[-1]))
    if todo.size:
        j = np.clip(np.searchsorted(-Lg, -losses[todo], side="left"), 1, grid.size - 1)  # Lg[j-1] >= L >= Lg[j]
        lo, hi = grid[j - 1], grid[j]
        for _ in range(int(math.ceil(math.log2(_COARSE_STEP / 1e-5)))):
            mid = 0.5 * (lo + hi)
            above = frontier_loss(law, 10.0 ** mid, k) > losses[todo]
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        out[todo] = 10.0 ** (0.5 * (lo + hi))
    return out


def multipliers(law_a, law_b, C: np.ndarray, k: float = FLOPS_PER_PARAM_TOKEN, reach: float = 1e6) -> np.ndarray:
    """k(C) with L_B,opt(C) = L_A,opt(k C), for k within 1/reach..reach (inf beyond: A never gets there)."""
    C = np.asarray(C, dtype=float)
    LB = frontier_loss(law_b, C, k)
    CA = compute_for_loss(law_a, LB, float(C.min()) / reach, float(C.max()) * reach, k)
    return CA / C


def calibrated_sigma(a: Forecaster, b: Forecaster, C: np.ndarray, k: np.ndarray) -> np.ndarray:
    """sigma of log10 k from the forecasters' calibrated loss intervals (delta method, the two independent):

        sigma_log k = sqrt((s_A sigma_A(x_A))^2 + (s_B sigma_B(x_B))^2) / |d log L_A,opt / d log C|

    x_B the variant's compute-optimal (N, D) at C, x_A the base's at k C, sigma and s each forecaster's
    sigma(x) and interval scale (`Forecaster.sigma`, `interval_scale_`), the slope the base's frontier at
    k C; nan where k is not finite."""
    k = np.asarray(k, dtype=float)
    out = np.full(C.shape, np.nan)
    ok = np.isfinite(k) & (k > 0)
    if not ok.any():
        return out
    CB, CA = C[ok], C[ok] * k[ok]
    _, NB = frontier_loss(b.law_for(), CB, with_n=True)
    _, NA = frontier_loss(a.law_for(), CA, with_n=True)
    sB = b.interval_scale_ * b.sigma(NB, CB / (FLOPS_PER_PARAM_TOKEN * NB))
    sA = a.interval_scale_ * a.sigma(NA, CA / (FLOPS_PER_PARAM_TOKEN * NA))
    h = 0.05
    with np.errstate(all="ignore"):
        lo, hi = frontier_loss(a.law_for(), CA * math.exp(-h)), frontier_loss(a.law_for(), CA * math.exp(h))
        slope = (np.log(hi) - np.log(lo)) / (2 * h)
        out[ok] = np.sqrt(sA**2 + sB**2) / np.abs(slope) / math.log(10.0)
    return out


def trend_slope(C: np.ndarray, log10_k: np.ndarray) -> np.ndarray:
    """d log10 k / d log10 C: the least-squares slope over C, per row of `log10_k` (nan with any non-finite k)."""
    x = np.log10(np.asarray(C, dtype=float))
    x = x - x.mean()
    y = np.atleast_2d(log10_k)
    with np.errstate(invalid="ignore"):
        s = (y - y.mean(axis=1, keepdims=True)) @ x / float(x @ x)
    return np.where(np.all(np.isfinite(y), axis=1), s, np.nan)


def basic_interval(estimate: float, samples: np.ndarray, level: float) -> list[float] | None:
    """The basic (reverse-percentile) bootstrap interval [2 t - q_hi, 2 t - q_lo] of an estimate t (Davison &
    Hinkley 1997, eq. 5.6): where the draws sit below the estimate, the truth is taken to sit above it, so
    a fit's bias that the bootstrap reproduces is turned back rather than doubled as the percentile
    interval does."""
    q = quantile_interval(samples, level)
    if q is None or not math.isfinite(estimate):
        return None
    return [2 * estimate - q[1], 2 * estimate - q[0]]


def quantile_interval(samples: np.ndarray, level: float) -> list[float] | None:
    """[lo, hi] percentile interval of `samples` (+-inf kept, nan dropped); None with fewer than 2 values.
    The inverted CDF, so an infinite draw is an infinite bound rather than a nan from interpolation."""
    s = np.asarray(samples, dtype=float)
    s = s[~np.isnan(s)]
    if s.size < 2:
        return None
    q = np.quantile(s, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return [float(q[0]), float(q[1])]


# --------------------------------------------------------------------------------------------------
# the comparison

@dataclass
class Side:
    """One sweep of the comparison: its points (None for a fit JSON), its fitted forecaster, its budgets."""

    name: str
    points: Points | None
    fit: Forecaster
    budgets: list[float]

    def summary(self) -> dict[str, Any]:
        fc = self.fit
        return {"source": fc.source_, "n_points": int(fc.n_points_), "chosen": fc.chosen_,
                "weights": dict(fc.weights_), "budgets": list(self.budgets), "n_bootstrap": len(fc.bootstrap_laws()),
                "interval_scale": float(fc.interval_scale_), "data_range": fc.data_range_,
                "checklist": fit_json(fc)["checklist"]}


def budgets_of(pts: Points) -> list[float]:
    """The IsoFLOP budgets of a table (`analysis.frontier.group_budgets`: its budget column, else C grouped)."""
    return group_budgets(pts.C, pts.budget)[1]


def merge_budgets(budgets: list[float], rtol: float = 0.1) -> list[float]:
    """The budgets of both sweeps, those within a factor 1 + rtol of each other counted once (their
    geometric mean: the same budget measured as 6 N D of other shapes)."""
    groups: list[list[float]] = []
    for c in sorted(float(b) for b in budgets):
        if groups and c <= groups[-1][0] * (1.0 + rtol):
            groups[-1].append(c)
        else:
            groups.append([c])
    return [float(np.exp(np.mean(np.log(g)))) for g in groups]


def fit_side(pts: Points, *, bootstrap: int, seed: int, only: str | None = None,
             fit_kwargs: Mapping[str, Any] | None = None) -> Forecaster:
    """The forecaster on one sweep, along the budget axis, with the forms compare cannot use left out (and
    every form but `only` when given)."""
    exclude = dict(COMPARE_EXCLUDE)
    if only is not None:
        exclude |= {c: f"compare: one form for both sweeps ({only})" for c in CANDIDATES if c != only}
    return Forecaster(axis="budget", bootstrap=bootstrap, random_state=seed, exclude=exclude,
                      fit_kwargs=fit_kwargs).fit(pts)


def kept_forms(fc: Forecaster) -> set[str]:
    """The forms a fit keeps: weighed, or in its interval's disagreement (not trimmed out by its cuts)."""
    return {n for n, w in {**fc.spread_weights_, **fc.weights_}.items() if w > 0}


def shared_form(a: Forecaster, b: Forecaster) -> tuple[str | None, str]:
    """(the form both sweeps are fitted with, why); None when the data reject a common form."""
    ka, kb = kept_forms(a), kept_forms(b)
    for name, who in ((a.chosen_, "the base's"), (b.chosen_, "the variant's")):
        if name in ka and name in kb:
            return name, (f"{name} ({CANDIDATES[name].law}) for both: {who} heaviest form, kept by both "
                          f"sweeps' cuts (base keeps {', '.join(sorted(ka))}; variant keeps {', '.join(sorted(kb))})")
    return None, (f"the data reject a common form: the base keeps {', '.join(sorted(ka))}, the variant keeps "
                  f"{', '.join(sorted(kb))}; each is compared on its own law (k then also measures the forms)")


class Comparison:
    """k(C) of a variant against a base, its bootstrap interval and its trend (module docstring).

    Settings: to (the budget to extrapolate to; default 100x the largest), bootstrap (resamples per
    sweep), interval_level, random_state (the base's seed; the variant's is random_state + 1), same_form,
    fit_kwargs (approach-3 settings such as init_grid, for the forecaster), allow_mixed (compare sweeps whose
    eval data or tokenizer hashes differ: refused by default, `analysis.provenance.check_comparable`).

    Fitted: base_, variant_ (`Side`), law_ ({form, shared, reason}), C_ (budgets then `to`), kind_ ("budget"
    or "extrapolated" per C), k_, k_interval_ (per C; None without draws), log10_k_draws_ (B, len(C_)),
    trend_, trend_interval_, resolved_ (per C: the interval excludes 1), to_.
    """

    def __init__(self, *, to: float | None = None, bootstrap: int = 200, interval_level: float = 0.95,
                 random_state: int = 0, same_form: bool = True, fit_kwargs: Mapping[str, Any] | None = None,
                 allow_mixed: bool = False) -> None:
        self.to = to
        self.bootstrap = bootstrap
        self.interval_level = interval_level
        self.random_state = random_state
        self.same_form = same_form
        self.fit_kwargs = fit_kwargs
        self.allow_mixed = allow_mixed

    def fit(self, base: Points | Forecaster, variant: Points | Forecaster) -> "Comparison":
        if not 0 < self.interval_level < 1:
            raise InputError(f"interval level: {self.interval_level} is not in (0, 1)")
        if self.to is not None and not (math.isfinite(self.to) and self.to > 0):
            raise InputError(f"--to: {self.to!r} is not a positive finite number of FLOPs")
        prov = [x.provenance if isinstance(x, Points) else getattr(x, "provenance_", {}) for x in (base, variant)]
        names = [x.source if isinstance(x, Points) else x.source_ for x in (base, variant)]
        check_comparable(prov[0], prov[1], (names[0], names[1]), allow_mixed=self.allow_mixed)
        seeds = (int(self.random_state), int(self.random_state) + 1)
        fits = [x if isinstance(x, Forecaster) else fit_side(x, bootstrap=self.bootstrap, seed=s, fit_kwargs=self.fit_kwargs)
                for x, s in zip((base, variant), seeds)]
        form, reason = shared_form(*fits)
        if not self.same_form:
            form, reason = None, "each sweep on its own law (same_form=False)"
        refittable = not any(isinstance(x, Forecaster) for x in (base, variant))
        if form is not None and refittable:
            fits = [fc if fc.weights_ == {form: 1.0} and kept_forms(fc) == {form} else
                    fit_side(x, bootstrap=self.bootstrap, seed=s, only=form, fit_kwargs=self.fit_kwargs)
                    for fc, x, s in zip(fits, (base, variant), seeds)]
        elif form is not None:
            reason += "; fit JSONs are compared as fitted (not refitted)"
            form = None if any(f.weights_ != {form: 1.0} for f in fits) else form
        for fc, which in zip(fits, ("base", "variant")):
            if fc.n_convention_ != fits[0].n_convention_ or fc.flops_convention_ != fits[0].flops_convention_:
                raise InputError(f"compare: the base's law reads N as {fits[0].n_convention_} parameters and C as "
                                 f"{fits[0].flops_convention_}; the {which}'s as {fc.n_convention_} and "
                                 f"{fc.flops_convention_}: k would compare different FLOP counts")
        self.law_ = {"form": form, "shared": form is not None, "reason": reason,
                     "equation": None if form is None else CANDIDATES[form].law,
                     "n_convention": fits[0].n_convention_, "flops_convention": fits[0].flops_convention_}
        self.base_, self.variant_ = (Side(w, x if isinstance(x, Points) else None, fc, _budgets(x, fc))
                                     for w, x, fc in zip(("base", "variant"), (base, variant), fits))
        self._solve()
        return self

    def _solve(self) -> None:
        budgets = merge_budgets(self.base_.budgets + self.variant_.budgets)
        self.to_ = float(self.to) if self.to is not None else DEFAULT_TO_FACTOR * max(budgets)
        C = np.array(budgets + ([self.to_] if self.to_ not in budgets else []), dtype=float)
        self.C_ = C
        self.kind_ = ["budget" if c in budgets else "extrapolated" if c > max(budgets) else "requested" for c in C]
        self.k_, self.log10_k_draws_, self.widening_, self.sigma_log10_k_ = self.draws(C)
        nb = self.log10_k_draws_.shape[0]
        lvl = self.interval_level
        with np.errstate(divide="ignore"):
            logk = np.log10(self.k_)
        self.k_interval_ = [None if (iv := basic_interval(t, col, lvl)) is None else [10.0 ** iv[0], 10.0 ** iv[1]]
                            for t, col in zip(logk, self.log10_k_draws_.T)]
        self.resolved_ = [iv is not None and (iv[0] > 1 or iv[1] < 1) for iv in self.k_interval_]
        inside = np.array([kind == "budget" for kind in self.kind_])
        with np.errstate(divide="ignore"):
            self.trend_ = float(trend_slope(C[inside], np.log10(self.k_[inside]))[0]) if inside.sum() >= 2 else math.nan
        draws = trend_slope(C[inside], self.log10_k_draws_[:, inside]) if inside.sum() >= 2 and nb else np.zeros(0)
        self.trend_interval_ = basic_interval(self.trend_, draws, lvl)
        self.trend_dropped_ = int(np.sum(~np.isfinite(draws)))

    def draws(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(k, widened log10 k draws (B, len(C)), widening factor, calibrated sigma of log10 k) at budgets C."""
        a, b = self.base_.fit, self.variant_.fit
        C = np.asarray(C, dtype=float)
        k = multipliers(a.law_for(), b.law_for(), C)
        la, lb = a.bootstrap_laws(), b.bootstrap_laws()
        nb = min(len(la), len(lb))
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.array([np.log10(multipliers(la[i], lb[i], C)) for i in range(nb)]).reshape(nb, C.size)
            centre = np.log10(k)
            sigma = calibrated_sigma(a, b, C, k)
            spread = np.nanstd(np.where(np.isfinite(raw), raw, np.nan), axis=0) if nb else np.zeros(C.size)
            widening = np.where(np.isfinite(sigma) & (spread > 0), np.maximum(1.0, sigma / spread), 1.0)
            self.raw_log10_k_draws_ = raw   # the parameter bootstrap alone (benchmarks/bench_compare.py)
            return k, centre + (raw - centre) * widening, widening, sigma

    def band(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(k, lo, hi) at budgets C, the interval as at the budgets (for the report's k(C) figure)."""
        k, draws, _, _ = self.draws(C)
        with np.errstate(divide="ignore"):
            ivs = [basic_interval(t, col, self.interval_level) for t, col in zip(np.log10(k), draws.T)]
        lo = np.array([10.0 ** iv[0] if iv else np.nan for iv in ivs])
        hi = np.array([10.0 ** iv[1] if iv else np.nan for iv in ivs])
        return k, lo, hi

    # ------------------------------------------------------------------ output
    def sentence(self) -> str:
        """The result in words: k at the largest budget, the trend per decade, k at `to`, where resolved."""
        lvl = f"{self.interval_level:.0%}"
        i_max = max(i for i, kind in enumerate(self.kind_) if kind == "budget")
        parts = [f"the variant at {self.C_[i_max]:.3g} FLOPs reaches the loss the base needs k = "
                 f"{_k(self.k_[i_max])}x that compute for ({lvl} interval {_iv(self.k_interval_[i_max])})"]
        s, iv = self.trend_, self.trend_interval_
        if math.isfinite(s):
            ivs = _iv(iv, "+.3f")
            if iv is not None and (iv[0] > 0 or iv[1] < 0):
                parts.append(f"the gain {'grows' if s > 0 else 'shrinks'} by a factor {10.0 ** abs(s):.3g} per decade "
                             f"of compute (d log k / d log C = {s:+.3f}, interval {ivs})")
            else:
                parts.append(f"no trend with scale is resolved: d log k / d log C = {s:+.3f}, interval {ivs} holds 0 "
                             f"(a factor {10.0 ** s:.3g} per decade at the estimate)")
        for j, kind in enumerate(self.kind_):
            if kind != "budget":
                parts.append(f"at {self.C_[j]:.3g} FLOPs ({kind}) k = {_k(self.k_[j])}, interval {_iv(self.k_interval_[j])}")
        at = [f"{c:.3g}" for c, r, kind in zip(self.C_, self.resolved_, self.kind_) if r and kind == "budget"]
        n_budgets = self.kind_.count("budget")
        parts.append(f"k's interval excludes 1 at {len(at)} of {n_budgets} budgets" + (f" ({', '.join(at)})" if at else
                                                                                        ": the difference is not resolved"))
        return "; ".join(parts) + "."

    def to_dict(self) -> dict[str, Any]:
        rows = [{"C": float(c), "k": _num(k), "interval": None if iv is None else [_num(v) for v in iv],
                 "resolved": bool(r), "kind": kind,
                 "loss_base": _num(la), "loss_variant": _num(lb)}
                for c, k, iv, r, kind, la, lb in zip(self.C_, self.k_, self.k_interval_, self.resolved_, self.kind_,
                                                     frontier_loss(self.base_.fit.law_for(), self.C_),
                                                     frontier_loss(self.variant_.fit.law_for(), self.C_))]
        inside = [float(c) for c, kind in zip(self.C_, self.kind_) if kind == "budget"]
        return {"multiplier": rows,
                "trend": {"per_decade": _num(self.trend_), "interval": self.trend_interval_,
                          "factor_per_decade": _num(10.0 ** self.trend_) if math.isfinite(self.trend_) else None,
                          "over": [min(inside), max(inside)], "draws_without_finite_k": self.trend_dropped_,
                          "definition": "d log10 k / d log10 C, least-squares slope over the budgets of both sweeps"},
                "law": dict(self.law_), "to": self.to_, "interval_level": self.interval_level,
                "n_bootstrap": int(self.log10_k_draws_.shape[0]),
                "interval_method": ("basic bootstrap interval of log k: each sweep's forecaster bootstrap, resampled "
                                    "independently, draws paired, their spread widened to the forecasters' "
                                    "calibrated loss intervals"),
                "definition": "k(C): L_variant,opt(C) = L_base,opt(k C) along each compute-optimal frontier",
                "sentence": self.sentence(),
                "base": self.base_.summary(), "variant": self.variant_.summary(),
                "units": {"C": f"FLOPs ({self.law_['flops_convention']})", "k": "multiplier of the base's compute",
                          "loss": "nats/token", "per_decade": "log10 k per log10 C"}}


def _budgets(x: Points | Forecaster, fc: Forecaster) -> list[float]:
    if isinstance(x, Points):
        return budgets_of(x)
    lo, hi = fc.data_range_.get("C", [math.nan, math.nan])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError(f"{fc.source_}: the fit records no range of C: no budgets to compare at")
    return sorted({float(lo), float(hi)})


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _k(x: float) -> str:
    return (f"{x:.2f}" if x < 10 else f"{x:.3g}") if math.isfinite(x) else "inf"


def _iv(iv: list[float] | None, fmt: str = ".3g") -> str:
    if iv is None:
        return "none: no bootstrap"
    return "-".join(f"{v:{fmt}}" if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in iv) if fmt == ".3g" \
        else " to ".join(f"{v:{fmt}}" for v in iv)


def compare_points(base: Points, variant: Points, **kwargs: Any) -> Comparison:
    """`Comparison(**kwargs).fit(base, variant)`."""
    return Comparison(**kwargs).fit(base, variant)


__all__ = ["Comparison", "compare_points", "frontier_loss", "multipliers", "COMPARE_EXCLUDE"]


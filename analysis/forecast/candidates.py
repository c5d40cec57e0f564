"""The candidate laws of the forecaster: each a form L(N, D) (or L(N, D, U)) with its equation, the
points it reads, how it is fitted and how its bootstrap laws are evaluated.

    chinchilla               L = E + A/N^alpha + B/D^beta                 Hoffmann et al. 2022 eq. 2
    chinchilla_nonembedding  the same with N the non-embedding count      Kaplan et al. 2020 §2.1; Pearce & Song 2024
    kaplan_nd                K = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D, L = K
                                                                          Kaplan et al. 2020 eq. 1.5
    kaplan_bounded           L = L0 / (1 + 1/K), L0 = ln V                Alabdulmohsin et al. 2022, M4 with
                                                                          eps_inf = 0, alpha = 1, eps_0 = ln V
    data_constrained         E + A/N'^alpha + B/D'^beta, D' and N' discounted for repeated tokens
                                                                          Muennighoff et al. 2023 eqs. 5-7

A candidate applies to a table or is skipped with its reason (`applicable`): the non-embedding form
needs the non-embedding count, the bounded form the vocabulary (L0 = ln V), the data-constrained law
rows that repeat data (D > U). A new law is one entry of `CANDIDATES` and its branch in `fit_candidate`.

A fitted candidate is *degenerate* (`degenerate_reason`) when the data do not pin it: an exponent at or
below zero, or no finite compute-optimal allocation (N_opt(C) ∝ C^a with a outside (0.05, 0.95) between
the data's largest budget and ten times it: all compute goes to N or to D). The forecaster does not
weigh a degenerate candidate, and says why.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.chinchilla import ChinchillaFit
from analysis.data_constrained import DataConstrainedFit
from analysis.errors import InputError
from analysis.estimator import FitEstimator
from analysis.io import Points, repeats_data
from analysis.kaplan import KaplanFit
from analysis.laws import chinchilla_loss, kaplan_nd_loss
from analysis.solvers import compute_optimal

FRONTIER_EXPONENT_RANGE = (0.05, 0.95)
"""The compute-optimal exponent a (N_opt ∝ C^a) a candidate must have to be used: outside it the fit
puts (nearly) all compute into N or into D, an optimum the data do not support."""

MIN_EXPONENT = 1e-3
"""A fitted exponent at or below this is 'at or below zero' at the fit's precision."""


@dataclass(frozen=True)
class Candidate:
    """One form: its name, the paper and equation it comes from, and the N convention it reads."""

    name: str
    law: str
    n_convention: str | None = None   # None: the table's own


CANDIDATES = {c.name: c for c in (
    Candidate("chinchilla", "Hoffmann et al. 2022 eq. 2"),
    Candidate("chinchilla_nonembedding", "Hoffmann et al. 2022 eq. 2 with non-embedding N (Pearce & Song 2024)",
              "nonembedding"),
    Candidate("kaplan_nd", "Kaplan et al. 2020 eq. 1.5"),
    Candidate("kaplan_bounded", "Kaplan et al. 2020 eq. 1.5 bounded by ln V (Alabdulmohsin et al. 2022, M4)"),
    Candidate("data_constrained", "Muennighoff et al. 2023 eqs. 5-7"),
)}
"""Every candidate form, by name."""

DEFAULT_CANDIDATE = "chinchilla"
"""The form used when nothing can be ranked (no cut)."""


def applicable(pts: Points, ceiling: float | None, exclude: Mapping[str, str] | None = None
               ) -> tuple[list[str], dict[str, str]]:
    """(candidates tried on these points, {candidate: why not tried})."""
    skipped: dict[str, str] = {}
    if pts.n_convention != "total":
        skipped["chinchilla_nonembedding"] = f"the table's N is already {pts.n_convention}"
    elif "nonembedding" not in pts.other_n:
        skipped["chinchilla_nonembedding"] = ("the table has no non-embedding parameter column "
                                              "('params_nonembedding' with a value > 0 in every row)")
    if ceiling is None:
        skipped["kaplan_bounded"] = ("the vocabulary size is not known (a sweep or run folder records it; "
                                     "give --vocab-size for a table)")
    if not repeats_data(pts):
        skipped["data_constrained"] = "no row trains past its unique tokens (D > U)"
    skipped |= dict(exclude or {})
    return [c for c in CANDIDATES if c not in skipped], skipped


def view(name: str, pts: Points) -> Points:
    """The points as candidate `name` reads them: N under its convention."""
    conv = CANDIDATES[name].n_convention
    return pts.under(conv) if conv else pts


def fit_candidate(name: str, pts: Points, *, ceiling: float | None = None, bootstrap: int = 0,
                  random_state: int | None = 0, fit_kwargs: Mapping[str, Any] | None = None) -> FitEstimator:
    """Candidate `name` fitted to `pts` (read through `view`); the fitters' own warnings are silenced:
    a candidate is tried, not reported."""
    kw = dict(fit_kwargs or {})
    pts = view(name, pts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in ("chinchilla", "chinchilla_nonembedding"):
            return ChinchillaFit(bootstrap=bootstrap, random_state=random_state,
                                 **{k: v for k, v in kw.items() if k not in ("progress", "warm_start")}).fit(pts)
        if name in ("kaplan_nd", "kaplan_bounded"):
            return KaplanFit(form="nd", ceiling=ceiling if name == "kaplan_bounded" else None, bootstrap=bootstrap,
                             random_state=random_state, warm_start=kw.get("warm_start")).fit(pts)
        if name == "data_constrained":   # seven parameters refitted numerically per resample: no bootstrap
            return DataConstrainedFit(**{k: v for k, v in kw.items() if k in ("delta", "init_grid")}).fit(pts)
    raise InputError(f"forecast: unknown candidate {name!r} (candidates: {', '.join(CANDIDATES)})")


def predict(est: FitEstimator, N: np.ndarray, D: np.ndarray, U: np.ndarray | None = None) -> np.ndarray:
    """The fitted law's losses at (N, D) (and U for the data-constrained law; None reads as U = D)."""
    if isinstance(est, DataConstrainedFit):
        return np.asarray(est.predict(N, D, U), dtype=float)
    return np.asarray(est.predict(N, D), dtype=float)


def log_draws(est: FitEstimator, N: np.ndarray, D: np.ndarray) -> np.ndarray | None:
    """(B, n) log losses of the estimator's bootstrap laws at (N, D); None without a bootstrap (and for
    the data-constrained law, which is not bootstrapped here). The one place that evaluates them."""
    bp = getattr(est, "bootstrap_params_", None)
    if not bp or isinstance(est, DataConstrainedFit):
        return None
    draws = {k: np.asarray(v, dtype=float)[:, None] for k, v in bp.items()}
    if not isinstance(est, ChinchillaFit):
        draws["ceiling"] = getattr(est, "ceiling_", None)
    f = chinchilla_loss if isinstance(est, ChinchillaFit) else kaplan_nd_loss
    N, D = np.asarray(N, dtype=float)[None, :], np.asarray(D, dtype=float)[None, :]
    with np.errstate(all="ignore"):
        return np.log(f(N, D, **draws))


def exponents(est: FitEstimator) -> dict[str, float]:
    """The fitted exponents of a candidate (alpha, beta or alpha_N, alpha_D)."""
    names = ("alpha_N", "alpha_D") if isinstance(est, KaplanFit) else ("alpha", "beta")
    return {k: float(getattr(est, k + "_")) for k in names}


def degenerate_reason(name: str, est: FitEstimator, C_max: float) -> str | None:
    """Why the fitted candidate cannot be used for a forecast (module docstring), or None."""
    bad = {k: v for k, v in exponents(est).items() if not (math.isfinite(v) and v > MIN_EXPONENT)}
    if bad:
        return (f"{name}: fitted exponent {', '.join(f'{k} = {v:.3g}' for k, v in bad.items())} is not positive: "
                "the data do not pin this law")
    law = est.law_.base if isinstance(est, DataConstrainedFit) else est.law_
    try:
        with np.errstate(all="ignore"):
            N_opt, _ = compute_optimal(law, np.array([C_max, 10.0 * C_max]))
    except (InputError, ValueError, FloatingPointError):
        N_opt = np.array([math.nan, math.nan])
    if not np.all(np.isfinite(N_opt)) or np.any(N_opt <= 0):
        return f"{name}: no finite compute-optimal model size at the data's largest budget: the data do not pin this law"
    a = math.log(N_opt[1] / N_opt[0]) / math.log(10.0)
    lo, hi = FRONTIER_EXPONENT_RANGE
    if not lo < a < hi:
        return (f"{name}: its compute-optimal N grows as C^{a:.3f}, outside ({lo}, {hi}): the fit puts all "
                "compute into " + ("N" if a >= hi else "D") + "; the data do not pin this law")
    return None

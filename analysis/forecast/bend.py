"""The bend check: does the sweep's compute-optimal frontier steepen faster than the law follows?

Tiny models start at the plateau of a uniform guess (ln V) and leave it: over a sweep of small budgets
the per-budget minimum loss falls faster and faster in log-log (the demo's 0.150, 0.186, 0.226 in ln L
per decade of C). A power law extrapolates the sweep's average slope and then over-predicts; a law
that cannot follow the bend should say so. Slopes are -d ln L / d log10 C between consecutive budgets,
of the data's per-budget minima and of the law's compute-optimal loss L_opt(C) at the same budgets.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.forecast.cuts import groups_for
from analysis.io import Points
from analysis.solvers import compute_optimal

BEND_TOLERANCE = 0.10
"""The data's last slope may exceed the law's by this fraction before the bend is said."""


def bend_check(pts: Points, law, axis: str) -> dict[str, Any] | None:
    """{budgets, data_slopes, law_slopes, steepens_beyond_law, note} on a table of 3+ budgets; else None."""
    if axis != "budget":
        return None
    g = groups_for(pts, "budget")
    n = int(g.max()) + 1 if g.size else 0
    if n < 3:
        return None
    C = np.array([float(np.exp(np.mean(np.log(pts.C[g == k])))) for k in range(n)])
    L = np.array([float(np.min(pts.loss[g == k])) for k in range(n)])
    try:
        with np.errstate(all="ignore"):
            N_opt, D_opt = compute_optimal(law, C)
            L_law = np.asarray(law(N_opt, D_opt), dtype=float)
    except (ValueError, FloatingPointError):
        return None
    if not np.all(np.isfinite(L_law) & (L_law > 0)):
        return None
    dec = np.diff(np.log10(C))
    data = -np.diff(np.log(L)) / dec
    fitted = -np.diff(np.log(L_law)) / dec
    beyond = bool(data[-1] > data[0] and data[-1] > fitted[-1] * (1 + BEND_TOLERANCE))
    fmt = lambda v: " -> ".join(f"{x:.3f}" for x in v)  # noqa: E731
    note = (f"the frontier steepens ({fmt(data)} in ln L per decade of C) faster than the law follows "
            f"({fmt(fitted)}): a forecast beyond the sweep likely over-predicts the loss") if beyond else (
            f"the frontier's slope ({fmt(data)} in ln L per decade) is within what the law follows ({fmt(fitted)})")
    return {"budgets": [float(c) for c in C], "minimum_loss": [float(x) for x in L],
            "data_slopes": [float(x) for x in data], "law_slopes": [float(x) for x in fitted],
            "steepens_beyond_law": beyond, "tolerance": BEND_TOLERANCE, "note": note}


def _finite(x: float) -> bool:
    return math.isfinite(x)

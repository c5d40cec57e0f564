"""Cuts along the axis a question extrapolates: fit on the smaller part of the table, forecast the rest.

A forecast is judged one step past the data along the axis it extrapolates (Besiroglu et al. 2024;
Bhagia et al. 2024, the OLMo ladder; Open-Athena's leave-one-budget-out spreads):

    budget            the question is a larger compute budget (`plan --budget`, the demo, a held-out
                      budget): groups are the table's IsoFLOP budgets (a budget column, or rows within
                      10% in C); a cut fits the smallest budgets and forecasts every larger one.
                      Needs budget structure: at least 3 budgets and at least 3 rows a budget on average
                      (IsoFLOP, branch or grid points grouped in C); at least 2 budgets are kept to fit
                      (one IsoFLOP curve alone cannot tell N's effect from D's).
    size              the question is a larger model (`plan --params`, a ladder): groups are model sizes
                      (up to 8 bins in ln N); at least 3 sizes are kept to fit.
    tokens_per_param  the question trains far past the table's tokens per parameter (`plan --tokens`,
                      over-training): groups are bins of ln(D/N) (up to 8); at least 3 are kept.

Up to `MAX_CUTS` cuts k = 1, 2, 3: the largest k groups held out. Where an axis has no cut (too few
groups) the forecaster falls back to another (`choose_axis`) and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.frontier import group_budgets
from analysis.io import Points

AXES = ("budget", "size", "tokens_per_param")

MAX_CUTS = 3
MIN_FIT_GROUPS = {"budget": 2, "size": 3, "tokens_per_param": 3}
"""Groups every cut keeps to fit, by axis."""

MIN_ROWS_PER_BUDGET = 3.0
"""A table has budget structure when its rows average at least this many per budget group."""

BUDGET_RTOL = 0.1
"""Rows within a factor 1 + BUDGET_RTOL in C form one budget (without a budget column)."""

MAX_GROUPS = 8


@dataclass(frozen=True)
class Cuts:
    """The groups of one axis and its cuts: `groups[i]` numbers row i's group in increasing order along
    the axis; cut k fits the rows with group <= `cuts[k]` and forecasts the rest. `edges` holds, per
    cut, the largest value fitted along the axis (C, N or D/N)."""

    axis: str
    groups: np.ndarray
    cuts: list[int]
    edges: list[float]

    @property
    def n_groups(self) -> int:
        return int(self.groups.max()) + 1 if self.groups.size else 0

    def split(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(fit mask, forecast mask) of cut `k` (an entry of `cuts`)."""
        return self.groups <= k, self.groups > k


def axis_values(pts: Points, axis: str) -> np.ndarray:
    """The value each row has along `axis`: C, N or D/N."""
    return {"budget": pts.C, "size": pts.N, "tokens_per_param": pts.D / pts.N}[axis]


def _log_bins(x: np.ndarray, max_groups: int = MAX_GROUPS) -> np.ndarray:
    """Each distinct value its own group, or with more than `max_groups` values, bins of equal width
    in ln x (empty bins dropped), numbered in increasing order."""
    values = np.unique(x)
    if len(values) <= max_groups:
        return np.searchsorted(values, x)
    edges = np.linspace(np.log(values[0]), np.log(values[-1]) + 1e-9, max_groups + 1)
    g = np.clip(np.searchsorted(edges, np.log(x), side="right") - 1, 0, max_groups - 1)
    return np.unique(g, return_inverse=True)[1]


def groups_for(pts: Points, axis: str) -> np.ndarray:
    """The group of every row along `axis` (module docstring)."""
    if axis == "budget":
        idx, _ = group_budgets(None if pts.budget is not None else pts.C, pts.budget, BUDGET_RTOL)
        if pts.budget is None and len(idx) > MAX_GROUPS:   # a continuum of C (digitised data): bins in ln C
            return _log_bins(pts.C)
        g = np.zeros(len(pts), dtype=int)
        for gid, rows in enumerate(idx):
            g[rows] = gid
        return g
    return _log_bins(axis_values(pts, axis))


def has_budget_structure(pts: Points) -> bool:
    """At least 3 budgets with, on average, at least `MIN_ROWS_PER_BUDGET` rows each: counted on the
    budget column, or on rows within 10% in C (before any binning, so a grid of scattered C does not
    qualify while digitised IsoFLOP curves do)."""
    idx, _ = group_budgets(None if pts.budget is not None else pts.C, pts.budget, BUDGET_RTOL)
    return len(idx) >= 3 and len(pts) / len(idx) >= MIN_ROWS_PER_BUDGET


def cuts_for(pts: Points, axis: str, max_cuts: int = MAX_CUTS) -> Cuts:
    """The cuts of `axis` on these points (possibly none)."""
    g = groups_for(pts, axis)
    n = int(g.max()) + 1 if g.size else 0
    first = MIN_FIT_GROUPS[axis] - 1
    cuts = list(range(max(first, n - 1 - max_cuts), n - 1))
    values = axis_values(pts, axis)
    return Cuts(axis, g, cuts, [float(np.max(values[g <= k])) for k in cuts])


def choose_axis(pts: Points, question: str = "auto") -> tuple[str, str]:
    """(axis, why) for a question: "budget", "size", "tokens_per_param", or "auto" (budget when the table
    has budget structure, else size). A budget question on a table without budget structure, or any
    axis without a cut, falls back to size, then to whichever axis has a cut."""
    if question not in ("auto", *AXES):
        raise ValueError(f"axis: {question!r} is not auto, {', '.join(AXES)}")
    if question in ("auto", "budget"):
        if has_budget_structure(pts):
            return "budget", "the question is a larger budget and the table has IsoFLOP budgets"
        why = ("the table has no budget structure (3+ budgets of 3+ rows each), so larger sizes stand in "
               "for larger budgets")
        axis = "size"
    else:
        axis, why = question, f"the question extrapolates along {question.replace('_', ' ')}"
    if cuts_for(pts, axis).cuts:
        return axis, why
    for other in ("size", "budget", "tokens_per_param"):
        if other != axis and cuts_for(pts, other).cuts and (other != "budget" or has_budget_structure(pts)):
            return other, f"{why}; but {axis} has no cut here, so {other} is used"
    return axis, f"{why}; no axis has a cut"

"""The law's domain: rows no candidate law can describe, set aside by written rules before any fit.

Every candidate is a loss that falls (or stays flat) as N, D and the unique tokens U grow and stays
below the loss of a uniform guess. A row that breaks that is no evidence about any of them, and one
such row drags every fit (Huber's loss bounds its pull, it does not remove it). The rules, in order:

1. **at or above the initial loss**: loss >= L0 = ln V, the loss of a uniform guess over V tokens, when
   V is known (a diverged run, or a run that never left its first plateau);
2. **beaten by a smaller run**: the loss exceeds by more than `MONOTONE_TOLERANCE` (2%) the loss of
   another row with no more parameters, no more tokens and (when the table has them) no more unique
   tokens. Under every candidate a run that is at least as large in every resource is at least as
   good; one that is worse has diverged, or overfits data repeated many epochs (its validation loss
   rises with more tokens at fixed N and U: Muennighoff et al. 2023 §5, Lovelace et al. 2026). The
   tolerance is about four times the seed-to-seed scatter of a final loss in our sweeps, so noise
   alone does not set a row aside.

Runs marked diverged or failed are left out when the table is read (`analysis.io`, a FitWarning), and a
non-finite loss is refused there; points inside warmup are not a rule here: the points table holds
final and cool-down points only.
When half the rows or more lie at or above ln V, V is wrong (or the losses are not in nats/token): that
is refused with one line rather than set aside. `keep_all=True` keeps every row (`--keep-all`); the forecaster names what it set aside in one
FitWarning with the counts and the rule.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from analysis.errors import InputError
from analysis.io import FitWarning, Points

MONOTONE_TOLERANCE = 0.02
"""Rule 3: how much worse than a run it dominates a row may be before it is set aside (relative)."""

RULES = {
    "at_ceiling": "the loss is at or above the loss of a uniform guess, ln V",
    "beaten_by_smaller": (f"the loss is more than {100 * MONOTONE_TOLERANCE:.0f}% above a run with no more "
                          "parameters, tokens or unique tokens (diverged, or overfitting repeated data)"),
}
"""The rules, by the key each set-aside row records."""


@dataclass
class Domain:
    """Which rows are kept, and why each other row was set aside ({row index: rule key})."""

    keep: np.ndarray
    set_aside: dict[int, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rule in self.set_aside.values():
            out[rule] = out.get(rule, 0) + 1
        return out

    def describe(self, source: str) -> str:
        """One line: how many rows were set aside by which rule."""
        parts = [f"{n} by rule '{rule}' ({RULES[rule]})" for rule, n in self.counts().items()]
        return (f"{source}: {len(self.set_aside)} of {self.keep.size} rows set aside before fitting (no candidate "
                f"law describes them): {'; '.join(parts)}; --keep-all keeps them")

    def to_dict(self, run_ids: list[str] | None = None) -> dict:
        rows = [{"row": int(i), "rule": r, **({"run_id": run_ids[i]} if run_ids else {})}
                for i, r in sorted(self.set_aside.items())]
        return {"rules": RULES, "tolerance": MONOTONE_TOLERANCE, "set_aside": rows, "counts": self.counts()}


def law_domain(pts: Points, ceiling: float | None = None, *, keep_all: bool = False) -> Domain:
    """Apply the rules of the module docstring to `pts`; warn (FitWarning) when a row is set aside."""
    n = len(pts)
    why: dict[int, str] = {}
    if not keep_all:
        if ceiling is not None:
            above = np.flatnonzero(np.asarray(pts.loss, dtype=float) >= ceiling)
            if 2 * above.size >= n:
                raise InputError(f"{pts.source}: {above.size} of {n} losses are at or above ln V = {ceiling:.4g} "
                                 "nats/token, the loss of a uniform guess: wrong vocabulary size, or losses not "
                                 "in nats/token")
            for i in above:
                why[int(i)] = "at_ceiling"
        for i in _beaten_by_smaller(pts, np.array([i not in why for i in range(n)])):
            why.setdefault(int(i), "beaten_by_smaller")
    dom = Domain(keep=np.array([i not in why for i in range(n)]), set_aside=why)
    if why:
        warnings.warn(dom.describe(pts.source), FitWarning, stacklevel=3)
    return dom


def _beaten_by_smaller(pts: Points, ok: np.ndarray) -> list[int]:
    """Rows whose loss exceeds (1 + tolerance) x the loss of another kept row that is no larger in N, D
    (and U). O(n^2) comparisons, vectorised: fine for the thousands of rows a study has."""
    idx = np.flatnonzero(ok)
    if idx.size < 2:
        return []
    N, D, L = pts.N[idx], pts.D[idx], pts.loss[idx]
    smaller = (N[None, :] <= N[:, None]) & (D[None, :] <= D[:, None])   # [i, j]: row j no larger than row i
    if pts.U is not None:
        U = pts.U[idx]
        smaller &= U[None, :] <= U[:, None]
    np.fill_diagonal(smaller, False)
    best_smaller = np.where(smaller, L[None, :], np.inf).min(axis=1)
    return [int(i) for i in idx[L > best_smaller * (1.0 + MONOTONE_TOLERANCE)]]

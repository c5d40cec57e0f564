"""The combined law of the forecaster: log L(N, D) = sum_c w_c log L_c(N, D).

A weighted geometric mean of the member laws (the forecast combination of `analysis.forecast.forecaster`,
on the log-loss scale every fit and error of the forecaster uses). It is a law L(N, D) like any other:
the planner's numeric solvers find its compute-optimal (N, D) and the loss there; with one member it
is that member's law exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike

from analysis.data_constrained import DataConstrainedFit
from analysis.estimator import FitEstimator

Law = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CombinedLaw:
    """L(N, D) = prod_c L_c(N, D)^w_c over `members` [(w_c, L_c)], the weights summing to 1."""

    members: list[tuple[float, Law]]

    def __call__(self, N: ArrayLike, D: ArrayLike) -> np.ndarray:
        if len(self.members) == 1:
            return np.asarray(self.members[0][1](N, D), dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.exp(sum(w * np.log(np.asarray(law(N, D), dtype=float)) for w, law in self.members))

    @property
    def single(self) -> Law | None:
        """The member law itself when there is one member (so closed forms still apply)."""
        return self.members[0][1] if len(self.members) == 1 else None


def member_law(est: FitEstimator, U: float | None = None) -> Any:
    """The law L(N, D) a fitted member plans with: its law, or for the data-constrained law L(N, D, U) at
    the given unique tokens (its single-epoch base law when U is None)."""
    if isinstance(est, DataConstrainedFit):
        if U is None:
            return est.law_.base
        law, u = est.law_, float(U)
        return lambda N, D: law(N, D, u)
    return est.law_

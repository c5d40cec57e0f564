"""The optimal setting (peak LR, batch) of each (N, D) cell of a hyper-parameter sweep.

A cell is one (N, D) pair trained at several settings s (peak learning rates, or batch sizes in tokens
per step). Its optimum s* is estimated on x = ln s, from the settings whose loss is finite:

    quadratic   L(x) = q0 + q1 x + q2 x^2 fitted (least squares) through the best setting and its
                nearest neighbours in x (up to 3 each side, `WINDOW`, within a factor
                `WINDOW_FACTOR` of the best), s* = exp(-q1 / (2 q2)). Used
                when the parabola opens upwards and its vertex lies inside the window (Li et al. 2025,
                "(Mis)fitting scaling laws", fit the LR optimum per (N, D) this way; Wortsman et al. 2023
                show loss vs log LR is parabolic near its minimum).
    band        DeepSeek LLM (2024, §3.1): every setting whose loss is within a fraction `band` of the
                best (default 0.25%) is near-optimal; s* = their geometric mean. Used when the curve is
                flat (the window's losses all lie inside the band) or the parabola has no interior minimum.

A diverged setting (non-finite loss, or status `diverged`) is data: it marks the edge of the basin, so
a best setting next to a diverged larger one is bracketed; it is never the best. A cell is kept out of
the law, with its reason, when it has fewer than `MIN_SETTINGS` distinct settings with a finite loss,
when every setting diverged, or when its grid never brackets its minimum: the best setting is the
smallest tried, or the largest tried with nothing (not even a diverged run) above it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MIN_SETTINGS = 3
"""Distinct settings with a finite loss a cell needs before its optimum is estimated."""

WINDOW = 3
"""Neighbours on each side of the best setting the quadratic is fitted through, at most..."""

WINDOW_FACTOR = 8.0
"""...and only those within this factor of the best setting (its immediate neighbours always): loss vs
ln(LR) is a parabola near its minimum only; on a coarse grid (a factor 3 a step) a point a factor 9 away
sits where the curve has flattened (the high-LR side of our CPU sweep) and drags the vertex toward it."""

DEFAULT_BAND = 0.0025
"""DeepSeek LLM's near-optimal band: settings within 0.25% of the best loss."""


@dataclass(frozen=True)
class CellOptimum:
    """One (N, D) cell: its settings, its estimated optimum and whether the law uses it."""

    N: float
    D: float
    C: float
    n_settings: int
    n_diverged: int
    best: float | None          # the best setting tried
    best_loss: float | None
    optimum: float | None       # s*, None when kept out
    method: str | None          # "quadratic" or "band"
    kept: bool
    reason: str | None = None   # why it was kept out
    settings: tuple[float, ...] = ()
    losses: tuple[float | None, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["settings"], d["losses"] = list(self.settings), list(self.losses)
        return d


def cell_optimum(N: float, D: float, C: float, settings: np.ndarray, losses: np.ndarray, *,
                 band: float = DEFAULT_BAND) -> CellOptimum:
    """The optimum of one cell (module docstring); `losses` may hold inf/NaN for diverged settings.
    Repeated settings (seeds) are averaged first."""
    s = np.asarray(settings, dtype=float)
    loss = np.asarray(losses, dtype=float)
    loss = np.where(np.isfinite(loss), loss, np.inf)
    values = np.unique(s)
    mean = np.array([_mean_or_inf(loss[s == v]) for v in values])
    finite = np.isfinite(mean)
    base = dict(N=N, D=D, C=C, n_settings=len(values), n_diverged=int((~finite).sum()),
                settings=tuple(float(v) for v in values),
                losses=tuple(float(v) if np.isfinite(v) else None for v in mean))
    if not finite.any():
        return CellOptimum(**base, best=None, best_loss=None, optimum=None, method=None, kept=False,
                           reason=f"all {len(values)} settings diverged")
    i = int(np.argmin(np.where(finite, mean, np.inf)))
    best = dict(best=float(values[i]), best_loss=float(mean[i]))
    if finite.sum() < MIN_SETTINGS:
        what = "one setting" if len(values) == 1 else f"{int(finite.sum())} settings with a finite loss"
        return CellOptimum(**base, **best, optimum=None, method=None, kept=False,
                           reason=f"{what}; an optimum needs {MIN_SETTINGS}")
    if i == 0:
        return CellOptimum(**base, **best, optimum=None, method=None, kept=False,
                           reason=f"best at the smallest setting tried ({values[0]:.3g}): the grid does not bracket "
                                  "its minimum")
    if i == len(values) - 1:
        return CellOptimum(**base, **best, optimum=None, method=None, kept=False,
                           reason=f"best at the largest setting tried ({values[-1]:.3g}): the grid does not bracket "
                                  "its minimum")
    x = np.log(values)
    upper = x[i + 1]    # the next setting up bounds the optimum (diverged or not)
    opt, method = _quadratic(x[finite], mean[finite], float(x[i]), band, upper), "quadratic"
    if opt is None:
        opt, method = _band(x[finite], mean[finite], band), "band"
    return CellOptimum(**base, **best, optimum=float(np.exp(opt)), method=method, kept=True)


def _mean_or_inf(v: np.ndarray) -> float:
    return float(np.mean(v)) if np.all(np.isfinite(v)) else np.inf


def _quadratic(x: np.ndarray, loss: np.ndarray, x_best: float, band: float,
               upper: float) -> float | None:
    """The vertex of the parabola through the best point and its neighbours, or None when the window is
    flat (every loss within the band) or the parabola has no minimum inside the window."""
    j = int(np.flatnonzero(x == x_best)[0])
    lo, hi = max(0, j - WINDOW), min(len(x), j + WINDOW + 1)
    near = np.abs(x - x_best) <= np.log(WINDOW_FACTOR) + 1e-9
    near[max(0, j - 1): j + 2] = True
    keep = np.zeros(len(x), dtype=bool)
    keep[lo:hi] = True
    keep &= near
    xw, lw = x[keep], loss[keep]
    if len(xw) < 3 or lw.max() <= lw.min() * (1 + band):
        return None
    q2, q1, _ = np.polyfit(xw, lw, 2)
    if not q2 > 0:
        return None
    vertex = -q1 / (2 * q2)
    if not xw.min() <= vertex <= min(xw.max(), upper):
        return None
    return float(vertex)


def _band(x: np.ndarray, loss: np.ndarray, band: float) -> float:
    """ln of the geometric mean of the settings within `band` of the best loss (DeepSeek LLM §3.1)."""
    near = loss <= loss.min() * (1 + band)
    return float(np.mean(x[near]))

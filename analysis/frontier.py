"""Chinchilla approaches 1 and 2: the compute-optimal frontier read off the runs, then power laws.

Both end in N_opt(C) = k_N C^a and D_opt(C) = k_D C^b, fitted by least squares in log-log space
(Hoffmann et al. 2022 §3.1-3.2, Table 2). `analysis.fit` re-exports both classes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from analysis.bootstrap import percentile_interval, resample_counts
from analysis.errors import InputError
from analysis.estimator import FitEstimator, NotFittedError
from analysis.curves import Curves, curves_from_arrays, curves_from_frame
from analysis.io import CURVE_COLUMNS, FOLDER_COLUMNS, FitWarning, Points, as_points
from analysis.laws import PowerLaw
from contracts.conventions import FLOPS_PER_PARAM_TOKEN, tokens_for_flops


class _FrontierFit(FitEstimator):
    """Shared by approaches 1 and 2: the power laws, their intervals, predict and JSON."""

    def _fit_laws(self, C: np.ndarray, N_opt: np.ndarray, D_opt: np.ndarray) -> None:
        kN, a = _loglog_line(C, N_opt)
        kD, b = _loglog_line(C, D_opt)
        self.a_, self.b_ = a, b
        self.N_opt_law_ = PowerLaw(k=kN, p=a)
        self.D_opt_law_ = PowerLaw(k=kD, p=b)

    def _set_bootstrap(self, draws: np.ndarray) -> None:
        """draws (B, 4): log k_N, a, log k_D, b per resample (NaN rows = resamples that could not be fitted)."""
        with np.errstate(over="ignore"):
            ok = np.all(np.isfinite(draws), axis=1) & np.isfinite(np.exp(draws[:, 0])) & np.isfinite(np.exp(draws[:, 2]))
        if ok.sum() < len(draws):
            warnings.warn(f"{self.source_}: {len(draws) - ok.sum()} of {len(draws)} bootstrap resamples could not be "
                          "fitted (fewer than 2 usable budgets, or a runaway minimum) and were left out",
                          FitWarning, stacklevel=3)
        draws = draws[ok]
        if len(draws) < 2:
            raise InputError(f"{self.source_}: too few bootstrap resamples could be fitted for intervals")
        self.bootstrap_params_ = {"k_N": np.exp(draws[:, 0]), "a": draws[:, 1],
                                  "k_D": np.exp(draws[:, 2]), "b": draws[:, 3]}
        self._set_intervals()

    def compute_optimal(self, C: ArrayLike, interval: float | None = None):
        """(N_opt, D_opt) at FLOPs C from the fitted power laws (D_opt = C / (6 N_opt) for a fit JSON
        without a D_opt law); with `interval`, each as (mid, lo, hi)."""
        self._check_fitted()
        N = self.N_opt_law_(C)
        D = self.D_opt_law_(C) if self.D_opt_law_ is not None else tokens_for_flops(np.asarray(C, dtype=float), N)
        if interval is None:
            return N, D
        if not hasattr(self, "bootstrap_params_"):
            raise NotFittedError(f"intervals need a bootstrap: fit with {type(self).__name__}(bootstrap=1000, ...)")
        bp = self.bootstrap_params_
        C_ = np.asarray(C, dtype=float)[None, ...]
        ex = (...,) + (None,) * np.ndim(N)
        Ns = bp["k_N"][ex] * C_ ** bp["a"][ex]
        Ds = bp["k_D"][ex] * C_ ** bp["b"][ex]
        return (N, *percentile_interval(Ns, interval)), (D, *percentile_interval(Ds, interval))

    def predict(self, C: ArrayLike, interval: float | None = None):
        """Same as `compute_optimal`: these approaches predict the frontier, not a loss surface."""
        return self.compute_optimal(C, interval)

    # ------------------------------------------------------------------ JSON (analysis.fitjson)
    def _fields(self) -> dict[str, Any]:
        laws = {name: None if law is None else {"k": law.k, "p": law.p}
                for name, law in (("N_opt_law", self.N_opt_law_), ("D_opt_law", self.D_opt_law_))}
        return {"a": self.a_, "b": self.b_, **laws}

    def _read_fields(self, d: Mapping[str, Any]) -> None:
        """N_opt_law is needed; a and b default to the power laws' exponents, D_opt_law to none
        (D_opt = C / (6 N_opt))."""
        self.N_opt_law_ = PowerLaw(k=float(d["N_opt_law"]["k"]), p=float(d["N_opt_law"]["p"]))
        dl = d.get("D_opt_law")
        self.D_opt_law_ = PowerLaw(k=float(dl["k"]), p=float(dl["p"])) if dl else None
        self.a_ = float(d.get("a", self.N_opt_law_.p))
        self.b_ = float(d.get("b", self.D_opt_law_.p if self.D_opt_law_ is not None else 1.0 - self.a_))


class IsoFLOPFit(_FrontierFit):
    """Chinchilla approach 2 (Hoffmann et al. 2022 §3.2): IsoFLOP profiles, fitted locally.

    Per FLOP budget C, a parabola loss = c0 + c1 u + c2 u^2 in u = log N is fitted to the points
    *around that budget's lowest measured loss* (the `window` points nearest it in log N, or, with
    `window_span`, the points within ±window_span/2 of it in ln N) and its minimum gives
    N_opt(C) = exp(-c1 / (2 c2)), D_opt(C) = C / (6 N_opt), loss_opt. Then N_opt = k_N C^a and
    D_opt = k_D C^b by least squares on log N_opt, log D_opt against log C.

    A parabola fitted over the whole profile is biased when the profile is asymmetric, and a budget
    whose sizes do not bracket its minimum extrapolates it (Open-Athena, arXiv:2603.22339; Hoffmann
    et al. fit each IsoFLOP curve near its valley). So a budget enters the frontier fit only when it is
    *bracketed*: its lowest loss is at neither the smallest nor the largest size run, and the local
    parabola opens upward with its minimum inside the window's sizes. The others are named in one
    FitWarning with the reason and left out (`keep_unbracketed=True` keeps those that have a minimum).
    Fewer than 2 usable budgets is an InputError. An exponent a outside (0, 1) (or b outside (0, 1))
    is recorded in `flags_` and warned about: no compute-optimal frontier grows N faster than C.

    Budgets come from a budget column (`budget=` / columns["budget"]) or, without one, from C = 6ND:
    points are sorted by C and a budget collects the points within a factor (1 + budget_rtol) of its
    smallest C; its C is their geometric mean (`group_budgets`). A budget needs `min_sizes` distinct N.

    With `bootstrap=B`, the rows in each used budget's window are resampled (seeded by
    `random_state`) and the parabolas and power laws refitted, giving percentile intervals for a, b,
    k_N, k_D.

    Fitted: a_, b_, N_opt_law_, D_opt_law_ (`PowerLaw`), budgets_ (list of dicts C, N_opt, D_opt,
    loss_opt, n_points, n_sizes, n_window, position, bracketed, reason, used), flags_, and
    bootstrap_params_, intervals_ when bootstrapped.
    """

    approach = 2

    def __init__(self, *, budget_rtol: float = 0.1, min_sizes: int = 3, window: int = 5,
                 window_span: float | None = None, keep_unbracketed: bool = False,
                 bootstrap: int = 0, interval_level: float = 0.95, random_state: int | None = None,
                 progress: bool = False) -> None:
        self.budget_rtol = budget_rtol
        self.min_sizes = min_sizes
        self.window = window
        self.window_span = window_span
        self.keep_unbracketed = keep_unbracketed
        self.bootstrap = bootstrap
        self.interval_level = interval_level
        self.random_state = random_state
        self.progress = progress

    def fit(self, N: Any, D: ArrayLike | None = None, loss: ArrayLike | None = None, *,
            C: ArrayLike | None = None, budget: ArrayLike | None = None,
            columns: Mapping[str, str | None] | None = None, source: str | None = None,
            n_convention: str | None = None) -> "IsoFLOPFit":
        """Fit to arrays (N, D or C, loss, optional budget), a DataFrame + `columns`, or `Points`."""
        self._check_settings()
        pts = as_points(N, D, loss, C=C, budget=budget, columns=columns, source=source, n_convention=n_convention)
        groups, budget_C = self._groups(pts)
        u = np.log(pts.N)
        budgets: list[dict[str, Any]] = []
        windows: list[np.ndarray] = []
        for g, Cg in zip(groups, budget_C):
            entry, w = self._profile(pts, g, Cg, u)
            budgets.append(entry)
            windows.append(w)
        self._warn_unbracketed(pts.source, budgets)
        used = [b for b in budgets if b["used"]]
        if len(used) < 2:
            found = ", ".join(f"{b['C']:.3g} ({b['reason'] or 'bracketed'})" for b in budgets) or "none"
            raise InputError(f"{pts.source}: approach 2 needs at least 2 IsoFLOP budgets whose loss minimum is "
                             f"bracketed by >= {self.min_sizes} model sizes; usable: {len(used)} "
                             f"(budgets found: {found})")
        C_used = np.array([b["C"] for b in used])
        self._fit_laws(C_used, np.array([b["N_opt"] for b in used]), np.array([b["D_opt"] for b in used]))
        self.budgets_ = budgets
        self._set_data_info(pts)
        self.flags_ = self._flags()
        for flag in self.flags_:
            warnings.warn(f"{pts.source}: {flag}", FitWarning, stacklevel=2)
        self._clear_bootstrap()
        if self.bootstrap:
            self._bootstrap(pts, windows, budget_C, u)
        return self

    def _check_settings(self) -> None:
        if int(self.window) < 3:
            raise InputError(f"approach 2: window={self.window} must be >= 3 points (a parabola has 3 coefficients)")
        if self.window_span is not None and not (np.isfinite(self.window_span) and self.window_span > 0):
            raise InputError(f"approach 2: window_span={self.window_span} must be a positive span in ln N")

    def _groups(self, pts: Points) -> tuple[list[np.ndarray], list[float]]:
        return group_budgets(pts.C, pts.budget, self.budget_rtol)

    def _window(self, u: np.ndarray, loss: np.ndarray) -> np.ndarray:
        return parabola_window(u, loss, int(self.window), self.window_span)

    def _profile(self, pts: Points, g: np.ndarray, Cg: float, u: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
        sizes = np.unique(pts.N[g])
        entry: dict[str, Any] = {"C": Cg, "N_opt": None, "D_opt": None, "loss_opt": None, "n_points": int(len(g)),
                                 "n_sizes": int(len(sizes)), "n_window": 0, "position": None, "bracketed": False,
                                 "reason": None, "used": False}
        if len(sizes) < self.min_sizes:
            entry["reason"] = f"{len(sizes)} model size(s), fewer than {self.min_sizes}"
            return entry, g[:0]
        w = g[self._window(u[g], pts.loss[g])]
        entry["n_window"] = int(len(w))
        coef = _parabola(u[w], pts.loss[w], None)
        if coef is None or coef[2] <= 0:
            entry["reason"] = "the loss has no minimum in log N (the parabola opens downward)"
            return entry, w
        center = float(np.mean(u[w]))
        v = -coef[1] / (2.0 * coef[2])
        N_opt = float(np.exp(center + v))
        loss_opt = float(coef[0] + coef[1] * v + coef[2] * v * v)
        lo, hi = sizes.min(), sizes.max()
        wlo, whi = pts.N[w].min(), pts.N[w].max()
        best_N = pts.N[g][np.argmin(pts.loss[g])]
        if best_N in (lo, hi):
            position = "edge"
            side = "smallest" if best_N == lo else "largest"
            entry["reason"] = f"the lowest loss is at the {side} size run (N={best_N:.3g})"
        elif N_opt < wlo or N_opt > whi:
            position = "outside"
            entry["reason"] = f"the fitted minimum N={N_opt:.3g} lies outside the sizes fitted [{wlo:.3g}, {whi:.3g}]"
        else:
            position = "inside"
        bracketed = position == "inside"
        entry.update(N_opt=N_opt, D_opt=float(tokens_for_flops(Cg, N_opt)), loss_opt=loss_opt, position=position,
                     bracketed=bracketed, used=bracketed or bool(self.keep_unbracketed))
        return entry, w

    def _warn_unbracketed(self, source: str, budgets: list[dict[str, Any]]) -> None:
        bad = [b for b in budgets if not b["bracketed"]]
        if not bad:
            return
        listed = "; ".join(f"C={b['C']:.3g}: {b['reason']}" for b in bad)
        kept = [b for b in bad if b["used"]]
        what = ("kept anyway (keep_unbracketed; their minima bias a and b)" if kept else
                "left out of the frontier fit (--keep-unbracketed keeps those with a minimum)")
        warnings.warn(f"{source}: {len(bad)} of {len(budgets)} IsoFLOP budgets are not bracketed by the sizes run, "
                      f"{what}: {listed}", FitWarning, stacklevel=3)

    def _flags(self) -> list[str]:
        """Exponents no compute-optimal frontier can have: N_opt and D_opt both grow with C, slower than C."""
        out = []
        for name, value in (("a", self.a_), ("b", self.b_)):
            if not 0.0 < value < 1.0:
                out.append(f"{name} = {value:.3g} lies outside (0, 1): not a compute-optimal frontier "
                           "(too few or too narrow budgets, or unbracketed minima); do not plan with it")
        return out

    def _bootstrap(self, pts: Points, windows, budget_C, u) -> None:
        rng = np.random.default_rng(self.random_state)
        B = int(self.bootstrap)
        usable = [(w, Cg) for w, Cg, b in zip(windows, budget_C, self.budgets_) if b["used"]]
        logN_opt = np.full((B, len(usable)), np.nan)
        for j, (w, Cg) in enumerate(usable):
            counts = resample_counts(len(w), B, rng)
            coef = _parabola(u[w], pts.loss[w], counts)          # (B, 3)
            center = np.mean(u[w])
            with np.errstate(all="ignore"):
                v = -coef[:, 1] / (2.0 * coef[:, 2])
            sizes_drawn = np.array([len(np.unique(pts.N[w][row > 0])) for row in counts])
            ok = (coef[:, 2] > 0) & (sizes_drawn >= 3) & np.isfinite(v)
            logN_opt[ok, j] = center + v[ok]
        logC = np.log([Cg for _, Cg in usable])
        draws = np.full((B, 4), np.nan)
        for i in range(B):
            ok = np.isfinite(logN_opt[i])
            if ok.sum() >= 2:
                lc, ln = logC[ok], logN_opt[i, ok]
                p, k = np.polyfit(lc, ln, 1)
                q, m = np.polyfit(lc, lc - np.log(FLOPS_PER_PARAM_TOKEN) - ln, 1)   # log D = log C - log 6 N
                draws[i] = (k, p, m, q)
        self._set_bootstrap(draws)

    @classmethod
    def _settings(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        s = d.get("settings") or {}
        return {k: s[k] for k in ("window", "window_span", "keep_unbracketed") if k in s}

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "budgets": [dict(b) for b in self.budgets_], "flags": list(self.flags_),
                "settings": {"window": int(self.window), "window_span": self.window_span,
                             "keep_unbracketed": bool(self.keep_unbracketed)}}

    def _read_fields(self, d: Mapping[str, Any]) -> None:
        super()._read_fields(d)
        self.budgets_ = [dict(b) for b in d.get("budgets", [])]
        self.flags_ = [str(f) for f in d.get("flags", [])]


class EnvelopeFit(_FrontierFit):
    """Chinchilla approach 1 (Hoffmann et al. 2022 §3.1): the lower envelope of training curves.

    Each run's curve (loss against FLOPs C = 6 N D as training proceeds) is interpolated linearly in
    log C at `n_flops` log-spaced FLOP values; at each value the run with the lowest loss gives
    N_opt(C) (its N), D_opt(C) = C / (6 N_opt) and the envelope loss. Then N_opt = k_N C^a and
    D_opt = k_D C^b by least squares in log-log space over the FLOP values.

    A FLOP value counts only when at least `min_sizes` distinct model sizes have reached it. With
    `exclude_edges` (default), FLOP values won by the smallest or largest size among those covering
    it are left out (there the true optimum may lie beyond the sizes run); if that leaves fewer than
    two distinct winners, all values are used and a FitWarning says so. Bootstrap resamples runs.

    Input: `Curves`, a DataFrame + columns (roles run, n, d or c, loss), or arrays run, N, D, loss.
    Fitted: a_, b_, N_opt_law_, D_opt_law_, envelope_ (dict of arrays C, N_opt, D_opt, loss, run,
    used), n_runs_; bootstrap_params_, intervals_ when bootstrapped.
    """

    approach = 1

    def __init__(self, *, n_flops: int = 1500, min_sizes: int = 2, exclude_edges: bool = True,
                 bootstrap: int = 0, interval_level: float = 0.95, random_state: int | None = None,
                 progress: bool = False) -> None:
        self.n_flops = n_flops
        self.min_sizes = min_sizes
        self.exclude_edges = exclude_edges
        self.bootstrap = bootstrap
        self.interval_level = interval_level
        self.random_state = random_state
        self.progress = progress

    def fit(self, curves: Any, N: ArrayLike | None = None, D: ArrayLike | None = None,
            loss: ArrayLike | None = None, *, columns: Mapping[str, str | None] | None = None,
            source: str | None = None, n_convention: str | None = None) -> "EnvelopeFit":
        """Fit to `Curves`, a DataFrame + `columns` {run, n, d|c, loss}, or arrays (run ids, N, D, loss)."""
        import pandas as pd

        if isinstance(curves, Curves):
            cv = curves
        elif isinstance(curves, pd.DataFrame):
            cv = curves_from_frame(curves, columns or {**CURVE_COLUMNS, "n": FOLDER_COLUMNS["n"]},
                                   source=source or "DataFrame", n_convention=n_convention)
        else:
            if N is None or D is None or loss is None:
                raise InputError(f"{source or 'arrays'}: approach 1 needs run ids, N, D and loss")
            cv = curves_from_arrays(curves, N, D, loss, source=source or "arrays", n_convention=n_convention or "total")
        runs, run_N, grid, L = self._interpolate(cv)
        self.n_runs_ = len(runs)
        env = self._envelope(run_N, grid, L, np.ones(len(runs), dtype=bool), warn=True, source=cv.source)
        if env is None:
            raise InputError(f"{cv.source}: approach 1 needs FLOP values reached by >= {self.min_sizes} model sizes "
                             f"with >= 2 different winners; the {len(runs)} curves do not overlap enough")
        keep, winner = env
        C = grid[keep]
        N_opt = run_N[winner[keep]]
        self._fit_laws(C, N_opt, tokens_for_flops(C, N_opt))
        self.envelope_ = {"C": grid, "N_opt": run_N[winner], "D_opt": tokens_for_flops(grid, run_N[winner]),
                          "loss": L[winner, np.arange(len(grid))], "run": runs[winner], "used": keep}
        self._set_data_info(cv, source=f"{cv.source} ({len(runs)} curves, {len(cv)} evaluations)")
        self._clear_bootstrap()
        if self.bootstrap:
            rng = np.random.default_rng(self.random_state)
            draws = np.full((int(self.bootstrap), 4), np.nan)
            for i in range(int(self.bootstrap)):
                mask = np.zeros(len(runs), dtype=bool)
                mask[rng.integers(0, len(runs), len(runs))] = True   # duplicates do not change an envelope
                env_i = self._envelope(run_N, grid, L, mask, warn=False, source=cv.source)
                if env_i is None:
                    continue
                k_i, w_i = env_i
                Ci, Ni = grid[k_i], run_N[w_i[k_i]]
                lkN, a = _loglog_line(Ci, Ni, log_k=True)
                lkD, b = _loglog_line(Ci, tokens_for_flops(Ci, Ni), log_k=True)
                draws[i] = (lkN, a, lkD, b)
            self._set_bootstrap(draws)
        return self

    def _interpolate(self, cv: Curves):
        runs = np.unique(cv.run)
        logC = np.log(cv.C)
        curves = []
        run_N = np.empty(len(runs))
        for j, r in enumerate(runs):
            m = cv.run == r
            Ns = np.unique(cv.N[m])
            if len(Ns) > 1:
                raise InputError(f"{cv.source}: run {r!r} has more than one N ({', '.join(f'{v:.4g}' for v in Ns[:3])})")
            run_N[j] = Ns[0]
            order = np.argsort(logC[m], kind="stable")
            curves.append((logC[m][order], cv.loss[m][order]))
        lo = min(c[0][0] for c in curves)
        hi = max(c[0][-1] for c in curves)
        if not hi > lo:
            raise InputError(f"{cv.source}: the curves span no range of FLOPs")
        grid_log = np.linspace(lo, hi, int(self.n_flops))
        L = np.full((len(runs), len(grid_log)), np.inf)
        for j, (lc, ls) in enumerate(curves):
            if len(lc) < 2:
                continue
            inside = (grid_log >= lc[0]) & (grid_log <= lc[-1])
            L[j, inside] = np.interp(grid_log[inside], lc, ls)
        return runs, run_N, np.exp(grid_log), L

    def _envelope(self, run_N, grid, L, mask, *, warn: bool, source: str):
        Lm = np.where(mask[:, None], L, np.inf)
        covered = np.isfinite(Lm)                                   # (runs, FLOP values)
        winner = np.argmin(Lm, axis=0)
        sizes, size_of_run = np.unique(run_N, return_inverse=True)
        member = np.zeros((len(sizes), len(run_N)))
        member[size_of_run, np.arange(len(run_N))] = 1.0
        n_sizes = ((member @ covered) > 0).sum(axis=0)              # distinct sizes reaching each value
        ok = n_sizes >= self.min_sizes
        if not ok.any():
            return None
        Nmin = np.where(covered, run_N[:, None], np.inf).min(axis=0)
        Nmax = np.where(covered, run_N[:, None], -np.inf).max(axis=0)
        Nw = run_N[winner]
        interior = ok & (Nw > Nmin) & (Nw < Nmax)
        keep = interior if self.exclude_edges else ok
        if len(np.unique(Nw[keep])) < 2:
            if len(np.unique(Nw[ok])) < 2:
                return None
            if warn and self.exclude_edges:
                warnings.warn(f"{source}: fewer than 2 model sizes win the envelope away from the edges of the sizes "
                              "run; using edge FLOP values too (N_opt may be biased toward the sizes run)",
                              FitWarning, stacklevel=4)
            keep = ok
        return keep, winner

    def _fields(self) -> dict[str, Any]:
        # the frontier at the FLOP values used, thinned to at most ~60 rows for the JSON
        idx = np.flatnonzero(self.envelope_["used"])
        idx = idx[np.unique(np.linspace(0, len(idx) - 1, min(60, len(idx))).astype(int))]
        env = self.envelope_
        rows = [{"C": float(env["C"][i]), "N_opt": float(env["N_opt"][i]), "D_opt": float(env["D_opt"][i]),
                 "loss": float(env["loss"][i]), "run": str(env["run"][i])} for i in idx]
        return {**super()._fields(), "envelope": rows, "n_runs": self.n_runs_}

    def _read_fields(self, d: Mapping[str, Any]) -> None:
        super()._read_fields(d)
        rows = d.get("envelope", [])
        self.envelope_ = {k: np.array([r[k] for r in rows]) for k in ("C", "N_opt", "D_opt", "loss", "run")}
        self.envelope_["used"] = np.ones(len(rows), dtype=bool)
        self.n_runs_ = int(d.get("n_runs", 0))


# ---------------------------------------------------------------------------------------------- helpers

def group_budgets(C: np.ndarray | None, budget: np.ndarray | None = None,
                  rtol: float = 0.1) -> tuple[list[np.ndarray], list[float]]:
    """The IsoFLOP budgets of a table, in increasing C: (the row indices of each, its C).

    With a `budget` column, one budget per distinct value (its C is the value). Without, rows are
    sorted by C and a budget collects the rows within a factor 1 + `rtol` of its smallest C; its C is
    their geometric mean. The one grouping of approach 2, the report's IsoFLOP figure and the
    backtest's leave-one-budget-out.
    """
    if budget is not None:
        values = np.unique(budget)
        return [np.flatnonzero(budget == v) for v in values], [float(v) for v in values]
    C = np.asarray(C, dtype=float)
    groups: list[list[int]] = []
    start = None
    for i in np.argsort(C, kind="stable"):
        if start is None or C[i] > start * (1.0 + rtol):
            groups.append([])
            start = C[i]
        groups[-1].append(int(i))
    idx = [np.array(g) for g in groups]
    return idx, [float(np.exp(np.mean(np.log(C[g])))) for g in idx]


def parabola_window(u: np.ndarray, loss: np.ndarray, window: int = 5, window_span: float | None = None) -> np.ndarray:
    """Positions (into u = ln N) of the points an IsoFLOP parabola is fitted to: the `window` nearest
    the lowest loss in u, or those within +-window_span/2 of it (at least 3 distinct sizes either way
    when the budget has them). `IsoFLOPFit` and the report's IsoFLOP figure use the same window."""
    u0 = u[np.argmin(loss)]
    dist = np.abs(u - u0)
    order = np.argsort(dist, kind="stable")
    if window_span is not None:
        inside = order[dist[order] <= window_span / 2.0 + 1e-12]
        if len(np.unique(u[inside])) >= 3:
            return np.sort(inside)
    k = int(window)
    while k < len(u) and len(np.unique(u[order[:k]])) < 3:
        k += 1
    return np.sort(order[:k])


def _loglog_line(x: np.ndarray, y: np.ndarray, log_k: bool = False) -> tuple[float, float]:
    """y = k x^p by least squares on log y against log x; returns (k, p) (or (log k, p))."""
    p, c = np.polyfit(np.log(x), np.log(y), 1)
    return (float(c) if log_k else float(np.exp(c))), float(p)


def _parabola(u: np.ndarray, loss: np.ndarray, weights: np.ndarray | None):
    """Coefficients (c0, c1, c2) of loss = c0 + c1 v + c2 v^2, v = u - mean(u); for weights (B, n), (B, 3).

    Returns None (one fit) when the design is singular."""
    v = u - np.mean(u)
    X = np.stack([np.ones_like(v), v, v * v], axis=1)
    if weights is None:
        coef, _, rank, _ = np.linalg.lstsq(X, loss, rcond=None)
        return coef if rank == 3 else None
    XtWX = np.einsum("bn,ni,nj->bij", weights, X, X)
    XtWy = np.einsum("bn,ni,n->bi", weights, X, loss)
    out = np.full((weights.shape[0], 3), np.nan)
    det = np.linalg.det(XtWX)
    ok = np.abs(det) > 1e-12 * np.maximum(1.0, np.abs(XtWX).max(axis=(1, 2))) ** 3
    if ok.any():
        out[ok] = np.linalg.solve(XtWX[ok], XtWy[ok][:, :, None])[:, :, 0]
    return out

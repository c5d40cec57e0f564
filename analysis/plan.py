"""Plan a training run from a fitted law: compute-optimal (N, D, loss) for a budget, and its relatives.

Five questions, one `Planner` method each (C = k N D training FLOPs, k = 6 by default):

- `budget(C)`: the (N, D) minimising L(N, D) subject to k N D = C. For Chinchilla's law the closed form
  of Hoffmann et al. 2022 eq. (4): N = G (C/k)^a, D = G^-1 (C/k)^b, G = (alpha A / (beta B))^(1/(alpha+beta)).
- `params(N)`: the token count D at which a model of N parameters is compute-optimal (the budget at
  which N_opt(C) = N). Training longer still lowers the loss, but each FLOP then buys less than a
  bigger model would.
- `tokens(D)`: the model size that is compute-optimal for D training tokens.
- `target_loss(L)`: the cheapest (N, D) that reaches loss L. On Chinchilla's law the frontier loss is
  L_opt(C) = E + K (C/k)^-gamma with gamma = alpha beta / (alpha + beta), K = A G^-alpha + B G^beta.
- `inference(D_inf, budget=C | target_loss=L)`: inference-aware sizing (Sardana et al. 2024, "Beyond
  Chinchilla-Optimal"): minimise training + inference FLOPs k N D_train + 2 N D_inf subject to
  L(N, D_train) = L, where L is the given target or the loss of the compute-optimal plan at C.

For Chinchilla's law all five are closed forms or one-dimensional bisections vectorised over the
bootstrap fits, so a 4,000-sample interval costs milliseconds. Any other law L(N, D) (Kaplan's, or a
user callable) goes through the numeric solvers, which the tests check against the closed forms.

With bootstrap fits (the fit JSON's "bootstrap" samples), every planned number gets a percentile
interval: the same plan is computed for each resampled law. A plan warns when its budget lies more
than 100x beyond the largest budget in the fit's `data_range`.

This module is pure numpy/scipy: model shapes (which need `scaling`) are attached by the CLI.
"""

from __future__ import annotations

import json
import math
import warnings as _warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from scipy import optimize

from analysis.errors import InputError
from contracts.counts import format_count
from analysis.laws import ChinchillaLaw, KaplanLawND, PowerLaw, chinchilla_frontier, chinchilla_loss

EXTRAPOLATION_WARN_FACTOR = 100.0
"""Warn when a plan's training FLOPs exceed the largest budget in the fit's data by more than this."""

INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0
"""Forward pass only: 2 N FLOPs per generated or scored token (Kaplan et al. 2020, Sardana et al. 2024)."""

UNITS = {
    "N": "parameters",
    "D": "tokens",
    "C": "FLOPs",
    "loss": "nats/token",
    "tokens_per_param": "tokens/parameter",
    "inference_flops": "FLOPs",
    "total_flops": "FLOPs",
    "wall_clock_s": "s",
    "device_hours": "device-hours",
}

Law = Callable[[np.ndarray, np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------------------
# Closed forms for Chinchilla's law, vectorised over parameter arrays (one entry per bootstrap fit)


@dataclass(frozen=True)
class _ChinchillaArrays:
    """E, A, B, alpha, beta as broadcastable arrays; every method returns arrays of their shape."""

    E: np.ndarray
    A: np.ndarray
    B: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    k: float = 6.0

    @classmethod
    def of(cls, law: ChinchillaLaw, k: float) -> "_ChinchillaArrays":
        return cls(*(np.asarray(getattr(law, p), dtype=float) for p in ("E", "A", "B", "alpha", "beta")), k=k)

    @property
    def G(self) -> np.ndarray:
        return chinchilla_frontier(self.A, self.B, self.alpha, self.beta)[0]

    @property
    def a(self) -> np.ndarray:
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)

    def loss(self, N, D) -> np.ndarray:
        return chinchilla_loss(N, D, self.E, self.A, self.B, self.alpha, self.beta)

    def budget(self, C):
        x = np.asarray(C, dtype=float) / self.k
        N = self.G * x**self.a
        return N, x / N

    def params(self, N):
        x = (np.asarray(N, dtype=float) / self.G) ** (1.0 / self.a)
        return np.broadcast_to(np.asarray(N, dtype=float), x.shape), x / N

    def tokens(self, D):
        x = (np.asarray(D, dtype=float) * self.G) ** (1.0 / self.b)
        return x / D, np.broadcast_to(np.asarray(D, dtype=float), x.shape)

    def target_loss(self, L):
        gamma = self.alpha * self.beta / (self.alpha + self.beta)
        K = self.A * self.G**-self.alpha + self.B * self.G**self.beta
        gap = np.asarray(L, dtype=float) - self.E
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(gap > 0, (K / np.where(gap > 0, gap, 1.0)) ** (1.0 / gamma), np.nan)
        return self.budget(self.k * x)

    def inference(self, L, D_inf):
        """argmin_N  k N D(N) + 2 N D_inf  with  L(N, D(N)) = L.

        Write s = A N^-alpha / (L - E) in (0, 1); then D(s) = (B / ((L - E)(1 - s)))^(1/beta) and the
        derivative of the cost in N is proportional to
            g(s) = k D(s) (1 - (alpha/beta) s / (1 - s)) + 2 D_inf,
        positive as s -> 0 and -> -inf as s -> 1. Bisect on t = logit(s).
        """
        gap = np.asarray(L, dtype=float) - self.E
        ok = gap > 0
        gap = np.where(ok, gap, 1.0)
        shape = np.broadcast(gap, self.alpha).shape

        def g(t):
            s = 1.0 / (1.0 + np.exp(-t))
            logD = (np.log(self.B) - np.log(gap) - np.log1p(-s)) / self.beta
            bracket = 1.0 - (self.alpha / self.beta) * s / (1.0 - s)
            return self.k * np.exp(logD) * bracket + INFERENCE_FLOPS_PER_PARAM_TOKEN * D_inf

        lo, hi = np.full(shape, -40.0), np.full(shape, 40.0)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            pos = g(mid) > 0
            lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
        s = 1.0 / (1.0 + np.exp(-0.5 * (lo + hi)))
        N = np.exp((np.log(self.A) - np.log(gap * s)) / self.alpha)
        D = np.exp((np.log(self.B) - np.log(gap) - np.log1p(-s)) / self.beta)
        return np.where(ok, N, np.nan), np.where(ok, D, np.nan)


# --------------------------------------------------------------------------------------------------
# Numeric solvers for any law L(N, D) (scalar parameters); also the check on the closed forms

_H = 1e-4  # central-difference step in log space


def _argmin_log(f: Callable[[float], float], lo: float, hi: float, n_grid: int = 401) -> float:
    """argmin of a smooth unimodal f(u) over u in [lo, hi]: grid scan, then the root of f'(u) by Brent.

    Solving f'(u) = 0 (central differences) instead of minimising f directly gives the minimiser to
    ~1e-10 in u; a direct minimiser stops at sqrt(machine eps) relative, too coarse near a flat optimum.
    """
    grid = np.linspace(lo, hi, n_grid)
    with np.errstate(all="ignore"):
        vals = np.array([f(u) for u in grid])
    vals = np.where(np.isfinite(vals), vals, np.inf)
    i = int(np.argmin(vals))
    if not np.isfinite(vals[i]):
        return math.nan
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, n_grid - 1)]

    def df(u):
        return (f(u + _H) - f(u - _H)) / (2 * _H)

    da, db = df(a), df(b)
    if not (np.isfinite(da) and np.isfinite(db)) or da * db > 0:
        return float(grid[i])  # optimum at the edge of the range
    return float(optimize.brentq(df, a, b, xtol=1e-13, rtol=4 * np.finfo(float).eps))


def _root_log(f: Callable[[float], float], lo: float, hi: float, n_grid: int = 201) -> float:
    """The root of f(u) on [lo, hi] nearest a sign change found by a grid scan (nan if none)."""
    grid = np.linspace(lo, hi, n_grid)
    with np.errstate(all="ignore"):
        vals = np.array([f(u) for u in grid])
    sign = np.sign(vals)
    idx = np.nonzero(np.isfinite(vals[:-1]) & np.isfinite(vals[1:]) & (sign[:-1] * sign[1:] <= 0))[0]
    if len(idx) == 0:
        return math.nan
    i = int(idx[0])
    if vals[i] == 0:
        return float(grid[i])
    return float(optimize.brentq(f, grid[i], grid[i + 1], xtol=1e-13, rtol=4 * np.finfo(float).eps))


def _L(law: Law, N: float, D: float) -> float:
    return float(law(np.float64(N), np.float64(D)))


def numeric_budget(law: Law, C: float, k: float = 6.0) -> tuple[float, float]:
    """Compute-optimal (N, D) for C = k N D by minimising L(N, C/(kN)) over log N in [1, C/k]."""
    lx = math.log(C / k)
    u = _argmin_log(lambda u: _L(law, math.exp(u), math.exp(lx - u)), 0.0, lx)
    return math.exp(u), math.exp(lx - u)


def _slope_gap(law: Law, u: float, v: float) -> float:
    """dL/dlogN - dL/dlogD at (e^u, e^v): zero exactly on the compute-optimal frontier (Lagrange)."""
    dn = (_L(law, math.exp(u + _H), math.exp(v)) - _L(law, math.exp(u - _H), math.exp(v))) / (2 * _H)
    dd = (_L(law, math.exp(u), math.exp(v + _H)) - _L(law, math.exp(u), math.exp(v - _H))) / (2 * _H)
    return dn - dd


def numeric_params(law: Law, N: float, k: float = 6.0) -> tuple[float, float]:
    """The D at which N is compute-optimal: dL/dlogN = dL/dlogD at (N, D)."""
    u = math.log(N)
    v = _root_log(lambda v: _slope_gap(law, u, v), 0.0, 80.0)
    return N, math.exp(v)


def numeric_tokens(law: Law, D: float, k: float = 6.0) -> tuple[float, float]:
    """The N that is compute-optimal for D tokens: dL/dlogN = dL/dlogD at (N, D)."""
    v = math.log(D)
    u = _root_log(lambda u: _slope_gap(law, u, v), 0.0, 80.0)
    return math.exp(u), D


def numeric_target_loss(law: Law, L: float, k: float = 6.0) -> tuple[float, float]:
    """The smallest budget whose compute-optimal loss is L (the frontier loss falls with C)."""

    def gap(lc):
        N, D = numeric_budget(law, math.exp(lc), k)
        return _L(law, N, D) - L

    lc = _root_log(gap, math.log(1e6), math.log(1e40), n_grid=69)
    if not math.isfinite(lc):
        return math.nan, math.nan
    return numeric_budget(law, math.exp(lc), k)


def _tokens_for_loss(law: Law, N: float, L: float) -> float:
    """D with L(N, D) = L (the loss falls with D), nan when N alone cannot reach L."""
    if _L(law, N, 1e40) >= L:
        return math.nan
    v = _root_log(lambda v: _L(law, N, math.exp(v)) - L, 0.0, math.log(1e40), n_grid=93)
    return math.exp(v)


def numeric_inference(law: Law, L: float, D_inf: float, k: float = 6.0) -> tuple[float, float]:
    """argmin_N k N D(N) + 2 N D_inf with L(N, D(N)) = L (Sardana et al. 2024), on log N in [1e3, 1e16]."""

    def cost(u):
        D = _tokens_for_loss(law, math.exp(u), L)
        return math.log(math.exp(u) * (k * D + INFERENCE_FLOPS_PER_PARAM_TOKEN * D_inf)) if math.isfinite(D) else math.inf

    u = _argmin_log(cost, math.log(1e3), math.log(1e16), n_grid=141)
    if not math.isfinite(u):
        return math.nan, math.nan
    return math.exp(u), _tokens_for_loss(law, math.exp(u), L)


def compute_optimal(law: Law, C, *, k: float = 6.0, method: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(N_opt, D_opt) at budget(s) C: closed form for `ChinchillaLaw` ("auto"/"closed"), else numeric."""
    C = np.asarray(C, dtype=float)
    if method not in ("auto", "closed", "numeric"):
        raise InputError(f"method: {method!r} is not one of auto, closed, numeric")
    if method != "numeric" and isinstance(law, ChinchillaLaw):
        return _ChinchillaArrays.of(law, k).budget(C)
    if method == "closed":
        raise InputError(f"law: {type(law).__name__} has no closed-form optimum; use method='numeric'")
    out = [numeric_budget(law, float(c), k) for c in C.ravel()]
    return np.array([o[0] for o in out]).reshape(C.shape), np.array([o[1] for o in out]).reshape(C.shape)


# --------------------------------------------------------------------------------------------------
# Surfaces: one interface over closed-form, numeric and frontier-only (approach 1/2) fits


class _Surface:
    """Solves the five plans for the central law and each bootstrap law; returns (N, D, loss) arrays."""

    has_loss = True
    method = ""

    def solve(self, kind: str, value: float, extra: float | None, which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    @property
    def n_bootstrap(self) -> int:
        return 0


class _ChinchillaSurface(_Surface):
    method = "closed form (Chinchilla law)"

    def __init__(self, law: ChinchillaLaw, boot: Mapping[str, np.ndarray] | None, k: float):
        self.central = _ChinchillaArrays.of(law, k)
        self.boot = None
        if boot:
            self.boot = _ChinchillaArrays(*(np.asarray(boot[p], dtype=float) for p in ("E", "A", "B", "alpha", "beta")), k=k)

    @property
    def n_bootstrap(self) -> int:
        return 0 if self.boot is None else int(self.boot.E.size)

    def solve(self, kind, value, extra, which):
        s = self.central if which == "central" else self.boot
        if kind == "inference":
            N, D = s.inference(value, extra)
        else:
            N, D = getattr(s, kind)(value)
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return N, D, s.loss(N, D)


class _NumericSurface(_Surface):
    method = "numeric"

    def __init__(self, law: Law, boot_laws: list[Law], k: float):
        self.law, self.boot_laws, self.k = law, boot_laws, k

    @property
    def n_bootstrap(self) -> int:
        return len(self.boot_laws)

    def _one(self, law, kind, value, extra):
        if kind == "budget":
            N, D = numeric_budget(law, value, self.k)
        elif kind == "params":
            N, D = numeric_params(law, value, self.k)
        elif kind == "tokens":
            N, D = numeric_tokens(law, value, self.k)
        elif kind == "target_loss":
            N, D = numeric_target_loss(law, value, self.k)
        else:
            N, D = numeric_inference(law, value, extra, self.k)
        loss = _L(law, N, D) if math.isfinite(N) and math.isfinite(D) else math.nan
        return N, D, loss

    def solve(self, kind, value, extra, which):
        laws = [self.law] if which == "central" else self.boot_laws
        out = np.array([self._one(law, kind, value, extra) for law in laws], dtype=float)
        if which == "central":
            return out[0, 0], out[0, 1], out[0, 2]
        return out[:, 0], out[:, 1], out[:, 2]


class _FrontierSurface(_Surface):
    """Approach 1/2 fits: N_opt(C) = k_N C^a from the per-budget minima; no loss surface.

    D is taken as C / (k N) so that the plan spends exactly its budget.
    """

    has_loss = False
    method = "approach-2 frontier N_opt(C) = k C^a"

    def __init__(self, n_law: PowerLaw, d_law: PowerLaw | None, k: float,
                 boot: Mapping[str, Any] | None = None):
        self.n_law, self.d_law, self.k = n_law, d_law, k
        self.boot = None
        if boot and all(key in boot for key in ("k_N", "a")):
            self.boot = {key: np.asarray(v, dtype=float) for key, v in boot.items()}

    @property
    def n_bootstrap(self) -> int:
        return 0 if self.boot is None else int(self.boot["a"].size)

    def solve(self, kind, value, extra, which):
        k = self.k
        if which == "central":
            kN, a = self.n_law.k, self.n_law.p
            kD, b = (self.d_law.k, self.d_law.p) if self.d_law is not None else (None, None)
        else:
            kN, a = self.boot["k_N"], self.boot["a"]
            kD, b = (self.boot["k_D"], self.boot["b"]) if "k_D" in self.boot else (None, None)
        if kind == "budget":
            N = kN * np.asarray(value, dtype=float) ** a
            D = value / (k * N)
        elif kind == "params":
            C = (value / kN) ** (1.0 / a)
            N, D = np.broadcast_to(np.asarray(value, dtype=float), np.shape(C)), C / (k * value)
        elif kind == "tokens":
            if kD is not None:
                C = (value / kD) ** (1.0 / b)
            else:  # D = C / (k k_N C^a)  =>  C^(1-a) = k k_N D
                C = (k * kN * value) ** (1.0 / (1.0 - a))
            N, D = C / (k * value), np.broadcast_to(np.asarray(value, dtype=float), np.shape(C))
        else:
            raise InputError(f"a {kind.replace('_', '-')} plan needs a loss surface L(N, D); this fit has only "
                             "the compute-optimal frontier (approach 1/2): fit approach 3 or kaplan")
        return np.asarray(N, dtype=float), np.asarray(D, dtype=float), np.full(np.shape(N), math.nan)


# --------------------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class Plan:
    """One planned training run. N in parameters (the fit's convention), D in tokens, C in FLOPs
    (training, k N D), loss in nats/token; `intervals` maps each of these names to a [lo, hi]
    percentile interval over the bootstrap fits (empty without bootstrap)."""

    kind: str
    N: float
    D: float
    C: float
    loss: float | None
    tokens_per_param: float
    inputs: dict[str, float]
    intervals: dict[str, list[float]] = field(default_factory=dict)
    interval_level: float | None = None
    n_bootstrap: int = 0
    method: str = ""
    n_convention: str = "total"
    flops_convention: str = "6ND"
    inference_tokens: float | None = None
    inference_flops: float | None = None
    total_flops: float | None = None
    reference: dict[str, float] | None = None
    wall_clock_s: float | None = None
    device_hours: float | None = None
    hardware: dict[str, float] | None = None
    extrapolation_factor: float | None = None
    largest_budget_in_data: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["units"] = {k: v for k, v in UNITS.items() if d.get(k) is not None}
        return d

    def summary(self) -> str:
        """Human-readable lines, every number with its unit."""
        lvl = f"{100 * self.interval_level:.0f}%" if self.interval_level else ""

        def row(label, key, fmt, unit=""):
            value = getattr(self, key)
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                return None
            line = f"{label:<22}{fmt(value)}{unit}"
            if key in self.intervals:
                lo, hi = self.intervals[key]
                line += f"   ({lvl} interval {fmt(lo)} .. {fmt(hi)})"
            return line

        title = {
            "budget": f"compute-optimal plan for {fmt_flops(self.inputs.get('budget', self.C))}",
            "params": f"compute-optimal data for a {format_count(self.N)}-parameter model",
            "tokens": f"compute-optimal model for {format_count(self.D)} tokens",
            "target_loss": f"cheapest plan reaching loss {self.inputs.get('target_loss', 0):.4f} nats/token",
            "inference": f"inference-aware plan (Sardana et al. 2024) for {format_count(self.inference_tokens or 0)} inference tokens",
        }[self.kind]
        conv = (f"N = {self.n_convention} parameters" if self.n_convention in ("total", "nonembedding")
                else f"N as in column '{self.n_convention}'")
        lines = [title, f"{'method':<22}{self.method}; {conv}; FLOPs = {self.flops_convention}"]
        e = lambda v: f"{v:.3g}"  # noqa: E731
        for r in (
            row("model size N", "N", format_count, " parameters"),
            row("training tokens D", "D", format_count, " tokens"),
            row("tokens per parameter", "tokens_per_param", lambda v: f"{v:.1f}"),
            row("training compute C", "C", e, " FLOPs"),
            row("predicted loss", "loss", lambda v: f"{v:.4f}", " nats/token"),
            row("inference compute", "inference_flops", e, " FLOPs"),
            row("total compute", "total_flops", e, " FLOPs"),
            row("wall clock", "wall_clock_s", fmt_duration),
            row("device time", "device_hours", lambda v: f"{v:,.0f}", " device-hours"),
        ):
            if r:
                lines.append(r)
        if self.reference:
            ref = self.reference
            lines.append(
                f"{'vs compute-optimal':<22}N {format_count(ref['N'])}, D {format_count(ref['D'])}, "
                f"total {fmt_flops(ref['total_flops'])} ({100 * ref['total_flops_saved']:.1f}% saved)"
            )
        if self.hardware:
            h = self.hardware
            lines.append(f"{'hardware':<22}{h['devices']:g} x {fmt_flops(h['flops_per_s'])}/s peak at {100 * h['mfu']:.0f}% MFU")
        if self.n_bootstrap:
            lines.append(f"{'intervals':<22}{lvl} percentile over {self.n_bootstrap} bootstrap fits")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)


def fmt_flops(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3g} FLOPs"


def fmt_duration(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "n/a"
    for div, unit in ((365.25 * 86400, "years"), (86400, "days"), (3600, "hours"), (60, "minutes")):
        if s >= div:
            return f"{s / div:.3g} {unit}"
    return f"{s:.3g} s"


def _percentile(x: np.ndarray, level: float) -> list[float] | None:
    x = np.asarray(x, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2:
        return None
    q = 100 * (1 - level) / 2
    return [float(np.percentile(x, q)), float(np.percentile(x, 100 - q))]


class Planner:
    """Plans from one fitted law (+ optional bootstrap laws, + the range of the data it was fitted on).

    >>> from analysis.laws import EPOCH_2024
    >>> p = Planner(EPOCH_2024).budget(5.76e23)
    >>> round(p.N / 1e9), round(p.tokens_per_param)
    (73, 18)
    """

    def __init__(
        self,
        law: Law | PowerLaw,
        *,
        bootstrap: Mapping[str, Any] | list[Law] | None = None,
        data_range: Mapping[str, Any] | None = None,
        interval_level: float = 0.95,
        flops_per_param_token: float = 6.0,
        n_convention: str = "total",
        flops_convention: str = "6ND",
        d_opt_law: PowerLaw | None = None,
        method: str = "auto",
    ):
        if not 0 < interval_level < 1:
            raise InputError(f"interval_level: {interval_level} is not in (0, 1)")
        self.law = law
        self.data_range = dict(data_range or {})
        self.interval_level = interval_level
        self.k = flops_per_param_token
        self.n_convention = n_convention
        self.flops_convention = flops_convention
        if isinstance(law, PowerLaw):
            self.surface: _Surface = _FrontierSurface(law, d_opt_law, self.k,
                                                      bootstrap if isinstance(bootstrap, Mapping) else None)
        elif isinstance(law, ChinchillaLaw) and method != "numeric":
            boot = bootstrap if isinstance(bootstrap, Mapping) else None
            if isinstance(bootstrap, list):
                boot = {p: np.array([getattr(b, p) for b in bootstrap]) for p in ("E", "A", "B", "alpha", "beta")}
            self.surface = _ChinchillaSurface(law, boot, self.k)
        else:
            boot_laws = list(bootstrap or []) if not isinstance(bootstrap, Mapping) else _laws_from_samples(law, bootstrap)
            self.surface = _NumericSurface(law, boot_laws, self.k)

    # ---- construction from a fit -----------------------------------------------------------------

    @classmethod
    def from_fit(cls, fit: Mapping[str, Any] | str | Path | Any, **kwargs) -> "Planner":
        """From a fit JSON (path or dict, the format `scaling fit --out` writes) or a fitted estimator
        with `to_dict()`: approach 3 (Chinchilla law), kaplan (Kaplan L(N, D)), approach 1/2 (frontier)."""
        d, source = _fit_dict(fit)
        approach = d.get("approach")
        common = dict(
            data_range=d.get("data_range"),
            interval_level=float(d.get("interval_level") or 0.95),
            n_convention=str(d.get("n_convention") or "total"),
            flops_convention=str(d.get("flops_convention") or "6ND"),
        )
        common.update(kwargs)
        try:
            if approach in (3, "3") or d.get("law") == "chinchilla":
                law = ChinchillaLaw(*(float(d[p]) for p in ("E", "A", "B", "alpha", "beta")))
                boot = d.get("bootstrap") or None
                if boot:
                    boot = {p: np.asarray(boot[p], dtype=float) for p in ("E", "A", "B", "alpha", "beta")}
                    if len({v.size for v in boot.values()}) != 1:
                        raise InputError(f"{source}: field 'bootstrap': the sample arrays differ in length")
                return cls(law, bootstrap=boot, **common)
            if approach == "kaplan":
                if str(d.get("form", "nd")) != "nd":
                    raise InputError(f"{source}: a Kaplan L({str(d['form']).upper()}) fit cannot plan N and D; "
                                     "fit the joint law L(N, D) (--kaplan-form nd) or approach 3")
                law = KaplanLawND(*(float(d[p]) for p in ("alpha_N", "alpha_D", "N_c", "D_c")))
                boot = d.get("bootstrap") or None
                return cls(law, bootstrap=_laws_from_samples(law, boot) if boot else None, **common)
            if approach in (1, 2, "1", "2"):
                n_law = PowerLaw(float(d["N_opt_law"]["k"]), float(d["N_opt_law"]["p"]))
                dl = d.get("D_opt_law")
                d_law = PowerLaw(float(dl["k"]), float(dl["p"])) if dl else None
                planner = cls(n_law, d_opt_law=d_law, bootstrap=d.get("bootstrap") or None, **common)
                planner.surface.method = f"approach-{approach} frontier N_opt(C) = {n_law.k:.4g} C^{n_law.p:.4f}"
                return planner
        except KeyError as exc:
            raise InputError(f"{source}: approach-{approach} fit has no field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{source}: bad value in fit: {exc}") from None
        raise InputError(f"{source}: field 'approach': {approach!r} is not 1, 2, 3 or 'kaplan'")

    # ---- the five plans --------------------------------------------------------------------------

    def budget(self, C: float, **hw) -> Plan:
        """Compute-optimal (N, D) for C training FLOPs."""
        _positive("budget", C)
        return self._plan("budget", C, None, {"budget": C}, **hw)

    def params(self, N: float, **hw) -> Plan:
        """The data size that makes a model of N parameters compute-optimal."""
        _positive("params", N)
        return self._plan("params", N, None, {"params": N}, **hw)

    def tokens(self, D: float, **hw) -> Plan:
        """The model size that is compute-optimal for D tokens."""
        _positive("tokens", D)
        return self._plan("tokens", D, None, {"tokens": D}, **hw)

    def target_loss(self, L: float, **hw) -> Plan:
        """The cheapest (N, D) reaching loss L (nats/token)."""
        _positive("target_loss", L)
        return self._plan("target_loss", L, None, {"target_loss": L}, **hw)

    def inference(self, inference_tokens: float, *, budget: float | None = None, target_loss: float | None = None, **hw) -> Plan:
        """Sardana et al. 2024: minimise k N D + 2 N D_inf at the loss of `target_loss`, or of the
        compute-optimal plan at `budget`. `reference` holds that compute-optimal plan for comparison."""
        _positive("inference_tokens", inference_tokens)
        if (budget is None) == (target_loss is None):
            raise InputError("inference plan: give exactly one of budget (FLOPs) or target_loss (nats/token)")
        if not self.surface.has_loss:
            raise InputError("an inference-aware plan needs a loss surface L(N, D); this fit has only the "
                             "compute-optimal frontier (approach 1/2): fit approach 3 or kaplan")
        ref = self.budget(budget) if budget is not None else self.target_loss(target_loss)
        L = ref.loss
        if L is None or not math.isfinite(L):
            raise InputError(f"target_loss: {target_loss} nats/token is unreachable under this law")
        inputs = {"inference_tokens": inference_tokens, **({"budget": budget} if budget is not None else {"target_loss": target_loss})}
        # bootstrap: each resampled law plans at its own reference loss
        return self._plan("inference", L, inference_tokens, inputs, reference=ref, **hw)

    # ---- machinery -------------------------------------------------------------------------------

    def _plan(self, kind, value, extra, inputs, *, reference: Plan | None = None,
              flops_per_s: float | None = None, mfu: float | None = None, devices: float = 1.0) -> Plan:
        N, D, loss = (np.asarray(x, dtype=float) for x in self.surface.solve(kind, value, extra, "central"))
        N, D, loss = float(N), float(D), float(loss)
        if kind == "target_loss" and not math.isfinite(N):
            raise InputError(f"target_loss: {value} nats/token is unreachable: it is at or below the law's "
                             f"irreducible loss {_irreducible(self.law)}")
        if not (math.isfinite(N) and math.isfinite(D)):
            raise InputError(f"{kind}: no finite plan for {value:g} under this law")
        C = self.k * N * D
        warn: list[str] = []
        intervals: dict[str, list[float]] = {}
        nb = self.surface.n_bootstrap
        boot_cols: dict[str, np.ndarray] = {}
        if nb:
            if kind == "inference":
                # each bootstrap law keeps its own reference loss (the same budget or target, re-planned)
                rk, rv = ("budget", inputs["budget"]) if "budget" in inputs else ("target_loss", inputs["target_loss"])
                _, _, Lb = self.surface.solve(rk, rv, None, "bootstrap")
                bN, bD, bL = self.surface.solve("inference", np.asarray(Lb), extra, "bootstrap") if isinstance(
                    self.surface, _ChinchillaSurface) else self._numeric_boot_inference(np.asarray(Lb), extra)
            else:
                bN, bD, bL = self.surface.solve(kind, value, extra, "bootstrap")
            bN, bD, bL = (np.broadcast_to(np.asarray(x, dtype=float), (nb,)) for x in (bN, bD, bL))
            boot_cols = {"N": bN, "D": bD, "C": self.k * bN * bD, "loss": bL, "tokens_per_param": bD / bN}
            for key, col in boot_cols.items():
                iv = _percentile(col, self.interval_level)
                if iv is not None:
                    intervals[key] = iv
            bad = int(np.sum(~np.isfinite(bN)))
            if bad:
                warn.append(f"{bad} of {nb} bootstrap fits have no finite plan (e.g. the target loss is below their E); "
                            "the intervals use the rest")
        if kind == "params" and "N" in intervals:
            del intervals["N"]  # fixed by the question
        if kind == "tokens" and "D" in intervals:
            del intervals["D"]
        if kind == "budget" and "C" in intervals:
            del intervals["C"]
        if kind == "target_loss" and "loss" in intervals:
            del intervals["loss"]

        plan_kw: dict[str, Any] = {}
        if kind == "inference":
            inf = INFERENCE_FLOPS_PER_PARAM_TOKEN * N * extra
            plan_kw.update(inference_tokens=extra, inference_flops=inf, total_flops=C + inf)
            ref_total = reference.C + INFERENCE_FLOPS_PER_PARAM_TOKEN * reference.N * extra
            plan_kw["reference"] = {"N": reference.N, "D": reference.D, "C": reference.C, "loss": reference.loss,
                                    "total_flops": ref_total, "total_flops_saved": 1.0 - (C + inf) / ref_total}
            if boot_cols:
                iv = _percentile(boot_cols["C"] + INFERENCE_FLOPS_PER_PARAM_TOKEN * boot_cols["N"] * extra, self.interval_level)
                if iv:
                    intervals["total_flops"] = iv
            intervals.pop("loss", None)  # equal to the reference loss by construction

        if flops_per_s is not None or mfu is not None:
            if flops_per_s is None or mfu is None:
                raise InputError("wall clock: give both flops_per_s (peak FLOP/s per device) and mfu (0-1)")
            _positive("flops_per_s", flops_per_s)
            _positive("devices", devices)
            if not 0 < mfu <= 1:
                raise InputError(f"mfu: {mfu} is not a fraction in (0, 1]")
            rate = flops_per_s * mfu * devices
            plan_kw.update(wall_clock_s=C / rate, device_hours=C / rate * devices / 3600.0,
                           hardware={"flops_per_s": flops_per_s, "mfu": mfu, "devices": devices})
            if "C" in intervals:
                intervals["wall_clock_s"] = [c / rate for c in intervals["C"]]
                intervals["device_hours"] = [c / rate * devices / 3600.0 for c in intervals["C"]]

        cmax = _largest_budget(self.data_range)
        factor = None
        if cmax:
            factor = C / cmax
            if factor > EXTRAPOLATION_WARN_FACTOR:
                warn.insert(0, f"extrapolation: the plan's {C:.3g} FLOPs are {factor:,.0f}x the largest budget in the "
                               f"fit's data ({cmax:.3g} FLOPs); laws often bend beyond their data")
        else:
            warn.append("the fit has no data_range, so the extrapolation distance is unknown")
        if not self.surface.has_loss:
            warn.append("approach 1/2 fits give no loss surface: no predicted loss")
        return Plan(
            kind=kind, N=N, D=D, C=C, loss=loss if math.isfinite(loss) else None, tokens_per_param=D / N,
            inputs={k: float(v) for k, v in inputs.items()}, intervals=intervals,
            interval_level=self.interval_level if nb else None, n_bootstrap=nb,
            method=self.surface.method, n_convention=self.n_convention, flops_convention=self.flops_convention,
            extrapolation_factor=factor, largest_budget_in_data=cmax, warnings=warn, **plan_kw,
        )

    def _numeric_boot_inference(self, Ls: np.ndarray, extra: float):
        s: _NumericSurface = self.surface  # type: ignore[assignment]
        out = np.array([s._one(law, "inference", float(L), extra) for law, L in zip(s.boot_laws, Ls)], dtype=float)
        return out[:, 0], out[:, 1], out[:, 2]


def _positive(name: str, x: float) -> None:
    if x is None or not math.isfinite(float(x)) or float(x) <= 0:
        raise InputError(f"{name}: {x!r} is not a positive finite number")


def _irreducible(law) -> str:
    E = getattr(law, "E", None)
    return f"E = {E:.4f} nats/token" if E is not None else "(none)"


def _largest_budget(data_range: Mapping[str, Any]) -> float | None:
    c = data_range.get("C") if data_range else None
    if c is not None:
        return float(c[1])
    if data_range and data_range.get("N") is not None and data_range.get("D") is not None:
        return None  # no joint information: the largest N need not have seen the largest D
    return None


def _laws_from_samples(law, samples: Mapping[str, Any]) -> list:
    """Bootstrap samples (parameter name -> array) to law objects of `law`'s type."""
    names = list(law.__dataclass_fields__)
    arrays = {n: np.asarray(samples[n], dtype=float) for n in names}
    return [type(law)(**{n: float(arrays[n][i]) for n in names}) for i in range(len(arrays[names[0]]))]


def _fit_dict(fit) -> tuple[dict, str]:
    if isinstance(fit, Mapping):
        return dict(fit), str(fit.get("source") or "fit")
    if hasattr(fit, "to_dict"):
        return fit.to_dict(), type(fit).__name__
    path = Path(fit)
    try:
        return json.loads(path.read_text()), str(path)
    except FileNotFoundError:
        raise InputError(f"{path}: fit file not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a fit JSON ({exc.msg} at line {exc.lineno})") from None


def plan_table(planner: Planner, budgets) -> list[Plan]:
    """Compute-optimal plans at several budgets (for reports); budgets that fail are skipped."""
    out = []
    for C in budgets:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            try:
                out.append(planner.budget(float(C)))
            except InputError:
                continue
    return out

"""The planner's solvers: where a law's compute-optimal plans come from.

- Closed forms for Chinchilla's law L = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022 eq. 4 and its
  relatives), vectorised over the bootstrap fits (`ChinchillaSolver`).
- Numeric solvers for any law L(N, D) (`numeric_budget`, `numeric_params`, `numeric_tokens`,
  `numeric_target_loss`, `numeric_inference`), which the tests check against the closed forms.
- Surfaces: one interface (`solve(kind, value, extra, which)`) over the closed forms, the numeric
  solvers and the frontier-only fits of approaches 1 and 2, for the central law and every bootstrap law.

C = k N D training FLOPs (k = 6 by default); inference costs 2 N FLOPs per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
from scipy import optimize

from analysis.errors import InputError
from analysis.laws import ChinchillaLaw, PowerLaw, chinchilla_frontier, chinchilla_loss
from contracts.conventions import FLOPS_PER_PARAM_TOKEN

INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0
"""Forward pass only: 2 N FLOPs per generated or scored token (Kaplan et al. 2020, Sardana et al. 2024)."""

Law = Callable[[np.ndarray, np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------------------
# Closed forms for Chinchilla's law, vectorised over parameter arrays (one entry per bootstrap fit)


@dataclass(frozen=True)
class ChinchillaSolver:
    """Chinchilla's law with E, A, B, alpha, beta as broadcastable arrays (one entry per bootstrap fit):
    the five plans in closed form (or a bisection vectorised over the fits); every method returns
    arrays of the parameters' shape."""

    E: np.ndarray
    A: np.ndarray
    B: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    k: float = FLOPS_PER_PARAM_TOKEN

    @classmethod
    def of(cls, law: ChinchillaLaw, k: float) -> "ChinchillaSolver":
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


def numeric_budget(law: Law, C: float, k: float = FLOPS_PER_PARAM_TOKEN) -> tuple[float, float]:
    """Compute-optimal (N, D) for C = k N D by minimising L(N, C/(kN)) over log N in [1, C/k]."""
    lx = math.log(C / k)
    u = _argmin_log(lambda u: _L(law, math.exp(u), math.exp(lx - u)), 0.0, lx)
    return math.exp(u), math.exp(lx - u)


def _slope_gap(law: Law, u: float, v: float) -> float:
    """dL/dlogN - dL/dlogD at (e^u, e^v): zero exactly on the compute-optimal frontier (Lagrange)."""
    dn = (_L(law, math.exp(u + _H), math.exp(v)) - _L(law, math.exp(u - _H), math.exp(v))) / (2 * _H)
    dd = (_L(law, math.exp(u), math.exp(v + _H)) - _L(law, math.exp(u), math.exp(v - _H))) / (2 * _H)
    return dn - dd


def numeric_params(law: Law, N: float, k: float = FLOPS_PER_PARAM_TOKEN) -> tuple[float, float]:
    """The D at which N is compute-optimal: dL/dlogN = dL/dlogD at (N, D)."""
    u = math.log(N)
    v = _root_log(lambda v: _slope_gap(law, u, v), 0.0, 80.0)
    return N, math.exp(v)


def numeric_tokens(law: Law, D: float, k: float = FLOPS_PER_PARAM_TOKEN) -> tuple[float, float]:
    """The N that is compute-optimal for D tokens: dL/dlogN = dL/dlogD at (N, D)."""
    v = math.log(D)
    u = _root_log(lambda u: _slope_gap(law, u, v), 0.0, 80.0)
    return math.exp(u), D


def numeric_target_loss(law: Law, L: float, k: float = FLOPS_PER_PARAM_TOKEN) -> tuple[float, float]:
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


def numeric_inference(law: Law, L: float, D_inf: float, k: float = FLOPS_PER_PARAM_TOKEN) -> tuple[float, float]:
    """argmin_N k N D(N) + 2 N D_inf with L(N, D(N)) = L (Sardana et al. 2024), on log N in [1e3, 1e16]."""

    def cost(u):
        D = _tokens_for_loss(law, math.exp(u), L)
        return math.log(math.exp(u) * (k * D + INFERENCE_FLOPS_PER_PARAM_TOKEN * D_inf)) if math.isfinite(D) else math.inf

    u = _argmin_log(cost, math.log(1e3), math.log(1e16), n_grid=141)
    if not math.isfinite(u):
        return math.nan, math.nan
    return math.exp(u), _tokens_for_loss(law, math.exp(u), L)


def compute_optimal(law: Law, C, *, k: float = FLOPS_PER_PARAM_TOKEN, method: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(N_opt, D_opt) at budget(s) C: closed form for `ChinchillaLaw` ("auto"/"closed"), else numeric."""
    C = np.asarray(C, dtype=float)
    if method not in ("auto", "closed", "numeric"):
        raise InputError(f"method: {method!r} is not one of auto, closed, numeric")
    if method != "numeric" and isinstance(law, ChinchillaLaw):
        return ChinchillaSolver.of(law, k).budget(C)
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
        """(N, D, loss) of plan `kind` ("budget", "params", "tokens", "target_loss", "inference") for
        `value` (and `extra`, the inference tokens), for the "central" law or every "bootstrap" law."""
        raise NotImplementedError

    def bootstrap_inference(self, losses: np.ndarray, D_inf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The inference plan of each bootstrap law at its own loss `losses[i]`."""
        return self.solve("inference", np.asarray(losses), D_inf, "bootstrap")

    @property
    def n_bootstrap(self) -> int:
        return 0


class _ChinchillaSurface(_Surface):
    method = "closed form (Chinchilla law)"

    def __init__(self, law: ChinchillaLaw, boot: Mapping[str, np.ndarray] | None, k: float):
        self.central = ChinchillaSolver.of(law, k)
        self.boot = None
        if boot:
            self.boot = ChinchillaSolver(*(np.asarray(boot[p], dtype=float) for p in ("E", "A", "B", "alpha", "beta")), k=k)

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

    def bootstrap_inference(self, losses, D_inf):
        out = np.array([self._one(law, "inference", float(L), D_inf) for law, L in zip(self.boot_laws, losses)],
                       dtype=float)
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


def surface_for(law: Law | PowerLaw, bootstrap: Mapping[str, Any] | list | None, k: float, *,
                d_opt_law: PowerLaw | None = None, method: str = "auto") -> _Surface:
    """The surface that plans with `law`: the frontier for a `PowerLaw` N_opt(C) (approaches 1 and 2,
    `d_opt_law` its D_opt(C)), the closed forms for a `ChinchillaLaw` (unless method="numeric"), the
    numeric solvers otherwise. `bootstrap`: parameter name -> draws, or a list of laws."""
    if isinstance(law, PowerLaw):
        return _FrontierSurface(law, d_opt_law, k, bootstrap if isinstance(bootstrap, Mapping) else None)
    if isinstance(law, ChinchillaLaw) and method != "numeric":
        boot = bootstrap if isinstance(bootstrap, Mapping) else None
        if isinstance(bootstrap, list):
            boot = {p: np.array([getattr(b, p) for b in bootstrap]) for p in ("E", "A", "B", "alpha", "beta")}
        return _ChinchillaSurface(law, boot, k)
    boot_laws = list(bootstrap or []) if not isinstance(bootstrap, Mapping) else laws_from_samples(law, bootstrap)
    return _NumericSurface(law, boot_laws, k)


def laws_from_samples(law, samples: Mapping[str, Any]) -> list:
    """Bootstrap samples (parameter name -> array) to law objects of `law`'s type."""
    names = [n for n in law.__dataclass_fields__ if n in samples]   # the rest (a fixed ceiling) are the law's
    fixed = {n: getattr(law, n) for n in law.__dataclass_fields__ if n not in samples}
    arrays = {n: np.asarray(samples[n], dtype=float) for n in names}
    return [type(law)(**{n: float(arrays[n][i]) for n in names}, **fixed) for i in range(len(arrays[names[0]]))]

"""Scaling-law forms: Kaplan et al. 2020 and Hoffmann et al. 2022 (Chinchilla).

Each law is a small frozen dataclass: its parameters, `__call__` for the loss (nats/token), and the
closed forms that follow from it. Losses are computed in log space where that avoids overflow.

Conventions: N is a parameter count (which one, total or non-embedding, is the fit's business and is
recorded by the fitter), D is training tokens, C is training FLOPs with C = 6 N D unless stated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from contracts.conventions import FLOPS_PER_PARAM_TOKEN

PF_DAY = 8.64e19
"""FLOPs in one petaflop/s-day (Kaplan et al. 2020 quote C in PF-days)."""


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


# ---- the formulas, once; every argument broadcasts, so one call evaluates all bootstrap draws
# (parameters of shape (B, 1) against N, D of shape (n,) give (B, n))

def chinchilla_loss(N: ArrayLike, D: ArrayLike, E: ArrayLike, A: ArrayLike, B: ArrayLike,
                    alpha: ArrayLike, beta: ArrayLike) -> np.ndarray:
    """L(N, D) = E + A / N^alpha + B / D^beta, each power term computed in log space."""
    N, D = _arr(N), _arr(D)
    return E + np.exp(np.log(A) - alpha * np.log(N)) + np.exp(np.log(B) - beta * np.log(D))


def chinchilla_frontier(A: ArrayLike, B: ArrayLike, alpha: ArrayLike, beta: ArrayLike):
    """(G, a, b) of the compute-optimal frontier N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b (eq. 4):
    G = (alpha A / (beta B))^(1 / (alpha + beta)), a = beta / (alpha + beta), b = alpha / (alpha + beta)."""
    with np.errstate(all="ignore"):
        s = alpha + beta
        return np.exp((np.log(alpha) + np.log(A) - np.log(beta) - np.log(B)) / s), beta / s, alpha / s


def chinchilla_optimum(C: ArrayLike, G: ArrayLike, a: ArrayLike, b: ArrayLike,
                       flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN) -> tuple[np.ndarray, np.ndarray]:
    """(N_opt, D_opt) = (G x^a, x^b / G) with x = C / k: the minimum of L under C = k N D."""
    x = _arr(C) / flops_per_param_token
    return G * x**a, x**b / G


def kaplan_nd_loss(N: ArrayLike, D: ArrayLike, alpha_N: ArrayLike, alpha_D: ArrayLike, N_c: ArrayLike,
                   D_c: ArrayLike, ceiling: float | None = None) -> np.ndarray:
    """K(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D, as exp(alpha_D logaddexp(...));
    with a `ceiling` L0, the bounded form L = L0 / (1 + 1/K) (`bound_by_ceiling`)."""
    N, D = _arr(N), _arr(D)
    t1 = (alpha_N / alpha_D) * (np.log(N_c) - np.log(N))
    log_k = alpha_D * np.logaddexp(t1, np.log(D_c) - np.log(D))
    return np.exp(log_k if ceiling is None else bound_by_ceiling(log_k, ceiling))


def bound_by_ceiling(log_k: ArrayLike, ceiling: float) -> np.ndarray:
    """log L for L / (L0 - L) = K, i.e. L = L0 / (1 + 1/K): log L = log L0 - log(1 + e^(-log K)).

    Alabdulmohsin et al. 2022 (NeurIPS, "Revisiting neural scaling laws in language and vision", eq. 4,
    their M4 with eps_inf = 0 and alpha = 1): a power law K in the odds of the loss against L0, the loss
    of a uniform guess over the vocabulary (ln V nats/token). Small runs sit near L0 and leave it slowly,
    so the loss frontier steepens as it leaves that plateau; far below L0, L ~ L0 K, Kaplan's power law."""
    return np.log(ceiling) - np.logaddexp(0.0, -_arr(log_k))


def _power_law(X: ArrayLike, X_c: float, alpha: float) -> np.ndarray:
    """(X_c / X)^alpha, Kaplan's one-variable form."""
    return np.exp(alpha * (np.log(X_c) - np.log(_arr(X))))


@dataclass(frozen=True)
class ChinchillaLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta   (Hoffmann et al. 2022, eq. 2; Approach 3).

    E is the irreducible loss of the data, A/N^alpha the shortfall of a finite model, B/D^beta that of
    finite data. Fitted in log-sum-exp form log L = LSE(a - alpha log N, b - beta log D, e) with
    A = e^a, B = e^b, E = e^e (eq. 11).

    Minimising L under C = 6ND gives the compute-optimal frontier (eq. 4):
        N_opt(C) = G (C/6)^a,   D_opt(C) = G^-1 (C/6)^b,
        G = (alpha A / (beta B))^(1 / (alpha + beta)),   a = beta / (alpha + beta),   b = alpha / (alpha + beta).
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def __call__(self, N: ArrayLike, D: ArrayLike) -> np.ndarray:
        return chinchilla_loss(N, D, self.E, self.A, self.B, self.alpha, self.beta)

    @property
    def a(self) -> float:
        """Exponent of N_opt in C: beta / (alpha + beta)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt in C: alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        """(alpha A / (beta B))^(1 / (alpha + beta))."""
        return float(chinchilla_frontier(self.A, self.B, self.alpha, self.beta)[0])

    def compute_optimal(self, C: ArrayLike, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN) -> tuple[np.ndarray, np.ndarray]:
        """(N_opt, D_opt) minimising L subject to C = k N D (k = 6 by default), eq. 4."""
        return chinchilla_optimum(C, self.G, self.a, self.b, flops_per_param_token)

    def optimal_loss(self, C: ArrayLike, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN) -> np.ndarray:
        """L(N_opt(C), D_opt(C))."""
        N, D = self.compute_optimal(C, flops_per_param_token)
        return self(N, D)

    def tokens_per_param(self, C: ArrayLike, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN) -> np.ndarray:
        """D_opt / N_opt at budget C."""
        N, D = self.compute_optimal(C, flops_per_param_token)
        return D / N

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class KaplanLawN:
    """L(N) = (N_c / N)^alpha_N   (Kaplan et al. 2020, eq. 1.1; N non-embedding, trained to convergence).

    Published: alpha_N = 0.076, N_c = 8.8e13.
    """

    alpha_N: float
    N_c: float

    def __call__(self, N: ArrayLike) -> np.ndarray:
        return _power_law(N, self.N_c, self.alpha_N)


@dataclass(frozen=True)
class KaplanLawD:
    """L(D) = (D_c / D)^alpha_D   (Kaplan et al. 2020, eq. 1.2; large models, early stopping).

    Published: alpha_D = 0.095, D_c = 5.4e13 tokens.
    """

    alpha_D: float
    D_c: float

    def __call__(self, D: ArrayLike) -> np.ndarray:
        return _power_law(D, self.D_c, self.alpha_D)


@dataclass(frozen=True)
class KaplanLawND:
    """L(N, D) = [ (N_c / N)^(alpha_N / alpha_D) + D_c / D ]^alpha_D   (Kaplan et al. 2020, eq. 1.5).

    Published (Table 2): alpha_N = 0.076, alpha_D = 0.103, N_c = 6.4e13, D_c = 1.8e13.

    With `ceiling` L0 (ln V, the loss of a uniform guess over V tokens), the bounded form: the power law
    K(N, D) above is the odds L / (L0 - L), so L = L0 / (1 + 1/K) never exceeds L0 (`bound_by_ceiling`).
    The argmin of L under C = 6ND is the argmin of K: bounding moves the loss, not the allocation.
    """

    alpha_N: float
    alpha_D: float
    N_c: float
    D_c: float
    ceiling: float | None = None

    def __call__(self, N: ArrayLike, D: ArrayLike) -> np.ndarray:
        return kaplan_nd_loss(N, D, self.alpha_N, self.alpha_D, self.N_c, self.D_c, self.ceiling)


@dataclass(frozen=True)
class KaplanLawC:
    """L(C) = (C_c / C)^alpha_C   (Kaplan et al. 2020, eq. 1.3; C_min along the compute-efficient frontier).

    Published: alpha_C = 0.050, C_c = 3.1e8 PF-days (C in PF-days); here C is in FLOPs, so C_c is too.
    """

    alpha_C: float
    C_c: float

    def __call__(self, C: ArrayLike) -> np.ndarray:
        return _power_law(C, self.C_c, self.alpha_C)


@dataclass(frozen=True)
class PowerLaw:
    """y = k * x^p, the form of the approach-1 and approach-2 frontiers N_opt(C) = k_N C^a, D_opt(C) = k_D C^b."""

    k: float
    p: float

    def __call__(self, x: ArrayLike) -> np.ndarray:
        return self.k * _arr(x) ** self.p


# Published constants, for reference curves in plots and tests.
CHINCHILLA_PAPER = ChinchillaLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
"""Hoffmann et al. 2022 eq. (10), as printed (rounded)."""

CHINCHILLA_PAPER_UNROUNDED = ChinchillaLaw(
    E=float(np.exp(0.5267228)), A=float(np.exp(6.0073404)), B=float(np.exp(6.0179186)),
    alpha=0.33917084, beta=0.2849083,
)
"""Hoffmann et al. 2022 Approach 3 from the paper's TeX source, as used by Besiroglu et al. 2024."""

EPOCH_2024 = ChinchillaLaw(E=1.8172, A=477.8, B=2143.9, alpha=0.3473, beta=0.3672)
"""Besiroglu et al. 2024 (Epoch AI) sum-Huber optimum on the 240 digitised Chinchilla points."""

KAPLAN_2020_ND = KaplanLawND(alpha_N=0.076, alpha_D=0.103, N_c=6.4e13, D_c=1.8e13)
"""Kaplan et al. 2020 Table 2 (N non-embedding)."""

KAPLAN_2020_N_OPT = PowerLaw(k=1.3e9 * PF_DAY**-0.73, p=0.73)
"""Kaplan et al. 2020 Table 6: N_opt = 1.3e9 C^0.73 with C in PF-days, rewritten for C in FLOPs."""

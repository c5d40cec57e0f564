"""A synthetic LR sweep: losses from a known Chinchilla law times a parabolic penalty in ln LR around
a known optimum eta*(N, D) = K N^B D^C (Li et al. 2025 find the optimum drifting with N and D)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthetic_sweep import TRUE_LAW

K, B, C = 0.509, -0.25, -0.10
"""The true law: eta* = K N^B D^C (eta* = 3e-3 at N = 1e6, D = 2e7)."""

PENALTY = 0.02
"""Loss x (1 + PENALTY (ln eta - ln eta*)^2): +0.96% at a factor 2 from the optimum, +3.8% at 4."""

SIZES = tuple(np.logspace(6, 8, 5))
RATIOS = (5.0, 20.0, 80.0)
MULTIPLIERS = tuple(2.0 ** np.arange(-3, 4))


def true_lr(N, D):
    return K * np.asarray(N, dtype=float) ** B * np.asarray(D, dtype=float) ** C


def rule_lr(N):
    """The grid's centre: a rule that knows nothing of D and a wrong exponent in N."""
    return 3e-3 * (np.asarray(N, dtype=float) / 1e6) ** -0.1


KB, BC = 0.2920, 0.3271
"""The true batch law when the batch varies: B* = KB C^BC tokens per step (DeepSeek LLM 2024, §3.1)."""

BATCH_PENALTY = 0.01


def true_batch(N, D):
    return KB * (6.0 * np.asarray(N, dtype=float) * np.asarray(D, dtype=float)) ** BC


def hparam_rows(seed: int = 0, noise: float = 0.005, edge_cell: bool = True,
                batch_multipliers: tuple[float, ...] = ()) -> pd.DataFrame:
    """One row per (N, D, lr): 5 sizes x 3 tokens-per-parameter x 7 LR multipliers of the rule; with
    `edge_cell` one more cell (N = 3e6, D = 3e8) whose grid sits 30x above its optimum, so its best LR
    is the smallest tried. With `batch_multipliers` every LR is also tried at those multiples of a batch rule
    (B* x 2^0.3, off the optimum), with a parabolic penalty in ln B around `true_batch`."""
    rng = np.random.default_rng(seed)
    cells = [(N, r * N, 1.0) for N in SIZES for r in RATIOS]
    if edge_cell:
        cells.append((3e6, 3e8, 30.0 * float(true_lr(3e6, 3e8) / rule_lr(3e6))))
    rows = []
    for N, D, shift in cells:
        for m in MULTIPLIERS:
            for bm in batch_multipliers or (None,):
                lr = float(rule_lr(N) * m * shift)
                batch = 65536.0 if bm is None else float(true_batch(N, D) * 2**0.3 * bm)
                pen = 1 + PENALTY * np.log(lr / true_lr(N, D)) ** 2
                if bm is not None:
                    pen += BATCH_PENALTY * np.log(batch / true_batch(N, D)) ** 2
                loss = float(TRUE_LAW(N, D) * pen * np.exp(rng.normal(0, noise)))
                rows.append({"params": N, "tokens": D, "flops_6nd": 6 * N * D, "lr": lr, "batch_tokens": batch,
                             "loss": loss, "status": "completed"})
    return pd.DataFrame(rows)

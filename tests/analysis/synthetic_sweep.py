"""A synthetic sweep folder with the runs-table columns of `contracts.runs_table`, drawn from a known Chinchilla law."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.laws import ChinchillaLaw

TRUE_LAW = ChinchillaLaw(E=1.9, A=300.0, B=1500.0, alpha=0.33, beta=0.35)
BUDGETS = (1e16, 3e16, 1e17, 3e17, 1e18)
SMALL_GRID = {"a": (4.0, 8.0), "b": (5.0, 10.0), "e": (0.0, 0.5), "alpha": (0.3, 0.6), "beta": (0.3, 0.6)}
"""A 32-start init grid that finds TRUE_LAW's optimum; keeps the tests fast."""


def synthetic_points(noise: float = 0.004, seed: int = 0, law: ChinchillaLaw = TRUE_LAW,
                     budgets=BUDGETS, sizes_per_budget: int = 6) -> pd.DataFrame:
    """IsoFLOP design: per budget, sizes spanning 0.16x-6x the law's optimum; loss with lognormal noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for C in budgets:
        n_opt, _ = law.compute_optimal(C)
        for f in np.logspace(-0.8, 0.8, sizes_per_budget):
            N = float(n_opt * f)
            D = C / (6 * N)
            loss = float(law(N, D) * np.exp(rng.normal(0, noise)))
            rows.append({"run_id": f"iso-{C:.0e}-n{N:.3g}", "sweep": "synthetic", "kind": "final", "params": N,
                         "params_embedding": 0.1 * N, "params_nonembedding": 0.9 * N, "tokens": D, "flops_6nd": C,
                         "flops_detailed": 1.05 * C, "loss": loss, "status": "completed"})
    return pd.DataFrame(rows)


def isoflop_table(law, budgets, *, sizes: int = 6, span: float = 0.7, tokens_per_param: float = 20,
                  noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """An IsoFLOP design from any law L(N, D): per budget C, `sizes` sizes spread 10^-span..10^span around
    the N of `tokens_per_param` tokens per parameter, D = C / 6N, loss x lognormal noise, and the budget
    column a sweep writes."""
    rng = np.random.default_rng(seed)
    rows = []
    for C in budgets:
        for f in np.logspace(-span, span, sizes):
            N = float(np.sqrt(C / (6 * tokens_per_param)) * f)
            D = C / (6 * N)
            rows.append({"run_id": f"iso-{C:.0e}-n{N:.4g}", "kind": "final", "status": "completed", "params": N,
                         "tokens": D, "flops_6nd": C, "budget": C,
                         "loss": float(law(N, D) * np.exp(rng.normal(0, noise)))})
    return pd.DataFrame(rows)


def write_sweep(folder: Path, *, noise: float = 0.004, seed: int = 0, with_diverged: bool = True) -> Path:
    """points.parquet, curves.parquet, trials.parquet in `folder` (one extra diverged run when asked)."""
    folder.mkdir(parents=True, exist_ok=True)
    points = synthetic_points(noise, seed)
    curves, trials = [], []
    for r in points.itertuples():
        steps = np.arange(1, 13)
        tokens = r.tokens * steps / steps[-1]
        # cosine-like: above the law mid-run, on it at the end
        val = TRUE_LAW(r.params, tokens) * (1 + 0.03 * (1 - tokens / r.tokens))
        val[-1] = r.loss
        for s, t, v in zip(steps, tokens, val):
            curves.append({"run_id": r.run_id, "step": int(s), "tokens": float(t), "flops": 6 * r.params * float(t),
                           "train_loss": float(v) + 0.01, "val_loss": float(v), "lr": 1e-3, "elapsed_s": float(s)})
        trials.append({"run_id": r.run_id, "sweep": "synthetic", "status": "completed", "params": r.params,
                       "params_embedding": r.params_embedding, "params_nonembedding": r.params_nonembedding,
                       "tokens": r.tokens, "flops_6nd": r.flops_6nd, "final_loss": r.loss})
    if with_diverged:
        bad = points.iloc[0].copy()
        bad["run_id"], bad["status"], bad["loss"] = "diverged-run", "diverged", float("nan")
        points = pd.concat([points, bad.to_frame().T], ignore_index=True)
        trials.append({"run_id": "diverged-run", "sweep": "synthetic", "status": "diverged", "params": bad["params"],
                       "params_embedding": 0.0, "params_nonembedding": bad["params"], "tokens": bad["tokens"],
                       "flops_6nd": bad["flops_6nd"], "final_loss": float("nan")})
    for col in ("params", "params_embedding", "params_nonembedding", "tokens", "flops_6nd", "flops_detailed", "loss"):
        points[col] = points[col].astype(float)
    points.to_parquet(folder / "points.parquet")
    pd.DataFrame(curves).to_parquet(folder / "curves.parquet")
    pd.DataFrame(trials).to_parquet(folder / "trials.parquet")
    return folder

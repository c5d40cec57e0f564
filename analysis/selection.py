"""Which law forecasts: choose between Chinchilla's and Kaplan's L(N, D) by a backtest inside the sweep.

`select_law(sweep_dir, budgets, ceiling=ln V)` fits each law on every budget but the largest and keeps
the one that predicts the largest budget's runs best; `extrapolation_error(selection, factor)` turns that
in-sweep error into the model error of a forecast `factor` times beyond the sweep, which bootstrap
intervals cannot see. `scaling demo` uses both for its held-out forecast.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from analysis.backtest import backtest

LAW_NAMES = {"3": "chinchilla", "kaplan": "kaplan", "kaplan_bounded": "kaplan_bounded"}
"""The laws `select_law` chooses between, by the key `law_fit_settings` turns into a backtest approach."""


def law_fit_settings(law: str, ceiling: float | None = None) -> tuple[str, dict[str, Any]]:
    """(backtest approach, fit_kwargs) of a law `select_law` may choose: kaplan_bounded is Kaplan's
    L(N, D) bounded by `ceiling` (ln V, `analysis.kaplan.ceiling_for_vocab`)."""
    if law == "kaplan_bounded":
        if ceiling is None:
            raise ValueError("the bounded Kaplan law needs its ceiling (ln V)")
        return "kaplan", {"ceiling": ceiling}
    return law, {}


def select_law(sweep_dir: Path | str, budgets: list[float], seed: int = 0,
               ceiling: float | None = None) -> dict[str, Any]:
    """Pick the law that forecasts: fit Chinchilla's L = E + A/N^alpha + B/D^beta (approach 3),
    Kaplan's K = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D and, given a `ceiling` L0 = ln V, Kaplan's
    law bounded by it, L = L0 / (1 + 1/K) (`analysis.laws.bound_by_ceiling`), on every budget but the
    largest; predict the largest budget's runs; keep the law with the smallest mean |relative error|
    there. In that order, a later law replaces the one kept only if it is better by more than 0.1 points.

    A law that cannot forecast one budget step inside the sweep should not be trusted for a 10x step
    beyond it. On tiny models the forms part ways: the frontier of small budgets bends (the first few
    hundred optimiser steps, embedding-dominated N), which approach 3 reads as an irreducible loss E that
    larger runs then fall below; Kaplan's form has no E and is straight in log-log; the bounded form
    steepens as the runs leave the plateau of a uniform guess, ln V.
    """
    if len(budgets) < 3:
        return {"law": "3", "reason": "fewer than 3 budgets: no held-out budget to select on", "errors": {}}
    cut = math.sqrt(sorted(budgets)[-1] * sorted(budgets)[-2])
    errors = {}
    law = None
    for key in ("3", "kaplan") + (("kaplan_bounded",) if ceiling is not None else ()):
        approach, kw = law_fit_settings(key, ceiling)
        bt = backtest(sweep_dir, holdout=f"C > {cut:.6g}", approach=approach, interval="none", random_state=seed,
                      fit_kwargs=kw)
        log_err = np.log(bt.rows["predicted"] / bt.rows["loss"])
        errors[LAW_NAMES[key]] = {"mean_abs_error_pct": float(100 * bt.rows["abs_rel_error"].mean()),
                                  "rms_log_error": float(np.sqrt(np.mean(log_err**2))),
                                  "frontier_error_pct": float(100 * bt.rows.loc[bt.rows["loss"].idxmin(),
                                                                                 "rel_error"])}
        if law is None or errors[LAW_NAMES[key]]["mean_abs_error_pct"] < \
                errors[LAW_NAMES[law]]["mean_abs_error_pct"] - 0.1:
            law = key
    top = sorted(budgets)[-2:]
    return {"law": law, "holdout": f"C > {cut:.3g}", "errors": errors, "step_ln": math.log(top[1] / top[0]),
            "ceiling": ceiling, "reason": "smallest error on the largest budget, fitted on the others"}


def extrapolation_error(selection: dict[str, Any], factor: float) -> float:
    """The forecast's model error that the bootstrap cannot see, on the log-loss scale: the chosen law's
    RMS log error on the sweep's largest budget when fitted on the others (`select_law`), grown linearly
    with the extrapolation distance, ln(factor) / ln(C_max / C_prev). Bootstrap intervals measure how
    well the data pin the law, not whether the law's form holds one step further out (Besiroglu et al.
    2024 on Chinchilla's too-narrow intervals); this term does, from the only out-of-sample evidence a
    sweep has. The demo adds it in quadrature to each side of the bootstrap prediction interval."""
    errors = selection.get("errors") or {}
    chosen = errors.get(LAW_NAMES[selection["law"]])
    if not chosen or factor <= 1:
        return 0.0
    return float(chosen["rms_log_error"]) * math.log(factor) / float(selection["step_ln"])


def describe_selection(sel: dict[str, Any]) -> str:
    """One line for a person: the law chosen, and each law's error forecasting the largest budget."""
    if not sel["errors"]:
        return f"{LAW_NAMES[sel['law']]} ({sel['reason']})"
    errs = ", ".join(f"{k} {v['mean_abs_error_pct']:.1f}%" for k, v in sel["errors"].items())
    return f"{LAW_NAMES[sel['law']]} (error forecasting the largest budget from the others: {errs})"

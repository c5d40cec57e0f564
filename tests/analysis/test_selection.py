"""Law selection: the law that forecasts the sweep's largest budget wins; the extrapolation term grows
the in-sweep backtest error with the distance in log C."""

from __future__ import annotations

import math
import warnings

import pytest

from analysis.laws import KAPLAN_2020_ND, ChinchillaLaw
from analysis.selection import extrapolation_error, select_law
from synthetic_sweep import isoflop_table

BUDGETS = [1e15, 3e15, 1e16, 3e16, 1e17]


def _sweep(folder, law, noise: float = 0.002, seed: int = 0):
    """A sweep folder's points.parquet: 6 sizes per budget around 20 tokens/param, losses from `law`."""
    folder.mkdir(parents=True)
    isoflop_table(law, BUDGETS, noise=noise, seed=seed).to_parquet(folder / "points.parquet")
    return folder


@pytest.mark.parametrize("truth, expected, other", [
    (KAPLAN_2020_ND, "kaplan", "chinchilla"),
    (ChinchillaLaw(E=1.9, A=300.0, B=1500.0, alpha=0.33, beta=0.35), "3", "kaplan"),
])
def test_select_law_picks_the_form_the_data_came_from(tmp_path, truth, expected, other):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = select_law(_sweep(tmp_path / "sweep", truth), BUDGETS)
    assert sel["law"] == expected
    chosen = {"3": "chinchilla", "kaplan": "kaplan"}[expected]
    # the right form predicts the held-out budget to the noise (0.2%); the wrong one misses by percents
    assert sel["errors"][chosen]["mean_abs_error_pct"] < 0.5
    assert sel["errors"][other]["mean_abs_error_pct"] > 1.0
    assert sel["step_ln"] == pytest.approx(math.log(1e17 / 3e16))
    assert extrapolation_error(sel, 10) == pytest.approx(
        sel["errors"][chosen]["rms_log_error"] * math.log(10) / math.log(1e17 / 3e16))


def test_select_law_without_a_budget_to_hold_out_keeps_approach_3(tmp_path):
    sel = select_law(tmp_path / "never-read", BUDGETS[:2])
    assert sel["law"] == "3" and sel["errors"] == {}


def _selection(law: str, rms: float, step_ln: float) -> dict:
    return {"law": law, "step_ln": step_ln,
            "errors": {"chinchilla": {"rms_log_error": 0.5}, "kaplan": {"rms_log_error": rms}}}


def test_it_scales_the_chosen_laws_error_with_the_extrapolation_distance():
    sel = _selection("kaplan", rms=0.02, step_ln=math.log(10 / 3))
    assert extrapolation_error(sel, 10) == pytest.approx(0.02 * math.log(10) / math.log(10 / 3))
    assert extrapolation_error(sel, 100) == pytest.approx(2 * extrapolation_error(sel, 10))
    sel["law"] = "3"  # approach 3 chosen: its own error counts
    assert extrapolation_error(sel, 10) == pytest.approx(0.5 * math.log(10) / math.log(10 / 3))


def test_no_extrapolation_or_no_backtest_adds_nothing():
    assert extrapolation_error(_selection("kaplan", 0.02, 1.2), 1.0) == 0.0
    assert extrapolation_error({"law": "3", "errors": {}, "reason": "fewer than 3 budgets"}, 10) == 0.0

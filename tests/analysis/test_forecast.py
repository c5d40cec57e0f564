"""The forecaster (`analysis.forecast`): candidates weighed by forecasting held-out cuts along the
question's axis, its JSON, its calibrated interval, the law's domain and degenerate fits."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.fit import load_fit
from analysis.forecast import Forecaster, describe_forecast
from analysis.forecast.candidates import applicable
from analysis.forecast.cuts import choose_axis
from analysis.io import FitWarning, points_from_arrays, points_from_frame
from analysis.laws import ChinchillaLaw, KaplanLawND
from orchestrator.cli import main
from synthetic_sweep import isoflop_table

SMALL_GRID = {"a": [0, 5, 10], "b": [0, 5, 10], "e": [0, 0.5], "alpha": [0.2, 0.5], "beta": [0.2, 0.5]}
FIT = {"init_grid": SMALL_GRID}
CHIN = ChinchillaLaw(E=1.8, A=400.0, B=1500.0, alpha=0.34, beta=0.36)
KAPLAN = KaplanLawND(alpha_N=0.076, alpha_D=0.103, N_c=6.4e13, D_c=1.8e13)
L0 = math.log(512)
BOUNDED = KaplanLawND(alpha_N=0.3, alpha_D=0.35, N_c=3e5, D_c=2e6, ceiling=L0)
BUDGETS = [1e18, 3e18, 1e19, 3e19, 1e20]


def grid(law, seed: int, noise: float = 0.003, sizes=np.geomspace(2e7, 2e9, 6)) -> pd.DataFrame:
    """A size x tokens-per-parameter grid (no budget structure)."""
    rng = np.random.default_rng(seed)
    N = np.repeat(sizes, 5)
    D = N * np.tile(np.geomspace(5, 80, 5), len(sizes))
    return pd.DataFrame({"params": N, "tokens": D, "loss": law(N, D) * np.exp(rng.normal(0, noise, N.size))})


def pts_of(df: pd.DataFrame):
    return points_from_frame(df, {"n": "params", "d": "tokens", "loss": "loss"})


def test_the_true_form_takes_the_weight_and_the_json_round_trips(tmp_path):
    fc = Forecaster(bootstrap=30, fit_kwargs=FIT).fit(pts_of(grid(CHIN, 0)))
    table = {r["candidate"]: r for r in fc.selection_["table"]}
    assert fc.axis_ == "size" and fc.chosen_ == "chinchilla" and set(table) == {"chinchilla", "kaplan_nd"}
    assert table["chinchilla"]["rms_log_error"] < table["kaplan_nd"]["rms_log_error"]
    assert fc.weights_["chinchilla"] > 0.5 and sum(fc.weights_.values()) == pytest.approx(1.0)
    assert fc.n_cuts_ == 3 and len(fc.selection_["cuts"]) == 3
    fc.to_json(tmp_path / "auto.json")
    back = load_fit(tmp_path / "auto.json")
    assert isinstance(back, Forecaster) and back.weights_ == pytest.approx(fc.weights_)
    assert back.predict(1e10, 2e11) == pytest.approx(fc.predict(1e10, 2e11))
    mid, lo, hi = fc.predict(np.array([1e9, 2e10]), np.array([2e10, 4e11]), interval=0.95)
    assert np.all(lo < mid) and np.all(mid < hi)
    assert back.predict(2e10, 4e11, interval=0.95)[2] == pytest.approx(hi[1])
    # the interval widens with the distance beyond the data
    assert fc.half_width(1e11, 2e12)[0] > fc.half_width(1e9, 2e10)[0]
    assert "chinchilla" in describe_forecast(fc)


@pytest.mark.parametrize("law, axis, expected", [(KAPLAN, "budget", "kaplan_nd"), (CHIN, "budget", "chinchilla")])
def test_on_an_isoflop_sweep_the_cuts_are_budgets_and_the_true_form_wins(law, axis, expected):
    fc = Forecaster(bootstrap=0, fit_kwargs=FIT).fit(pts_of(isoflop_table(law, BUDGETS, noise=0.005, seed=1)))
    assert fc.axis_ == axis and fc.chosen_ == expected and fc.weights_[expected] > 0.5
    assert fc.selection_["cuts"] == pytest.approx([3e18, 1e19, 3e19], rel=0.01)


def test_the_bounded_form_needs_the_vocabulary_which_a_sweep_folder_records(tmp_path):
    budgets = [1e11, 3e11, 1e12, 3e12, 1e13]
    df = isoflop_table(BOUNDED, budgets, noise=0.003, seed=0)
    folder = tmp_path / "sweep"
    folder.mkdir()
    df.to_parquet(folder / "points.parquet")
    from analysis.io import load_points

    assert load_points(folder).vocab_size is None
    _, skipped = applicable(load_points(folder), None)
    assert "vocabulary" in skipped["kaplan_bounded"]
    pd.DataFrame({"run_id": df["run_id"], "vocab_size": 512}).to_parquet(folder / "trials.parquet")
    pts = load_points(folder)
    assert pts.vocab_size == 512
    fc = Forecaster(bootstrap=0).fit(pts)
    assert fc.ceiling_ == pytest.approx(L0) and fc.chosen_ == "kaplan_bounded"
    with pytest.raises(InputError, match="disagrees"):
        Forecaster(bootstrap=0, vocab_size=1000).fit(pts)


def test_rows_no_law_describes_are_set_aside_named_and_do_not_move_the_forecast():
    """5% of rows diverged (loss near ln V) or overfitting (worse than a smaller run): the forecast stays
    within 1% of the clean table's, and the FitWarning names the rule and the count."""
    df = isoflop_table(CHIN, BUDGETS, sizes=8, noise=0.004, seed=3)
    clean = Forecaster(bootstrap=0, fit_kwargs=FIT, vocab_size=512).fit(pts_of(df))
    bad = df.copy()
    rows = [5, 20]                                 # 2 of 40 rows: a diverged run and one far worse than a smaller
    bad.loc[rows[0], "loss"] = 6.3                 # above ln 512 = 6.24
    bad.loc[rows[1], "loss"] *= 1.5
    with pytest.warns(FitWarning, match=r"2 of 40 rows set aside.*at_ceiling.*beaten_by_smaller"):
        dirty = Forecaster(bootstrap=0, fit_kwargs=FIT, vocab_size=512).fit(pts_of(bad))
    assert {r["row"] for r in dirty.domain_["set_aside"]} == set(rows)
    assert dirty.predict(3e9, 6e10)[0] == pytest.approx(clean.predict(3e9, 6e10)[0], rel=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = Forecaster(bootstrap=0, fit_kwargs=FIT, keep_all=True).fit(pts_of(bad))
    assert kept.domain_["set_aside"] == [] and kept.n_points_ == 40


def test_a_grid_too_small_to_pin_a_law_is_named_and_plan_refuses(tmp_path, capsys):
    """Six runs, two sizes: approach 3 cannot pin five parameters; its fit is named degenerate or the
    forecaster refuses in one line, never a nan optimum."""
    N = np.array([1e7, 1e7, 1e7, 3e7, 3e7, 3e7])
    D = np.array([1e8, 3e8, 1e9, 1e8, 3e8, 1e9])
    L = 3.0 + 0.01 * np.random.default_rng(0).normal(size=6)   # flat: nothing to pin
    pd.DataFrame({"params": N, "tokens": D, "loss": L}).to_csv(tmp_path / "six.csv", index=False)
    code = main(["plan", str(tmp_path / "six.csv"), "--budget", "1e18", "--no-shape"])
    cap = capsys.readouterr()
    assert code == 2 and "nan" not in cap.out
    assert "every candidate law's fit is degenerate" in cap.err and "cannot pin a law" in cap.err
    assert len(cap.err.strip().splitlines()) == 1
    # approach 3 alone says it has no optimum instead of printing nan
    assert main(["fit", str(tmp_path / "six.csv")]) == 0
    cap = capsys.readouterr()
    assert "compute-optimal: none: the fit is degenerate" in cap.out and "N = nan" not in cap.out


def test_choose_axis_follows_the_question():
    iso = pts_of(isoflop_table(CHIN, BUDGETS, seed=0))
    lattice = pts_of(grid(CHIN, 0))
    assert choose_axis(iso, "budget")[0] == "budget" and choose_axis(iso, "size")[0] == "size"
    assert choose_axis(lattice, "budget")[0] == "size"        # no budget structure: sizes stand in
    assert "no budget structure" in choose_axis(lattice, "budget")[1]
    assert choose_axis(lattice, "tokens_per_param")[0] == "tokens_per_param"
    with pytest.raises(ValueError, match="axis"):
        choose_axis(iso, "epochs")


def test_backtest_cuts_along_the_axis_it_extrapolates():
    from analysis.backtest import backtest

    df = isoflop_table(KAPLAN, BUDGETS, noise=0.003, seed=2)
    bt = backtest(df, "largest C", bootstrap=20, fit_kwargs=FIT)
    assert bt.fit["axis"] == "budget" and bt.fit["chosen"] == "kaplan_nd"
    assert bt.mean_abs_rel_error < 0.01
    bt = backtest(grid(CHIN, 1), "largest N", bootstrap=20, fit_kwargs=FIT)
    assert bt.fit["axis"] == "size" and bt.coverage >= 0.8


def test_one_cut_never_narrows_the_interval_below_its_prior():
    """Three budgets leave one cut: the scale s is at least 1 however lucky that cut was."""
    df = isoflop_table(CHIN, BUDGETS[:3], noise=0.001, seed=0)
    fc = Forecaster(bootstrap=20, fit_kwargs=FIT).fit(pts_of(df))
    assert fc.n_cuts_ == 1 and fc.interval_scale_ >= 1.0 and "fewer than 2 cuts" in fc.selection_["reason"]


def test_plan_of_a_runs_table_is_the_forecasters_plan(tmp_path, capsys, check_output):
    from analysis.fitjson import write_fit
    from analysis.plan import Planner

    df = isoflop_table(KAPLAN, BUDGETS, noise=0.004, seed=4)
    df.to_csv(tmp_path / "runs.csv", index=False)
    assert main(["plan", str(tmp_path / "runs.csv"), "--budget", "1e21", "--bootstrap", "10", "--no-shape",
                 "--json"]) == 0
    d = check_output(json.loads(capsys.readouterr().out), "plan")
    assert d["auto"]["axis"] == "budget" and d["intervals"]["loss"][0] < d["loss"] < d["intervals"]["loss"][1]
    fc = Forecaster(axis="budget", bootstrap=10).fit(pts_of(df.rename(columns={})))
    plan = Planner.from_fit(fc).budget(1e21)
    assert plan.loss == pytest.approx(d["loss"], rel=1e-9) and plan.intervals["loss"] == pytest.approx(d["intervals"]["loss"])
    write_fit(fc, tmp_path / "fc.json")
    assert main(["plan", str(tmp_path / "fc.json"), "--budget", "1e21", "--no-shape", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["loss"] == pytest.approx(plan.loss, rel=1e-9)
    assert main(["plan", str(tmp_path / "runs.csv"), "--approach", "3", "--budget", "1e21", "--bootstrap", "10",
                 "--no-shape", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["auto"] is None


def test_a_combination_plans_with_the_combined_law():
    """Two members: the plan's loss is the combined law at the plan's (N, D), its interval the forecaster's."""
    from analysis.plan import Planner

    fc = Forecaster(bootstrap=20, fit_kwargs=FIT).fit(pts_of(isoflop_table(CHIN, BUDGETS, noise=0.01, seed=5)))
    fc.weights_ = {"chinchilla": 0.6, "kaplan_nd": 0.4}     # force two members to check the plumbing
    fc.members_ = {"chinchilla": fc.candidates_["chinchilla"], "kaplan_nd": fc.candidates_["kaplan_nd"]}
    plan = Planner.from_fit(fc).budget(1e21)
    assert plan.loss == pytest.approx(float(fc.predict(plan.N, plan.D)[0]), rel=1e-9)
    assert "combined law" in plan.method
    _, lo, hi = fc.predict(plan.N, plan.D, interval=0.95)
    assert plan.intervals["loss"] == pytest.approx([lo[0], hi[0]])


def test_fit_approach_auto_prints_the_cut_table(tmp_path, capsys, check_output):
    grid(CHIN, 2).to_csv(tmp_path / "runs.csv", index=False)
    assert main(["fit", str(tmp_path / "runs.csv"), "--approach", "auto", "--json"]) == 0
    d = check_output(json.loads(capsys.readouterr().out), "fit")
    assert d["approach"] == "auto" and d["chosen"] in ("chinchilla", "kaplan_nd")
    assert {r["candidate"] for r in d["selection"]["table"]} == {"chinchilla", "kaplan_nd"}
    assert sum(m["weight"] for m in d["members"]) == pytest.approx(1.0)
    assert main(["fit", str(tmp_path / "runs.csv"), "--approach", "auto"]) == 0
    out = capsys.readouterr().out
    assert "forecast: " in out and "RMS log error" in out and "weight" in out


def test_an_auto_fit_json_of_the_first_forecaster_still_reads(tmp_path):
    """A file with only `chosen` and `fit` (the first auto) reads as one member of weight 1."""
    fc = Forecaster(bootstrap=0, fit_kwargs=FIT).fit(points_from_arrays(*grid(CHIN, 0).to_numpy().T))
    d = json.loads(fc.to_json())
    for key in ("members", "weights", "axis", "n_cuts"):
        d.pop(key)
    back = load_fit(d)
    assert back.weights_ == {fc.chosen_: 1.0}
    assert back.predict(1e9, 2e10)[0] == pytest.approx(float(fc.members_[fc.chosen_].predict(1e9, 2e10)))

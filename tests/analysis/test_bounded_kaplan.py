"""Kaplan's L(N, D) bounded by ln V (`KaplanFit(ceiling=...)`, `analysis.laws.bound_by_ceiling`): the law,
its fit, its JSON, its plans, and the forecaster weighing it only on data that bend the way it does."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.fit import KaplanFit
from analysis.fitjson import read_fit, write_fit
from analysis.kaplan import ceiling_for_vocab
from analysis.laws import KAPLAN_2020_ND, KaplanLawND
from analysis.plan import Planner
from analysis.forecast import Forecaster
from analysis.io import load_points
from synthetic_sweep import isoflop_table

L0 = math.log(512)
# a tiny-model law whose runs sit between 3 and 4.5 nats/token, as the demo's do
BOUNDED = KaplanLawND(alpha_N=0.35, alpha_D=0.3, N_c=3.5e4, D_c=1.1e6, ceiling=L0)
BUDGETS = [1e11, 3e11, 1e12, 3e12]


def _table(law, budgets=BUDGETS, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """An IsoFLOP design: 5 sizes per budget around 25 tokens/param, losses from `law` (x lognormal noise)."""
    return isoflop_table(law, budgets, sizes=5, span=0.4, tokens_per_param=25, noise=noise, seed=seed)


def test_the_bounded_law_stays_below_ln_v_and_becomes_kaplans_far_below_it():
    N = np.logspace(-3, 12, 16)
    D = 20 * N
    L = BOUNDED(N, D)
    K = KaplanLawND(BOUNDED.alpha_N, BOUNDED.alpha_D, BOUNDED.N_c, BOUNDED.D_c)(N, D)
    assert np.all(L < L0) and np.all(np.diff(L) < 0)
    assert L[0] == pytest.approx(L0, rel=0.02)                 # a tiny run sits on the plateau of a uniform guess
    assert K[-1] < 1e-2 and L[-1] == pytest.approx(L0 * K[-1], rel=1e-2)   # far below it, Kaplan's power law
    np.testing.assert_allclose(L / (L0 - L), K, rtol=1e-9)      # the odds against L0 are the power law
    # the log-log slope of the frontier steepens as the runs leave the plateau
    slope = np.diff(np.log(L)) / np.diff(np.log(N))
    assert np.all(np.diff(slope) < 0)


def test_bounding_moves_the_loss_not_the_compute_optimal_allocation():
    free = KaplanFit(form="nd").fit(_table(KAPLAN_2020_ND, budgets=[1e18, 1e19, 1e20]))
    bounded = KaplanLawND(free.alpha_N_, free.alpha_D_, free.N_c_, free.D_c_, ceiling=math.log(50257))
    p_free = Planner(free.law_).budget(1e21)
    p_bounded = Planner(bounded).budget(1e21)
    assert p_bounded.N == pytest.approx(p_free.N, rel=1e-3)
    assert p_bounded.loss == pytest.approx(float(bounded(p_bounded.N, p_bounded.D)), rel=1e-9)


def test_the_fit_recovers_a_bounded_law_and_forecasts_where_the_free_one_misses():
    train, test = _table(BOUNDED, BUDGETS[:3]), _table(BOUNDED, [3e13])
    fit = KaplanFit(form="nd", ceiling=L0).fit(train)
    for k in ("alpha_N", "alpha_D", "N_c", "D_c"):
        assert getattr(fit, k + "_") == pytest.approx(getattr(BOUNDED, k), rel=1e-4), k
    assert fit.ceiling_ == L0 and fit.law_.ceiling == L0
    free = KaplanFit(form="nd").fit(train)
    err_bounded = np.abs(fit.predict(test["params"], test["tokens"]) / test["loss"] - 1).max()
    err_free = np.abs(free.predict(test["params"], test["tokens"]) / test["loss"] - 1).max()
    assert err_bounded < 1e-4 and err_free > 0.02   # 30x past the data: the free law cannot bend


def test_json_round_trip_keeps_the_ceiling_and_plans_with_it(tmp_path):
    fit = KaplanFit(form="nd", ceiling=L0, bootstrap=40, random_state=0).fit(_table(BOUNDED, noise=0.003))
    path = write_fit(fit, tmp_path / "fit.json")
    d = json.loads(path.read_text())
    assert d["ceiling"] == pytest.approx(L0) and "ln V" in d["ceiling_meaning"]
    back = read_fit(path)
    assert back.ceiling_ == pytest.approx(L0)
    np.testing.assert_allclose(back.predict([3e5], [1e7]), fit.predict([3e5], [1e7]), rtol=1e-12)
    plan = Planner.from_fit(back).budget(1e13)
    lo, hi = plan.intervals["loss"]
    assert lo < plan.loss < hi < L0
    # a Kaplan file without the field (older, or unbounded) reads as unbounded
    del d["ceiling"], d["ceiling_meaning"]
    (tmp_path / "old.json").write_text(json.dumps(d))
    assert read_fit(tmp_path / "old.json").law_.ceiling is None


@pytest.mark.parametrize("bad", [-1.0, 0.0, "six", float("nan"), True])
def test_a_bad_ceiling_in_a_fit_json_is_refused_by_name(tmp_path, bad):
    fit = KaplanFit(form="nd", ceiling=L0).fit(_table(BOUNDED))
    d = json.loads(write_fit(fit, tmp_path / "fit.json").read_text())
    d["ceiling"] = bad
    (tmp_path / "bad.json").write_text(json.dumps(d, allow_nan=True))
    with pytest.raises((InputError, ValueError), match="ceiling"):
        read_fit(tmp_path / "bad.json")


def test_losses_at_or_above_the_ceiling_and_other_forms_are_refused():
    table = _table(BOUNDED)
    with pytest.raises(InputError, match="not below the ceiling"):
        KaplanFit(form="nd", ceiling=3.0).fit(table)   # losses up to ~4.4: a wrong V
    with pytest.raises(InputError, match="takes no ceiling"):
        KaplanFit(form="n", ceiling=L0).fit(table)
    for bad in (0.0, -2.0, float("inf"), float("nan")):
        with pytest.raises(InputError, match="ceiling"):
            KaplanFit(form="nd", ceiling=bad).fit(table)


def test_ceiling_for_vocab_is_ln_v_and_checks_v():
    assert ceiling_for_vocab(512) == pytest.approx(6.238324625)
    for bad in (1, 0, -5, 2.5, True, "512"):
        with pytest.raises(InputError, match="vocab size"):
            ceiling_for_vocab(bad)


@pytest.mark.parametrize("truth, expected", [(BOUNDED, "kaplan_bounded"), (KAPLAN_2020_ND, "kaplan_nd")])
def test_the_forecaster_weighs_the_bounded_form_only_where_the_data_bend_like_it(tmp_path, truth, expected):
    budgets = [1e11, 3e11, 1e12, 3e12, 1e13] if truth is BOUNDED else [1e15, 3e15, 1e16, 3e16, 1e17]
    folder = tmp_path / "sweep"
    folder.mkdir()
    table = _table(truth, budgets, noise=0.002)
    table.to_parquet(folder / "points.parquet")
    pd.DataFrame({"run_id": table["run_id"], "vocab_size": 512}).to_parquet(folder / "trials.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = Forecaster(bootstrap=0).fit(load_points(folder))
    rows = {r["candidate"]: r for r in fc.selection_["table"]}
    assert fc.ceiling_ == pytest.approx(L0) and fc.axis_ == "budget"
    assert {"chinchilla", "kaplan_nd", "kaplan_bounded"} <= set(rows)
    assert fc.chosen_ == expected and fc.weights_[expected] > 0.5
    assert rows[expected]["rms_log_error"] == min(r["rms_log_error"] for r in rows.values())


def test_cli_fit_plan_and_backtest_with_vocab_size(tmp_path, capsys):
    from orchestrator.cli import main

    csv = tmp_path / "runs.csv"
    _table(BOUNDED).to_csv(csv, index=False)
    fit_json = tmp_path / "fit.json"
    assert main(["fit", str(csv), "--approach", "kaplan", "--vocab-size", "512", "--bootstrap", "20",
                 "--out", str(fit_json)]) == 0
    assert "bounded by ln V = 6.2383 nats/token" in capsys.readouterr().out
    assert json.loads(fit_json.read_text())["ceiling"] == pytest.approx(L0)
    assert main(["plan", str(fit_json), "--budget", "3e13", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    truth_N = Planner(BOUNDED).budget(3e13).N
    assert plan["N"] == pytest.approx(truth_N, rel=0.02)
    assert plan["loss"] == pytest.approx(float(BOUNDED(plan["N"], plan["D"])), rel=1e-3) and plan["loss"] < L0
    assert main(["backtest", str(csv), "--holdout", "C > 1.5e12", "--approach", "kaplan", "--vocab-size", "512",
                 "--interval", "none", "--json"]) == 0
    bt = json.loads(capsys.readouterr().out)
    assert bt["fit"]["ceiling"] == pytest.approx(L0) and len(bt["rows"]) == 5
    assert main(["backtest", str(csv), "--holdout", "C > 1.5e12", "--approach", "kaplan", "--vocab-size", "512",
                 "--interval", "none"]) == 0
    assert "backtest: approach kaplan bounded by ln V = 6.2383" in capsys.readouterr().out
    bt_json, html = tmp_path / "bt.json", tmp_path / "report.html"
    assert main(["backtest", str(csv), "--holdout", "C > 1.5e12", "--approach", "kaplan", "--vocab-size", "512",
                 "--bootstrap", "20", "--out", str(bt_json)]) == 0
    assert main(["report", str(csv), "--backtest", str(bt_json), "--bootstrap", "0", "--out", str(html)]) == 0
    assert "Backtest (approach kaplan, bounded by ln V = 6.2383)" in html.read_text()
    assert max(abs(r["rel_error"]) for r in bt["rows"]) < 1e-4   # noise-free: the bounded law forecasts exactly

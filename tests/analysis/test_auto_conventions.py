"""The forecaster under each N convention the table supports: approach 3 under non-embedding N is a
candidate when a total-N table also holds `params_nonembedding`, weighed by the same cuts; the chosen
convention is a fact of the fit JSON; targets without the count skip the candidate, with the reason."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.forecast import Forecaster
from analysis.forecast.candidates import applicable
from analysis.backtest import backtest
from analysis.fit import load_fit
from analysis.io import load_points
from analysis.laws import ChinchillaLaw
from orchestrator.cli import main

SMALL_GRID = {"a": [0, 5, 10], "b": [0, 5, 10], "e": [0, 0.5], "alpha": [0.2, 0.5], "beta": [0.2, 0.5]}
CHIN = ChinchillaLaw(E=1.8, A=400.0, B=1500.0, alpha=0.34, beta=0.36)
FIT = {"init_grid": SMALL_GRID}


SIX = (128, 192, 256, 384, 512, 768)
EIGHT = SIX + (1024, 1536)


def table(seed: int, law_in: str, noise: float = 0.003, widths: tuple[int, ...] = SIX) -> pd.DataFrame:
    """GPT shapes (d_model `widths`, d_model/64 layers, 50k-token tied embedding: the embedding is most
    of N at the small end), five D each; the loss follows approach 3 in `law_in` N."""
    rng = np.random.default_rng(seed)
    d = np.array(widths)
    nonemb = 12 * (d // 64) * d**2
    N_ne, N = np.repeat(nonemb, 5), np.repeat(nonemb + 50_000 * d, 5)
    D = N * np.tile(np.geomspace(5, 80, 5), len(d))
    L = CHIN(N_ne if law_in == "nonembedding" else N, D) * np.exp(rng.normal(0, noise, N.size))
    return pd.DataFrame({"run": [f"r{i}" for i in range(N.size)], "params": N, "params_nonembedding": N_ne,
                         "tokens": D, "loss": L})


def test_a_law_in_non_embedding_n_is_found_and_recorded_as_the_fits_convention(tmp_path):
    df = table(0, "nonembedding")
    fit = Forecaster(bootstrap=20, fit_kwargs=FIT).fit(df)
    rows = {r["candidate"]: r for r in fit.selection_["table"]}
    assert set(rows) == {"chinchilla", "kaplan_nd", "chinchilla_nonembedding"}
    assert "chinchilla_nonembedding" not in {s["candidate"] for s in fit.selection_["skipped"]}
    assert fit.chosen_ == "chinchilla_nonembedding"
    assert all(a > b for a, b in zip(rows["chinchilla"]["rms_log_error_by_cut"],
                                     rows["chinchilla_nonembedding"]["rms_log_error_by_cut"]))
    d = json.loads(fit.to_json(tmp_path / "auto.json"))
    assert d["n_convention"] == "nonembedding" and d["columns"]["n"] == "params_nonembedding"
    assert d["fit"]["n_convention"] == "nonembedding"
    back = load_fit(tmp_path / "auto.json")
    assert back.n_convention_ == "nonembedding"
    n_ne, D = 12 * 16 * 1024**2, 2e10        # a larger model, N in the fit's convention
    assert back.predict(n_ne, D) == pytest.approx(CHIN(n_ne, D), rel=0.01)


def test_a_law_in_total_n_keeps_approach_3_under_total_n():
    fit = Forecaster(bootstrap=0, fit_kwargs=FIT).fit(table(1, "total"))
    assert "chinchilla_nonembedding" in {r["candidate"] for r in fit.selection_["table"]}
    assert fit.chosen_ == "chinchilla" and fit.n_convention_ == "total" and fit.columns_["n"] == "params"


def test_without_the_column_the_candidate_is_skipped_with_its_reason(tmp_path):
    df = table(2, "nonembedding").drop(columns="params_nonembedding")
    df.to_csv(tmp_path / "runs.csv", index=False)
    pts = load_points(tmp_path / "runs.csv")
    assert pts.other_n == {} and applicable(pts, None)[0] == ["chinchilla", "kaplan_nd"]
    fit = Forecaster(bootstrap=0, fit_kwargs=FIT).fit(pts)
    assert {"candidate": "chinchilla_nonembedding", "reason":
            "the table has no non-embedding parameter column ('params_nonembedding' "
            "with a value > 0 in every row)"} in fit.selection_["skipped"]


def test_points_carry_the_other_convention_through_subsets():
    pts = load_points(table(0, "total"))
    col, values = pts.other_n["nonembedding"]
    assert col == "params_nonembedding" and np.all(values < pts.N)
    part = pts.subset(pts.N > np.median(pts.N))
    ne = part.under("nonembedding")
    assert ne.n_convention == "nonembedding" and ne.columns["n"] == "params_nonembedding"
    assert np.array_equal(ne.N, values[pts.N > np.median(pts.N)]) and np.array_equal(ne.under("total").N, part.N)


def test_backtest_forecasts_with_non_embedding_n_and_skips_it_for_targets_without_the_count(tmp_path):
    df = table(3, "nonembedding")
    largest = df["params"] >= df["params"].max()
    r = backtest(df, "params >= 1e8", fit_kwargs=FIT, bootstrap=20)
    assert r.fit["chosen"] == "chinchilla_nonembedding" and r.fit["n_convention"] == "nonembedding"
    assert r.mean_abs_rel_error < 0.01
    assert "forecast with non-embedding N (column 'params_nonembedding')" in r.summary()
    targets = df[largest].drop(columns="params_nonembedding")
    targets.to_csv(tmp_path / "targets.csv", index=False)
    r2 = backtest(df[~largest], None, targets=tmp_path / "targets.csv", fit_kwargs=FIT, bootstrap=20)
    assert r2.fit["chosen"] != "chinchilla_nonembedding" and r2.fit["n_convention"] == "total"
    skipped = r2.fit["selection"]["skipped"]
    assert {"candidate": "chinchilla_nonembedding", "reason": "the targets have no 'params_nonembedding' "
            "column to forecast them with nonembedding N"} in skipped
    assert "not tried: chinchilla_nonembedding: the targets have no" in r2.summary()


def test_cli_fit_auto_records_the_chosen_convention(tmp_path, capsys, check_output):
    table(4, "nonembedding").to_csv(tmp_path / "runs.csv", index=False)
    assert main(["fit", str(tmp_path / "runs.csv"), "--approach", "auto", "--json"]) == 0
    d = check_output(json.loads(capsys.readouterr().out), "fit")
    assert d["chosen"] == "chinchilla_nonembedding"
    assert d["n_convention"] == "nonembedding" and d["columns"]["n"] == "params_nonembedding"


def test_the_non_embedding_choice_forecasts_held_out_sizes_better_than_approach_3_total():
    """Eight shapes, the two largest held out (the rule sees 3 cuts): the law is in non-embedding N."""
    df = table(0, "nonembedding", widths=EIGHT)
    auto = backtest(df, "params >= 3e8", fit_kwargs=FIT, bootstrap=0, interval="none")
    total = backtest(df, "params >= 3e8", approach=3, fit_kwargs=FIT, bootstrap=0, interval="none")
    assert auto.fit["chosen"] == "chinchilla_nonembedding"
    assert auto.mean_abs_rel_error < 0.01 < 0.03 < total.mean_abs_rel_error


def measure(seeds: int = 5) -> None:
    """The numbers of the closing note: `python tests/analysis/test_auto_conventions.py`."""
    for law_in in ("nonembedding", "total"):
        for approach in ("auto", "3"):
            runs = [backtest(table(s, law_in, widths=EIGHT), "params >= 3e8", approach=approach, fit_kwargs=FIT,
                             bootstrap=100, random_state=s) for s in range(seeds)]
            rows = pd.concat([r.rows for r in runs])
            half = ((rows["upper"] - rows["lower"]) / 2 / rows["predicted"]).mean()
            print(f"law in {law_in} N, approach {approach}: mean |error| {100 * rows['abs_rel_error'].mean():.2f}%, "
                  f"max {100 * rows['abs_rel_error'].max():.2f}%, {int(rows['in_interval'].sum())}/{len(rows)} in the "
                  f"95% interval, mean half-width {100 * half:.2f}%; chosen: "
                  f"{[r.fit.get('chosen', approach) for r in runs]}")


if __name__ == "__main__":
    measure()

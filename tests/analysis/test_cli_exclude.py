"""`scaling fit|backtest --exclude EXPR` (the `--holdout` language) and `backtest --drop-highest`: rows left out before fitting."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.laws import ChinchillaLaw
from orchestrator.cli import main

LAW = ChinchillaLaw(E=1.8, A=400.0, B=1500.0, alpha=0.34, beta=0.36)


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(2e7, 5e9, 8), 6)
    D = N * np.tile(np.geomspace(4, 100, 6), 8)
    loss = LAW(N, D) * np.exp(rng.normal(0, 0.005, N.shape))
    loss[N < 3e7] = 9.0  # the smallest model's runs are broken: --exclude them
    path = tmp_path_factory.mktemp("excl") / "runs.csv"
    pd.DataFrame({"params": N, "tokens": D, "loss": loss}).to_csv(path, index=False)
    return path


def fit_json(capsys, *argv):
    assert main(["fit", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_exclude_leaves_rows_out_of_the_fit(runs_csv, capsys):
    all_rows = fit_json(capsys, runs_csv)
    kept = fit_json(capsys, runs_csv, "--exclude", "N < 3e7")
    assert all_rows["n_points"] == 48 and kept["n_points"] == 42
    assert kept["data_range"]["N"][0] > 3e7
    assert kept["alpha"] == pytest.approx(LAW.alpha, rel=0.1) and kept["beta"] == pytest.approx(LAW.beta, rel=0.1)
    assert abs(all_rows["alpha"] / LAW.alpha - 1) > abs(kept["alpha"] / LAW.alpha - 1)
    both = fit_json(capsys, runs_csv, "--exclude", "N < 3e7 or D / N > 90", "--drop-highest", "1")
    assert both["n_points"] == 48 - 6 - 7 - 1


@pytest.mark.parametrize("argv, message", [
    (["--exclude", "N > 0"], "matches all 48 rows"),
    (["--exclude", "X > 1"], "X"),
    (["--exclude", "N < 3e7", "--approach", "1"], "--exclude applies to points"),
])
def test_exclude_errors_are_one_line(runs_csv, capsys, argv, message):
    assert main(["fit", str(runs_csv), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_backtest_exclude_and_drop_highest(runs_csv, capsys):
    def held(*argv):
        assert main(["backtest", str(runs_csv), "--holdout", "largest N", "--bootstrap", "20", "--json", *argv]) == 0
        return json.loads(capsys.readouterr().out)

    plain = held()
    kept = held("--exclude", "N < 3e7", "--drop-highest", "1")
    assert plain["n_train"] == 42 and kept["n_train"] == 42 - 6 - 1
    assert plain["n_holdout"] == kept["n_holdout"] == 6
    # the broken smallest runs pull the plain fit off; without them the held-out losses are predicted better
    assert kept["mean_abs_rel_error"] < plain["mean_abs_rel_error"]
    assert main(["backtest", str(runs_csv), "--holdout", "largest N", "--exclude", "loss > 0"]) == 2
    assert "matches every row" in capsys.readouterr().err

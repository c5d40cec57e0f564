"""--best-of: the lowest finite loss of each setting, diverged rows dropped, counted in a warning."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.io import FitWarning, load_points, load_points_frame
from analysis.laws import ChinchillaLaw
from orchestrator.cli import main

LAW = ChinchillaLaw(E=1.8, A=400.0, B=1500.0, alpha=0.34, beta=0.36)
LRS = (3e-4, 1e-3, 3e-3, 1e-2)


def lr_sweep(path) -> pd.DataFrame:
    """Every (N, D) at four peak LRs: 1e-3 is the tuned one (the law's loss), the others are worse by
    a factor, and 1e-2 diverges (NaN, inf) at the two largest sizes."""
    rows = []
    for N in np.geomspace(2e7, 2e9, 6):
        for D in N * np.geomspace(5, 80, 5):
            for lr in LRS:
                penalty = 1.0 + 0.15 * abs(np.log10(lr / 1e-3))
                loss = float(LAW(N, D)) * penalty
                if lr == 1e-2 and N > 5e8:
                    loss = np.nan if D < 20 * N else np.inf
                rows.append({"params": N, "tokens": D, "lr": lr, "loss": loss})
    df = pd.DataFrame(rows)
    df.to_csv(path, index=False)
    return df


def test_keeps_the_best_lr_of_each_run_and_counts_what_it_dropped(tmp_path):
    lr_sweep(tmp_path / "lr.csv")
    with pytest.warns(FitWarning, match=r"--best-of lr: kept the lowest-loss row of each of 30 settings, 30 of 120 "
                                        r"rows \(10 diverged with a non-finite loss, 80 beaten\)"):
        rows, pts = load_points_frame(tmp_path / "lr.csv", best_of="lr")
    assert len(pts) == 30 and set(rows["lr"]) == {1e-3}
    np.testing.assert_allclose(pts.loss, LAW(pts.N, pts.D))


def test_best_of_fit_recovers_the_law_every_row_does_not(tmp_path, capsys):
    lr_sweep(tmp_path / "lr.csv")
    assert main(["fit", str(tmp_path / "lr.csv"), "--best-of", "lr", "--json"]) == 0
    out = capsys.readouterr()
    fit = json.loads(out.out)
    assert "30 of 120 rows" in out.err and fit["n_points"] == 30
    assert fit["alpha"] == pytest.approx(LAW.alpha, abs=0.01) and fit["E"] == pytest.approx(LAW.E, abs=0.01)
    assert main(["fit", str(tmp_path / "lr.csv")]) == 2            # every row: the diverged ones are refused
    assert "error:" in capsys.readouterr().err


def test_several_columns_and_one_line_errors(tmp_path):
    df = lr_sweep(tmp_path / "lr.csv")
    df["wd"] = 0.1
    df.loc[df.index % 2 == 0, "wd"] = 0.0
    df.to_csv(tmp_path / "lrwd.csv", index=False)
    with pytest.warns(FitWarning, match="--best-of lr,wd: kept the lowest-loss row of each of 30 settings"):
        pts = load_points(tmp_path / "lrwd.csv", best_of=["lr", "wd"])
    assert len(pts) == 30
    with pytest.raises(InputError, match=r"--best-of lr,seed: no column 'seed' \(columns: params, tokens, lr, loss"):
        load_points(tmp_path / "lrwd.csv", best_of="lr,seed")
    with pytest.warns(FitWarning, match="no two rows agree in every other column"):
        load_points(tmp_path / "lrwd.csv", best_of="wd")


def test_backtest_takes_best_of(tmp_path, capsys):
    lr_sweep(tmp_path / "lr.csv")
    assert main(["backtest", str(tmp_path / "lr.csv"), "--best-of", "lr", "--holdout", "N > 1e9",
                 "--interval", "none", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["rows"]
    assert len(rows) == 5 and max(abs(r["rel_error"]) for r in rows) < 0.01

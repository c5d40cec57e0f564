"""Reading points and curves: files, sweep and run folders, column maps, one-line errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.curves import load_curves
from analysis.errors import InputError
from analysis.io import (
    FitWarning,
    conventions_in,
    Points,
    as_points,
    load_points,
    load_points_frame,
    points_from_arrays,
    points_from_frame,
)


def _points_frame(n: int = 6) -> pd.DataFrame:
    N = np.geomspace(1e7, 1e9, n)
    D = 20 * N
    return pd.DataFrame({
        "run_id": [f"r{i}" for i in range(n)], "sweep": "s", "kind": "final",
        "params": N, "params_embedding": 0.1 * N, "params_nonembedding": 0.9 * N,
        "tokens": D, "flops_6nd": 6 * N * D, "flops_detailed": 6.3 * N * D,
        "loss": np.linspace(4.0, 3.0, n), "status": "completed",
    })


def test_csv_with_a_column_map_derives_d_from_c(tmp_path):
    path = tmp_path / "runs.csv"
    pd.DataFrame({"Model Size": [1e8, 2e8, 4e8], "Training FLOP": [6e18, 6e18, 6e18],
                  "loss": [3.1, 3.0, 3.05]}).to_csv(path, index=False)
    pts = load_points(path, n_col="Model Size", c_col="Training FLOP", loss_col="loss")
    assert isinstance(pts, Points) and len(pts) == 3
    np.testing.assert_allclose(pts.D, 6e18 / (6 * np.array([1e8, 2e8, 4e8])))
    np.testing.assert_allclose(pts.C, 6e18)
    assert pts.n_convention == "total" and pts.columns["n"] == "Model Size"   # the fact, and the column apart
    assert pts.flops_convention == "6ND"
    assert "C / (6 N)" in pts.columns["d"]
    assert pts.data_range()["N"] == [1e8, 4e8]


def test_parquet_file_and_default_column_names(tmp_path):
    path = tmp_path / "points.pq"
    _points_frame().to_parquet(path)
    pts = load_points(path)                           # params, tokens, flops_6nd, loss found by name
    assert len(pts) == 6
    assert pts.n_convention == "total"
    np.testing.assert_allclose(pts.D, 20 * pts.N)


def test_sweep_folder_keeps_completed_rows_and_warns_about_the_rest(tmp_path):
    df = _points_frame(6)
    df.loc[1, "status"] = "diverged"
    df.loc[1, "loss"] = np.nan                        # diverged rows may hold NaN: never validated
    df.loc[4, "status"] = "failed"
    df.to_parquet(tmp_path / "points.parquet")
    with pytest.warns(FitWarning, match=r"left out 2 of 6 rows .*1 diverged, 1 failed"):
        pts = load_points(tmp_path)
    assert len(pts) == 4
    assert pts.source.endswith("points.parquet")


def test_sweep_folder_with_lr_multipliers_keeps_the_best_lr_of_each_run(tmp_path):
    base = _points_frame(4)
    frames = []
    for mult, shift in ((0.5, 0.2), (1.0, 0.0), (2.0, 0.1)):   # x1 is best everywhere but the last size
        f = base.assign(lr_multiplier=mult, seed=0, loss=base["loss"] + shift)
        if mult == 2.0:
            f.loc[3, "loss"] = base.loc[3, "loss"] - 0.05
        frames.append(f)
    pd.concat(frames, ignore_index=True).to_parquet(tmp_path / "points.parquet")
    with pytest.warns(FitWarning, match=r"best of 3 LR/batch multiplier settings .*4 of 12 rows"):
        pts = load_points(tmp_path)
    assert len(pts) == 4
    expected = base["loss"].to_numpy().copy()
    expected[3] -= 0.05
    np.testing.assert_allclose(np.sort(pts.loss), np.sort(expected))


def test_sweep_folder_nonembedding_convention_picks_its_column(tmp_path):
    df = _points_frame(5)
    df.to_parquet(tmp_path / "points.parquet")
    pts = load_points(tmp_path, n_convention="nonembedding")
    np.testing.assert_allclose(pts.N, df["params_nonembedding"])
    assert pts.n_convention == "nonembedding"
    np.testing.assert_allclose(pts.D, df["tokens"])


def test_nonembedding_convention_in_a_plain_file_uses_its_column(tmp_path):
    _points_frame(4).to_csv(tmp_path / "p.csv", index=False)
    pts = load_points(tmp_path / "p.csv", n_convention="nonembedding")
    np.testing.assert_allclose(pts.N, 0.9 * np.geomspace(1e7, 1e9, 4))
    assert pts.n_convention == "nonembedding"


def test_nonembedding_convention_without_its_column_is_refused_not_relabelled(tmp_path):
    _points_frame(4).drop(columns="params_nonembedding").to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(InputError, match=r"p.csv: --n-convention nonembedding needs a non-embedding parameter column "
                                         r"\('params_nonembedding', or name it with --n-col\); columns: run_id, .*params, "):
        load_points(tmp_path / "p.csv", n_convention="nonembedding")
    pts = load_points(tmp_path / "p.csv", n_col="params", n_convention="nonembedding")   # declared by the user
    assert pts.n_convention == "nonembedding" and pts.columns["n"] == "params"
    with pytest.raises(InputError, match="unknown N convention 'embedding'"):
        load_points(tmp_path / "p.csv", n_col="params", n_convention="embedding")


def test_default_convention_is_a_fact_not_a_column_name(tmp_path):
    df = _points_frame(4)
    ne = load_points_frame(df.rename(columns={"params": "N"}).drop(columns="params_nonembedding"))[1]
    assert ne.n_convention == "total" and ne.columns["n"] == "N"
    only_ne = load_points_frame(df, {"n": "params_nonembedding"})[1]
    assert only_ne.n_convention == "nonembedding"
    assert conventions_in(df) == ["total", "nonembedding"]
    assert conventions_in(df.drop(columns="params_nonembedding")) == ["total"]


def test_run_folder_reads_points_csv(tmp_path):
    _points_frame(3).to_csv(tmp_path / "points.csv", index=False)
    pts = load_points(tmp_path)
    assert len(pts) == 3 and pts.source.endswith("points.csv")


def test_drop_highest_removes_the_highest_losses(tmp_path):
    df = _points_frame(6)
    df.to_csv(tmp_path / "p.csv", index=False)
    pts = load_points(tmp_path / "p.csv", drop_highest=2)
    assert len(pts) == 4
    assert pts.loss.max() == pytest.approx(np.sort(df["loss"])[3])
    assert "2 highest-loss points dropped" in pts.describe()


@pytest.mark.parametrize("bad, message", [
    ({"loss": ["3.0", "abc", "2.9"]}, r"p\.csv: column 'loss', row 2: 'abc' is not a number"),
    ({"loss": [3.0, None, 2.9]}, r"p\.csv: column 'loss', row 2 is empty \(NaN\)"),
    ({"params": [1e8, -5.0, 1e9]}, r"p\.csv: column 'params', row 2: -5\.0 must be > 0"),
    ({"params": [1e8, 0.0, 1e9]}, r"p\.csv: column 'params', row 2: 0\.0 must be > 0"),
    ({"tokens": [1e9, np.inf, 1e9]}, r"p\.csv: column 'tokens', row 2: inf is not finite"),
])
def test_bad_values_give_one_line_naming_file_column_row_and_value(tmp_path, bad, message):
    df = pd.DataFrame({"params": [1e8, 2e8, 1e9], "tokens": [1e9, 2e9, 1e10], "loss": [3.0, 2.95, 2.9]})
    for col, values in bad.items():
        df[col] = values
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match=message) as info:
        load_points(path)
    assert "\n" not in str(info.value)


def test_missing_column_lists_the_columns_there(tmp_path):
    path = tmp_path / "p.csv"
    pd.DataFrame({"params": [1e8], "tokens": [1e9], "loss": [3.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"p\.csv: column 'Model Size' not found \(columns: params, tokens, loss\)"):
        load_points(path, n_col="Model Size")
    pd.DataFrame({"size": [1e8], "toks": [1e9], "loss": [3.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"no column for 'n' .*--n-col"):
        load_points(path)


def test_unreadable_sources_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        load_points(tmp_path / "absent.csv")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(InputError, match=r"unknown table format '\.xlsx'"):
        load_points(tmp_path / "t.xlsx")
    with pytest.raises(InputError, match="neither points.parquet .* nor points.csv"):
        load_points(tmp_path)


def test_arrays_and_frames_give_the_same_points():
    N = np.array([1e8, 2e8, 4e8])
    D = np.array([2e9, 4e9, 8e9])
    loss = np.array([3.2, 3.0, 2.9])
    a = points_from_arrays(N, D, loss)
    b = points_from_frame(pd.DataFrame({"n": N, "d": D, "l": loss}), {"n": "n", "d": "d", "loss": "l"})
    c = as_points(pd.DataFrame({"N": N, "C": 6 * N * D, "loss": loss}))   # auto names, D from C
    for p in (b, c):
        np.testing.assert_allclose(p.N, a.N)
        np.testing.assert_allclose(p.D, a.D)
        np.testing.assert_allclose(p.C, a.C)
    assert as_points(a) is a
    with pytest.raises(InputError, match="arrays differ in length"):
        points_from_arrays(N, D[:2], loss)
    with pytest.raises(InputError, match="give D .* or C"):
        points_from_arrays(N, None, loss)


def _write_sweep_with_curves(root, sizes=(1e7, 2e7, 4e7)):
    trials, curves = [], []
    for i, N in enumerate(sizes):
        status = "completed" if i < len(sizes) - 1 else "diverged"
        trials.append({"run_id": f"run{i}", "status": status, "params": N, "params_nonembedding": 0.8 * N})
        for step in range(1, 6):
            D = step * 1e8
            curves.append({"run_id": f"run{i}", "step": step, "tokens": D, "flops": 6 * N * D,
                           "train_loss": 4.0, "val_loss": 5.0 - 0.1 * step - 0.01 * i, "lr": 1e-3,
                           "elapsed_s": float(step)})
    pd.DataFrame(trials).to_parquet(root / "trials.parquet")
    pd.DataFrame(curves).to_parquet(root / "curves.parquet")


def test_curves_from_a_sweep_folder_join_n_from_trials(tmp_path):
    _write_sweep_with_curves(tmp_path)
    with pytest.warns(FitWarning, match="1 diverged"):
        cv = load_curves(tmp_path)
    assert set(cv.run) == {"run0", "run1"}
    assert len(cv) == 10
    np.testing.assert_allclose(np.unique(cv.N), [1e7, 2e7])
    np.testing.assert_allclose(cv.C, 6 * cv.N * cv.D)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        cv_ne = load_curves(tmp_path, n_convention="nonembedding")
    np.testing.assert_allclose(np.unique(cv_ne.N), [0.8e7, 1.6e7])
    assert cv_ne.n_convention == "nonembedding"


def test_curves_branches_become_separate_curves(tmp_path):
    _write_sweep_with_curves(tmp_path, sizes=(1e7, 2e7))
    df = pd.read_parquet(tmp_path / "curves.parquet")
    extra = df[df.run_id == "run0"].assign(branch="cd1", val_loss=lambda d: d.val_loss - 0.05)
    pd.concat([df.assign(branch=None), extra]).to_parquet(tmp_path / "curves.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        cv = load_curves(tmp_path)
    assert set(cv.run) == {"run0", "run0/cd1"}          # run1 is the diverged one


def test_run_folder_curves_use_trial_json(tmp_path):
    pd.DataFrame({"run_id": "r", "step": [1, 2], "tokens": [1e8, 2e8], "val_loss": [4.0, 3.8]}).to_csv(
        tmp_path / "curves.csv", index=False)
    (tmp_path / "trial.json").write_text(json.dumps({"run_id": "r", "status": "completed", "params": 5e6}))
    cv = load_curves(tmp_path)
    np.testing.assert_allclose(cv.N, 5e6)
    (tmp_path / "trial.json").unlink()
    with pytest.raises(InputError, match="no trial.json"):
        load_curves(tmp_path)

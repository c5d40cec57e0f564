"""`scaling fit`: JSON and table output, --out for `scaling plan`, one-line errors with exit code 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from analysis.fit import ChinchillaFit, IsoFLOPFit, load_fit
from analysis.laws import ChinchillaLaw
from orchestrator.cli import main

LAW = ChinchillaLaw(E=1.8, A=400.0, B=1500.0, alpha=0.34, beta=0.36)


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    """A published-style CSV: 'Model Size', 'Training FLOP', loss (no tokens column)."""
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(2e7, 5e9, 8), 6)
    D = N * np.tile(np.geomspace(4, 100, 6), 8)
    loss = LAW(N, D) * np.exp(rng.normal(0, 0.005, N.shape))
    loss[0] = 9.0                                          # one wild point for --drop-highest
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    pd.DataFrame({"Model Size": N, "Training FLOP": 6 * N * D, "loss": loss}).to_csv(path, index=False)
    return path


def test_approach_3_json_and_out(runs_csv, tmp_path, capsys):
    out = tmp_path / "fit.json"
    rc = main(["fit", str(runs_csv), "--n-col", "Model Size", "--c-col", "Training FLOP", "--loss-col", "loss",
               "--approach", "3", "--drop-highest", "1", "--bootstrap", "30", "--seed", "0", "--json",
               "--out", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    for key in ("E", "A", "B", "alpha", "beta", "a", "b", "G", "n_points", "objective", "intervals"):
        assert key in printed, key
    # Chinchilla's "Model Size" counts every parameter: the convention is "total", the column is kept
    assert printed["n_points"] == 47 and printed["n_convention"] == "total" and printed["columns"]["n"] == "Model Size"
    assert printed["a"] == pytest.approx(LAW.a, abs=0.03)
    assert printed["approach"] == "3" and printed["n_bootstrap"] == 30 and "bootstrap" not in printed  # compact
    written = json.loads(out.read_text())
    assert len(written.pop("bootstrap")["alpha"]) == 30     # the file keeps the draws for `scaling plan`
    assert written == printed                               # and otherwise holds what --json prints
    fit = load_fit(out)
    assert isinstance(fit, ChinchillaFit) and fit.intervals_["alpha"][0] < fit.alpha_


def test_table_output_has_units(runs_csv, capsys):
    rc = main(["fit", str(runs_csv), "--n-col", "Model Size", "--c-col", "Training FLOP"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "nats/token" in text and "alpha" in text and "tokens/param" in text
    assert "of 4500 starts reached it" in text


def test_approach_2_with_a_budget_column(tmp_path, capsys):
    rows = []
    for C in (1e18, 1e19, 1e20, 1e21):
        N_opt, _ = LAW.compute_optimal(C)
        for N in N_opt * np.geomspace(0.25, 4, 7):
            rows.append({"params": N, "tokens": C / (6 * N), "loss": float(LAW(N, C / (6 * N))), "budget": C})
    path = tmp_path / "iso.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert main(["fit", str(path), "--approach", "2", "--budget-col", "budget", "--json", "--out",
                 str(tmp_path / "a2.json")]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["approach"] == "2" and d["a"] == pytest.approx(LAW.a, abs=0.01)
    assert len(d["budgets"]) == 4 and {"C", "N_opt", "D_opt", "loss_opt"} <= set(d["budgets"][0])
    assert isinstance(load_fit(tmp_path / "a2.json"), IsoFLOPFit)
    assert main(["fit", str(path), "--approach", "2", "--budget-col", "budget"]) == 0
    assert "N_opt (params)" in capsys.readouterr().out


def test_approach_2_names_unbracketed_budgets_and_keeps_them_on_request(tmp_path, capsys):
    rows = []
    for C, offset in ((1e18, 1.0), (1e19, 1.0), (1e20, 1.0), (1e21, 8.0)):      # 1e21: every size above its optimum
        N_opt, _ = LAW.compute_optimal(C)
        for N in N_opt * offset * np.geomspace(0.25, 4, 7):
            rows.append({"params": N, "tokens": C / (6 * N), "loss": float(LAW(N, C / (6 * N))), "budget": C})
    path = tmp_path / "iso.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert main(["fit", str(path), "--approach", "2", "--budget-col", "budget", "--json"]) == 0
    out = capsys.readouterr()
    d = json.loads(out.out)
    assert "1 of 4 IsoFLOP budgets are not bracketed" in out.err and "C=1e+21: the lowest loss is at the smallest" \
        in out.err
    assert [b["used"] for b in d["budgets"]] == [True, True, True, False]
    assert d["a"] == pytest.approx(LAW.a, abs=0.01) and d["flags"] == []
    assert main(["fit", str(path), "--approach", "2", "--budget-col", "budget", "--keep-unbracketed"]) == 0
    text = capsys.readouterr().out
    assert "edge (used: the lowest loss is at the smallest size" in text
    assert main(["fit", str(path), "--keep-unbracketed"]) == 2
    assert "error: --keep-unbracketed applies to approach 2 only" in capsys.readouterr().err


def test_approach_1_and_kaplan_on_a_sweep_folder(tmp_path, capsys):
    sizes = np.geomspace(2e7, 2e9, 8)
    trials, curves, points = [], [], []
    for i, N in enumerate(sizes):
        for D in N * np.geomspace(2, 300, 30):
            curves.append({"run_id": f"r{i}", "step": 0, "tokens": D, "flops": 6 * N * D, "train_loss": 0.0,
                           "val_loss": float(LAW(N, D)), "lr": 0.0, "elapsed_s": 0.0})
        trials.append({"run_id": f"r{i}", "status": "completed", "params": N, "params_nonembedding": 0.9 * N})
        for ratio in (5, 20, 80):
            points.append({"run_id": f"r{i}", "kind": "final", "params": N, "params_nonembedding": 0.9 * N,
                           "tokens": ratio * N, "flops_6nd": 6 * N * ratio * N, "loss": float(LAW(N, ratio * N)),
                           "status": "completed"})
    pd.DataFrame(trials).to_parquet(tmp_path / "trials.parquet")
    pd.DataFrame(curves).to_parquet(tmp_path / "curves.parquet")
    pd.DataFrame(points).to_parquet(tmp_path / "points.parquet")
    assert main(["fit", str(tmp_path), "--approach", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["approach"] == "1" and d["a"] == pytest.approx(LAW.a, abs=0.05)
    assert main(["fit", str(tmp_path), "--approach", "kaplan", "--n-convention", "nonembedding", "--json"]) == 0
    k = json.loads(capsys.readouterr().out)
    assert k["approach"] == "kaplan" and {"alpha_N", "N_c", "alpha_D", "D_c"} <= set(k)
    assert k["n_convention"] == "nonembedding"


@pytest.mark.parametrize("args, message", [
    (["--n-col", "size"], r"runs\.csv: column 'size' not found"),
    (["--n-col", "Model Size", "--c-col", "Training FLOP", "--loss-col", "nope"], r"column 'nope' not found"),
    (["--n-col", "Model Size", "--c-col", "Training FLOP", "--approach", "2"], r"at least 2 IsoFLOP budgets"),
])
def test_bad_input_is_one_line_and_exit_code_2(runs_csv, capsys, args, message):
    rc = main(["fit", str(runs_csv), *args])
    err = capsys.readouterr().err
    assert rc == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize("values, message", [
    ({"Model Size": [1e8, -1.0, 1e9, 2e9, 3e9, 4e9]}, r"column 'Model Size', row 2: -1\.0 must be > 0"),
    ({"loss": [3.0, "abc", 2.8, 2.7, 2.6, 2.5]}, r"column 'loss', row 2: 'abc' is not a number"),
    ({"loss": [3.0, None, 2.8, 2.7, 2.6, 2.5]}, r"column 'loss', row 2 is empty \(NaN\)"),
])
def test_bad_values_exit_2_naming_file_column_and_value(tmp_path, capsys, values, message):
    df = pd.DataFrame({"Model Size": [1e8, 2e8, 1e9, 2e9, 3e9, 4e9], "Training FLOP": [1e19] * 6,
                       "loss": [3.0, 2.9, 2.8, 2.7, 2.6, 2.5]})
    for k, v in values.items():
        df[k] = v
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    rc = main(["fit", str(path), "--n-col", "Model Size", "--c-col", "Training FLOP"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "bad.csv" in err
    assert re.search(message, err), err


def test_too_few_points_exit_2(tmp_path, capsys):
    path = tmp_path / "few.csv"
    pd.DataFrame({"params": [1e8, 2e8, 4e8], "tokens": [1e9, 2e9, 4e9], "loss": [3.0, 2.9, 2.8]}).to_csv(path, index=False)
    assert main(["fit", str(path)]) == 2
    assert "3 distinct (N, D) points (of 3 rows) are fewer than the 5 parameters" in capsys.readouterr().err


def test_console_command_runs_without_traceback(tmp_path):
    path = tmp_path / "few.csv"
    pd.DataFrame({"params": [1e8], "tokens": [1e9], "loss": ["x"]}).to_csv(path, index=False)
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "fit", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {path}: column 'loss', row 1: 'x' is not a number"


def test_n_convention_all_fits_each_convention_side_by_side(tmp_path, capsys):
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(2e7, 2e9, 6), 5)
    D = N * np.tile(np.geomspace(5, 80, 5), 6)
    N_ne = N - 0.5 * 50304 * 256                                 # the law holds in non-embedding N
    df = pd.DataFrame({"params": N, "params_nonembedding": N_ne, "tokens": D,
                       "loss": LAW(N_ne, D) * np.exp(rng.normal(0, 0.002, N.size))})
    df.to_csv(tmp_path / "runs.csv", index=False)
    assert main(["fit", str(tmp_path / "runs.csv"), "--n-convention", "all", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    fits, oos = out["n_conventions"], out["out_of_sample"]
    assert list(fits) == ["total", "nonembedding"]
    assert oos["nonembedding"]["rms_log_error"] < oos["total"]["rms_log_error"]     # the right N forecasts better
    assert fits["total"]["columns"]["n"] == "params" and fits["nonembedding"]["columns"]["n"] == "params_nonembedding"
    assert fits["nonembedding"]["n_convention"] == "nonembedding" and fits["total"]["n_convention"] == "total"
    assert fits["nonembedding"]["alpha"] == pytest.approx(LAW.alpha, abs=0.02)
    assert abs(fits["total"]["alpha"] - LAW.alpha) > 0.05          # the wrong N bends the law
    assert main(["fit", str(tmp_path / "runs.csv"), "--n-convention", "all"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"alpha\s+0\.\d+\s+0\.3\d", text) and "OOS err" in text
    df.drop(columns="params_nonembedding").to_csv(tmp_path / "total.csv", index=False)
    assert main(["fit", str(tmp_path / "total.csv"), "--n-convention", "nonembedding"]) == 2
    assert "needs a non-embedding parameter column" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "total.csv"), "--n-convention", "all", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["n_conventions"]) == ["total"]

"""`scaling plan`, `scaling backtest`, `scaling report`: outputs with units, JSON, one-line errors (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.laws import EPOCH_2024
from analysis.plan import Planner
from orchestrator.cli import main
from synthetic_sweep import synthetic_points, write_sweep


@pytest.fixture()
def fit_json(tmp_path):
    rng = np.random.default_rng(0)
    boot = {p: (getattr(EPOCH_2024, p) * np.exp(rng.normal(0, 0.02, 200))).tolist()
            for p in ("E", "A", "B", "alpha", "beta")}
    d = {"approach": 3, "law": "chinchilla", **EPOCH_2024.to_dict(), "n_convention": "total", "flops_convention": "6ND",
         "interval_level": 0.95, "bootstrap": boot, "data_range": {"C": [6e18, 1.3e22]}, "source": "test"}
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(d))
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_plan_budget_json_has_numbers_intervals_shape_and_units(capsys, fit_json):
    code, out, _ = run_cli(capsys, "plan", fit_json, "--budget", "5.76e23", "--json", "--vocab-size", "50304",
                           "--context", "2048", "--flops-per-s", "989e12", "--mfu", "0.4", "--devices", "1024")
    assert code == 0
    d = json.loads(out)
    ref = Planner(EPOCH_2024).budget(5.76e23)
    assert d["N"] == pytest.approx(ref.N) and d["D"] == pytest.approx(ref.D) and d["loss"] == pytest.approx(ref.loss)
    assert d["tokens_per_param"] == pytest.approx(17.9, abs=0.1)
    lo, hi = d["intervals"]["N"]
    assert lo < d["N"] < hi and d["interval_level"] == 0.95 and d["n_bootstrap"] == 200
    assert d["units"]["N"] == "parameters" and d["units"]["C"] == "FLOPs" and d["units"]["wall_clock_s"] == "s"
    assert d["wall_clock_s"] == pytest.approx(5.76e23 / (989e12 * 0.4 * 1024))
    shape = d["shape"]
    assert shape["vocab_size"] == 50304 and shape["context"] == 2048
    assert d["shape_params"] == pytest.approx(ref.N, rel=0.2)  # the shape picker's nearest size
    assert d["run_config"]["train"]["tokens"] == round(ref.D)


@pytest.mark.parametrize("flag, value", [("--params", "7B"), ("--tokens", "2T"), ("--target-loss", "2.1")])
def test_plan_other_questions_print_text_with_units(capsys, fit_json, flag, value):
    code, out, _ = run_cli(capsys, "plan", fit_json, flag, value, "--no-shape")
    assert code == 0
    assert "parameters" in out and "tokens" in out and "FLOPs" in out and "nats/token" in out
    assert "95% interval" in out


def test_plan_inference_aware_is_smaller_than_compute_optimal(capsys, fit_json):
    code, out, _ = run_cli(capsys, "plan", fit_json, "--budget", "1e22", "--inference-tokens", "2T", "--json", "--no-shape")
    d = json.loads(out)
    assert code == 0 and d["kind"] == "inference"
    assert d["N"] < d["reference"]["N"] and d["reference"]["total_flops_saved"] > 0


def test_a_nonembedding_plan_gets_a_shape_matched_on_nonembedding_n_and_says_so(capsys, fit_json, tmp_path):
    d = json.loads(fit_json.read_text())
    d["n_convention"] = "nonembedding"
    path = tmp_path / "ne.json"
    path.write_text(json.dumps(d))
    code, out, _ = run_cli(capsys, "plan", path, "--budget", "1e18", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["shape_convention"] == "nonembedding"
    assert plan["shape_params"] == pytest.approx(plan["N"], rel=0.2)             # matched on the plan's N
    assert plan["shape_params_total"] > plan["shape_params"]                     # embeddings on top
    code, out, _ = run_cli(capsys, "plan", path, "--budget", "1e18")
    assert "non-embedding parameters (the plan's N)" in out and "in total with embeddings" in out
    assert "N = nonembedding parameters" in out


def test_plan_writes_a_runnable_config(capsys, fit_json, tmp_path):
    from scaling.config import RunConfig

    path = tmp_path / "run.json"
    code, out, _ = run_cli(capsys, "plan", fit_json, "--budget", "1e18", "--write-config", path)
    assert code == 0 and "model shape" in out
    cfg = RunConfig.model_validate(json.loads(path.read_text()))
    assert cfg.train.tokens > 0 and cfg.model.n_layer >= 1


@pytest.mark.parametrize("argv, match", [
    (["--target-loss", "1.0"], "irreducible loss"),
    ([], "give one of --budget"),
    (["--inference-tokens", "1e12"], "needs --budget or --target-loss"),
    (["--budget", "1e21", "--mfu", "0.4"], "both"),
])
def test_plan_errors_are_one_line_exit_2(capsys, fit_json, argv, match):
    code, out, err = run_cli(capsys, "plan", fit_json, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and match in err and err.count("\n") == 1


def test_plan_missing_fit_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "plan", tmp_path / "nope.json", "--budget", "1e21")
    assert code == 2 and "not found" in err


def test_backtest_cli_json_and_text(capsys, tmp_path):
    csv = tmp_path / "runs.csv"
    synthetic_points().to_csv(csv, index=False)
    code, out, _ = run_cli(capsys, "backtest", csv, "--holdout", "N >= 1e8", "--bootstrap", "20", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["n_holdout"] == sum(1 for r in d["rows"]) and d["n_holdout"] > 0
    assert {"rel_error", "in_interval", "interval", "predicted"} <= set(d["rows"][0])
    code, out, _ = run_cli(capsys, "backtest", csv, "--holdout", "largest C", "--interval", "none")
    assert code == 0 and "mean |relative error|" in out
    code, _, err = run_cli(capsys, "backtest", csv, "--holdout", "import os")
    assert code == 2 and err.startswith("error: holdout")
    code, _, err = run_cli(capsys, "backtest", csv)
    assert code == 2 and "--holdout" in err


def test_report_cli_writes_the_page(capsys, tmp_path):
    folder = write_sweep(tmp_path / "sweep")
    out_html = tmp_path / "r.html"
    code, out, _ = run_cli(capsys, "report", folder, "--out", out_html, "--bootstrap", "10")
    assert code == 0 and out_html.exists() and "wrote" in out
    assert "IsoFLOP profiles" in out_html.read_text()
    code, _, err = run_cli(capsys, "report", tmp_path / "nothing", "--out", out_html)
    assert code == 2 and err.startswith("error: ")

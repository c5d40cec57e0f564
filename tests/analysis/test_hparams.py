"""`scaling hparams`: cell optima, the law's form and intervals on a synthetic LR sweep with a known
optimum, the edge-of-grid cell kept out, the JSON contract and its round trip."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from analysis.hparams import cell_optimum, fit_hparams, read_hparams
from analysis.io import FitWarning
from orchestrator.cli import main
from synthetic_hparams import RATIOS, SIZES, B, C, hparam_rows, true_lr


@pytest.mark.parametrize("seed", range(5))
def test_synthetic_law_recovered_and_edge_cell_kept_out(seed):
    with pytest.warns(FitWarning, match=r"cell N=3e\+06, D=3e\+08 kept out of the law: best at the smallest"):
        res = fit_hparams(hparam_rows(seed), bootstrap=200, random_state=seed)
    law = res.lr.law
    assert law.form_ == "N,D"
    assert abs(law.params_["b"] - B) <= 0.05 and abs(law.params_["c"] - C) <= 0.05
    for r in RATIOS:   # 100x the compute of the largest cells: N and D each 10x
        N, D = 10 * SIZES[-1], 10 * r * SIZES[-1]
        assert float(law.predict(N, D)[0]) == pytest.approx(float(true_lr(N, D)), rel=0.10)
    out = [c for c in res.lr.cells if not c.kept]
    assert [(c.N, c.D) for c in out] == [(3e6, 3e8)]
    assert res.batch is None      # one batch in the table: no batch law


def test_cell_optimum_quadratic_band_and_diverged_edge():
    lrs = np.array([1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2])
    x = np.log(lrs / 3e-3)
    sharp = cell_optimum(1e6, 2e7, 1.2e14, lrs, 3.0 + 0.1 * x**2)
    assert sharp.method == "quadratic" and sharp.optimum == pytest.approx(3e-3, rel=1e-6)
    flat = cell_optimum(1e6, 2e7, 1.2e14, lrs, 3.0 * (1 + 1e-4 * x**2))
    assert flat.method == "band" and flat.kept and 1e-3 < flat.optimum < 1.6e-2
    # the largest finite setting is best, the one above it diverged: bracketed, kept
    edge = cell_optimum(1e6, 2e7, 1.2e14, lrs, np.array([3.3, 3.2, 3.1, 3.0, np.nan]))
    assert edge.kept and edge.n_diverged == 1 and 4e-3 <= edge.optimum <= 1.6e-2
    # the same without the diverged run: the best is the largest tried, kept out
    top = cell_optimum(1e6, 2e7, 1.2e14, lrs[:4], np.array([3.3, 3.2, 3.1, 3.0]))
    assert not top.kept and "largest setting tried" in top.reason
    dead = cell_optimum(1e6, 2e7, 1.2e14, lrs, np.full(5, np.inf))
    assert not dead.kept and "diverged" in dead.reason and dead.best is None


def test_batch_law_when_the_table_varies_the_batch():
    rows = hparam_rows(0, edge_cell=False, batch_multipliers=(0.25, 0.5, 1.0, 2.0, 4.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        res = fit_hparams(rows, bootstrap=200)
    assert res.batch is not None and res.batch.law.params_["b"] == pytest.approx(0.3271, abs=0.05)
    assert abs(res.lr.law.params_["b"] - B) <= 0.05


def test_cli_json_schema_out_and_read_back(tmp_path, capsys, check_output):
    hparam_rows(1).to_csv(tmp_path / "hp.csv", index=False)
    argv = ["hparams", str(tmp_path / "hp.csv"), "--at", "1B,20B", "--at", "3e8,6e9", "--bootstrap", "200"]
    assert main(argv + ["--json", "--out", str(tmp_path / "hp.json")]) == 0
    captured = capsys.readouterr()
    d = check_output(json.loads(captured.out), "hparams")
    assert "kept out of the law" in captured.err and "draws" not in d["lr"]
    assert [p["N"] for p in d["predictions"]] == [1e9, 3e8]
    p = d["predictions"][0]
    assert p["lr_interval"][0] < p["lr"] < p["lr_interval"][1] and p["batch_tokens"] is None
    file = check_output(json.loads((tmp_path / "hp.json").read_text()), "hparams")
    assert len(file["lr"]["draws"]) == 200
    back = read_hparams(tmp_path / "hp.json").predict(1e9, 20e9)
    assert back["lr"] == pytest.approx(p["lr"]) and back["lr_interval"] == pytest.approx(p["lr_interval"])
    assert main(argv[:2] + ["--at", "1B,20B", "--bootstrap", "50"]) == 0
    text = capsys.readouterr().out
    assert "quadratic" in text and "lr* = " in text and "N 1B, D 20B: lr" in text


def test_report_draws_the_laws(tmp_path, capsys):
    hparam_rows(2).to_csv(tmp_path / "hp.csv", index=False)
    assert main(["hparams", str(tmp_path / "hp.csv"), "--bootstrap", "100", "--out", str(tmp_path / "hp.json")]) == 0
    fit = {"approach": "3", "law": "chinchilla", "E": 1.9, "A": 300.0, "B": 1500.0, "alpha": 0.33, "beta": 0.35,
           "n_convention": "total", "flops_convention": "6ND", "source": "synthetic"}
    (tmp_path / "fit.json").write_text(json.dumps(fit))
    capsys.readouterr()
    assert main(["report", str(tmp_path / "fit.json"), "--hparams", str(tmp_path / "hp.json"),
                 "--out", str(tmp_path / "r.html"), "--json"]) == 0
    names = [f["name"] for f in json.loads(capsys.readouterr().out)["figures"]]
    assert {"hparams-lr-cells", "hparams-lr-law"} <= set(names)
    page = (tmp_path / "r.html").read_text()
    assert "Learning-rate and batch laws" in page and "lr* = " in page


def test_a_coarse_grid_fits_the_parabola_near_its_minimum_only():
    # the CPU sweep's 29k-param cell at 500k tokens: a factor 3 a step, the curve flattens at high LR
    lrs = np.array([0.0013875, 0.0041625, 0.0125, 0.0375])
    cell = cell_optimum(29304, 499712, 8.79e10, lrs, np.array([4.9547, 4.4459, 4.5453, 4.6475]))
    # the 3-point parabola's vertex (a third of a step above the best); all 4 points put it at 0.0097
    assert cell.method == "quadratic" and cell.optimum == pytest.approx(0.0060, rel=0.02)

"""Plan -> train closes: `scaling plan --write-config` writes a RunConfig that `scaling train --config` runs,
with the vocabulary, context, corpus and optimiser settings of the runs the fit came from."""

from __future__ import annotations

import json

import pytest

from orchestrator.cli import main
from scaling.config import ModelConfig, RunConfig, TrainConfig


def _fit_of_run(tmp_path, stdlib_data_config):
    """A run folder's config.json (tiny model on the session corpus) and a fit JSON whose source is that run.

    The law has alpha = beta = 1/2 and A = 2B, so G = (alpha A / (beta B))^(1 / (alpha + beta)) = 2 and N_opt = 2 sqrt(C / 6) = 4 D_opt (Hoffmann et al. 2022, eq. 4)."""
    run = tmp_path / "run0"
    run.mkdir()
    cfg = RunConfig(model=ModelConfig(n_layer=2, d_model=16, n_head=4, context=64, vocab_size=512),
                    data=stdlib_data_config, train=TrainConfig(tokens=8192, batch_tokens=2048, eval_tokens=1024))
    (run / "config.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    fit = {"approach": "3", "law": "chinchilla", "E": 1.7, "A": 800.0, "B": 400.0, "alpha": 0.5, "beta": 0.5,
           "n_convention": "total", "flops_convention": "6ND", "source": str(run / "points.csv")}
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fit))
    return path


def test_plan_writes_a_config_that_train_runs(stdlib_data, stdlib_data_config, tmp_path, capsys):
    fit = _fit_of_run(tmp_path, stdlib_data_config)
    run_json = tmp_path / "run.json"
    budget = 6 * 24e3 * 6e3  # N_opt = 24k, D_opt = 6k
    assert main(["plan", str(fit), "--budget", str(budget), "--write-config", str(run_json), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["N"] == pytest.approx(24e3, rel=1e-6) and plan["D"] == pytest.approx(6e3, rel=1e-6)
    written = json.loads(run_json.read_text())
    # the fit's run gave the vocabulary, context, corpus and batch; the plan gave the shape and D
    assert written["model"]["vocab_size"] == 512 and written["model"]["context"] == 64
    assert written["data"]["max_bytes"] == stdlib_data_config.max_bytes
    assert written["train"]["batch_tokens"] == 2048 and written["train"]["tokens"] == 6000
    assert plan["shape_from"] == "the fit's runs"

    out = tmp_path / "planned"
    assert main(["train", "--config", str(run_json), "--out", str(out), "--threads", "1", "--json", "--quiet"]) == 0
    trial = json.loads(capsys.readouterr().out)
    assert trial["status"] == "completed"
    assert trial["params"] == plan["shape_params"] == pytest.approx(24e3, rel=0.2)
    assert (trial["n_layer"], trial["d_model"]) == (plan["shape"]["n_layer"], plan["shape"]["d_model"])
    assert trial["tokens"] == 6000 and trial["data_fingerprint"] == stdlib_data.fingerprint
    assert json.loads((out / "config.json").read_text())["model"] == written["model"]


def test_plan_vocab_and_context_flags_win_over_the_fits_runs(stdlib_data_config, tmp_path, capsys):
    fit = _fit_of_run(tmp_path, stdlib_data_config)
    assert main(["plan", str(fit), "--budget", "1e21", "--vocab", "50304", "--context", "2048", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    s = d["shape"]
    assert (s["vocab_size"], s["context"]) == (50304, 2048)
    assert s["d_model"] % 64 == 0 and s["d_model"] // s["n_head"] in (64, 128)  # GPU widths (scaling.shapes)


def test_train_config_refuses_model_flags_and_bad_files(stdlib_data_config, tmp_path, capsys):
    fit = _fit_of_run(tmp_path, stdlib_data_config)
    run_json = tmp_path / "run.json"
    assert main(["plan", str(fit), "--budget", "1e10", "--write-config", str(run_json)]) == 0
    capsys.readouterr()
    assert main(["train", "--config", str(run_json), "--d-model", "64", "--out", str(tmp_path / "x")]) == 2
    assert "--d-model is a model/data/training flag" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {"n_layer": 2}, "train": {"tokens": 10}}))
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and "model.d_model" in err and err.count("\n") == 1
    assert main(["train", "--out", str(tmp_path / "z")]) == 2
    assert "--tokens or --tokens-per-param" in capsys.readouterr().err


def test_plan_hparams_writes_the_fitted_lr_and_batch_that_train_uses(stdlib_data_config, tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
    from synthetic_hparams import hparam_rows

    fit = _fit_of_run(tmp_path, stdlib_data_config)
    hparam_rows(0, edge_cell=False, batch_multipliers=(0.25, 0.5, 1.0, 2.0, 4.0)).to_csv(tmp_path / "hp.csv", index=False)
    assert main(["hparams", str(tmp_path / "hp.csv"), "--bootstrap", "100", "--out", str(tmp_path / "hp.json")]) == 0
    capsys.readouterr()
    run_json = tmp_path / "run.json"
    budget = 6 * 24e3 * 6e3
    assert main(["plan", str(fit), "--budget", str(budget), "--hparams", str(tmp_path / "hp.json"),
                 "--write-config", str(run_json), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    h, train = plan["hparams"], json.loads(run_json.read_text())["train"]
    assert train["lr"] == pytest.approx(h["lr"]) and h["lr_interval"][0] < h["lr"] < h["lr_interval"][1]
    assert train["batch_tokens"] == h["batch_tokens"] and train["batch_tokens"] % 64 == 0   # whole sequences
    assert train["planned_intervals"]["lr"] == pytest.approx(h["lr_interval"])
    assert "scaling hparams" in train["lr_source"] and "hp.json" in train["lr_source"]
    assert train["lr"] != pytest.approx(0.5 / plan["shape"]["d_model"])      # not the size rule

    out = tmp_path / "planned"
    assert main(["train", "--config", str(run_json), "--out", str(out), "--threads", "1", "--json", "--quiet"]) == 0
    trial = json.loads(capsys.readouterr().out)
    assert trial["status"] == "completed" and trial["lr"] == pytest.approx(h["lr"])
    assert trial["batch_tokens"] == h["batch_tokens"] and trial["lr_source"] == train["lr_source"]
    assert json.loads((out / "config.json").read_text())["train"]["lr_source"] == train["lr_source"]

    # without --hparams nothing changes: the size rule's LR, the fit's run's batch
    assert main(["plan", str(fit), "--budget", str(budget), "--write-config", str(run_json)]) == 0
    plain = json.loads(run_json.read_text())["train"]
    assert plain["lr"] is None and plain["lr_source"] is None and plain["batch_tokens"] == 2048

"""Every subcommand's --json against the one schema (contracts/output.schema.json); the files the
commands write against the same definitions; the schema refuses the old shapes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

sys.path.insert(0, str(Path(__file__).parent / "analysis"))
from synthetic_sweep import synthetic_points, write_sweep  # noqa: E402

from orchestrator.cli import main  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "sweeps" / "examples"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schema")
    synthetic_points().to_csv(tmp / "runs.csv", index=False)
    return tmp, write_sweep(tmp / "sweep")


def cli_json(capsys, *argv) -> dict:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("approach", ["3", "2", "kaplan"])
def test_fit_json_compact_and_with_samples(data, capsys, check_output, approach):
    tmp, _ = data
    argv = ("fit", tmp / "runs.csv", "--approach", approach, "--bootstrap", "20", "--json")
    compact = check_output(cli_json(capsys, *argv, "--out", tmp / f"fit-{approach}.json"), "fit")
    full = check_output(cli_json(capsys, *argv, "--samples"), "fit")
    file = check_output(json.loads((tmp / f"fit-{approach}.json").read_text()), "fit")
    assert compact["approach"] == approach and "bootstrap" not in compact and compact["n_bootstrap"] == 20
    assert len(next(iter(full["bootstrap"].values()))) == 20 and file["bootstrap"] == full["bootstrap"]
    assert len(json.dumps(compact)) < len(json.dumps(full))


def test_approach_1_fit_json(data, capsys, check_output):
    _, folder = data
    d = check_output(cli_json(capsys, "fit", folder, "--approach", "1", "--json"), "fit")
    assert d["approach"] == "1" and d["n_convention"] == "total"


def test_plan_json(data, capsys, check_output):
    tmp, _ = data
    main(["fit", str(tmp / "runs.csv"), "--bootstrap", "20", "--out", str(tmp / "fit.json")])
    d = check_output(cli_json(capsys, "plan", tmp / "fit.json", "--budget", "1e20", "--json"), "plan")
    assert set(d["intervals"]) >= {"N", "D", "loss"}


def test_plan_json_without_a_bootstrap_has_no_interval_level(data, capsys, check_output):
    tmp, _ = data
    main(["fit", str(tmp / "runs.csv"), "--out", str(tmp / "fit-point.json")])
    d = check_output(cli_json(capsys, "plan", tmp / "fit-point.json", "--budget", "1e20", "--json"), "plan")
    assert d["interval_level"] is None and not d["intervals"]


def test_backtest_json_and_file(data, capsys, check_output):
    tmp, _ = data
    d = check_output(cli_json(capsys, "backtest", tmp / "runs.csv", "--holdout", "largest C", "--bootstrap", "20",
                              "--json", "--out", tmp / "bt.json"), "backtest")
    assert d["approach"] == "auto" and d["fit"]["chosen"] in ("chinchilla", "kaplan_nd")   # auto: the default
    assert all(r["interval"][0] < r["predicted"] < r["interval"][1] for r in d["rows"])
    check_output(json.loads((tmp / "bt.json").read_text()), "backtest")
    lobo = check_output(cli_json(capsys, "backtest", tmp / "runs.csv", "--lobo", "--json"), "backtest_lobo")
    assert lobo["approach"] == "3" and len(lobo["folds"]) >= 5


def test_report_json_lists_what_it_wrote(data, capsys, check_output):
    tmp, _ = data
    main(["fit", str(tmp / "runs.csv"), "--bootstrap", "20", "--out", str(tmp / "fit.json")])
    d = check_output(cli_json(capsys, "report", tmp / "fit.json", "--out", tmp / "r.html", "--json"), "report")
    assert Path(d["report"]).stat().st_size == d["bytes"] and d["static"] is None
    assert [f["name"] for f in d["figures"]] == ["fig3", "law-contours", "loss-opt", "exponents"]


def test_sweep_plan_json_keeps_its_trial_list(capsys, check_output):
    # the GPU example's corpus lives on a cluster's shared mount: plan it on the default corpus here
    d = check_output(cli_json(capsys, "sweep", "plan", EXAMPLES / "chinchilla-gpu.yaml", "--set", "corpus=[]",
                              "--no-probe", "--json"), "sweep_plan")
    assert isinstance(d["trials"], list) and len(d["trials"]) == d["n_trials"] > 1


@pytest.mark.parametrize("command, bad", [
    ("fit", {"approach": 3}),                                   # a number, as version 1 wrote it
    ("fit", {"n_convention": "Model Size"}),                    # a column name, not a convention
    ("fit", {"intervals": {"a": {"lower": 0.4, "upper": 0.5}}}),
    ("fit", {"schema_version": 1}),
    ("backtest", {"rows": [{"N": 1, "D": 1, "C": 6, "loss": 2, "predicted": 2, "lower": 1, "upper": 3,
                            "interval": [1, 3], "rel_error": 0, "in_interval": True}]}),
])
def test_the_schema_refuses_the_old_shapes(data, capsys, check_output, command, bad):
    tmp, _ = data
    if command == "fit":
        good = cli_json(capsys, "fit", tmp / "runs.csv", "--bootstrap", "10", "--json")
    else:
        good = cli_json(capsys, "backtest", tmp / "runs.csv", "--holdout", "largest C", "--bootstrap", "10", "--json")
    check_output(good, command)
    with pytest.raises(jsonschema.ValidationError):
        check_output({**good, **bad}, command)

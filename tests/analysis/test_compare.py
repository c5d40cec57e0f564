"""`analysis.compare`: the frontier and its inverse against the closed forms, k = m^2 recovered with an
interval that holds it, the trend's sign, the form rule, the provenance checks and `scaling compare`."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.compare import Comparison, compute_for_loss, frontier_loss, merge_budgets, multipliers
from analysis.errors import InputError
from analysis.io import load_points, load_points_frame
from analysis.laws import ChinchillaLaw, KaplanLawND
from orchestrator.cli import main
from orchestrator.cli.compare import format_comparison
from synthetic_sweep import SMALL_GRID, TRUE_LAW, isoflop_table

BUDGETS = (1e16, 3e16, 1e17, 3e17, 1e18)


def scaled(law, m):
    return lambda N, D: law((m(N) if callable(m) else m) * N, (m(N) if callable(m) else m) * D)


def points(law, seed, noise=0.01):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_points_frame(isoflop_table(law, BUDGETS, noise=noise, seed=seed))[1]


@pytest.fixture(scope="module")
def constant_gain():
    """B = A's law at (1.5 N, 1.5 D): k = 2.25 at every budget."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Comparison(bootstrap=60, fit_kwargs={"init_grid": SMALL_GRID}).fit(
            points(TRUE_LAW, 0), points(scaled(TRUE_LAW, 1.5), 1))


def test_frontier_and_its_inverse_match_the_closed_form():
    C = np.geomspace(1e15, 1e24, 7)
    closed = np.array([TRUE_LAW(*TRUE_LAW.compute_optimal(c)) for c in C])
    np.testing.assert_allclose(frontier_loss(TRUE_LAW, C), closed, rtol=1e-6)
    np.testing.assert_allclose(compute_for_loss(TRUE_LAW, closed, 1e12, 1e27), C, rtol=1e-4)
    assert compute_for_loss(TRUE_LAW, np.array([TRUE_LAW.E * 0.99]), 1e12, 1e27)[0] == np.inf   # below E: never
    # the same budget measured as 6ND of two sweeps' shapes counts once
    assert merge_budgets([1e11, 0.98e11, 3e11, 3.01e11, 1e12]) == pytest.approx([0.99e11, 3.005e11, 1e12], rel=1e-3)


@pytest.mark.parametrize("m", [1.2, 2.0])
def test_a_scaled_law_is_worth_m_squared_at_every_budget(m):
    C = np.geomspace(1e16, 1e22, 5)
    np.testing.assert_allclose(multipliers(TRUE_LAW, scaled(TRUE_LAW, m), C), m * m, rtol=1e-4)
    kaplan = KaplanLawND(alpha_N=0.076, alpha_D=0.095, N_c=8.8e13, D_c=5.4e13)
    np.testing.assert_allclose(multipliers(kaplan, scaled(kaplan, m), C), m * m, rtol=1e-3)


def test_k_recovered_inside_its_interval_and_no_trend(constant_gain):
    c = constant_gain
    assert c.law_["shared"] and c.law_["form"] == "chinchilla"
    budgets = [i for i, kind in enumerate(c.kind_) if kind == "budget"]
    assert len(budgets) == 5 and c.kind_[-1] == "extrapolated" and c.C_[-1] == pytest.approx(100 * 1e18)
    for i in budgets:
        lo, hi = c.k_interval_[i]
        assert lo <= 2.25 <= hi and c.resolved_[i]            # k = 2.25 inside; k = 1 outside
    lo, hi = c.trend_interval_
    assert lo <= 0 <= hi
    assert np.all(c.widening_ >= 1.0)


def test_a_shrinking_gain_has_a_negative_trend():
    m = lambda N: 2.0 * (np.asarray(N, dtype=float) / 1e7) ** -0.15   # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = Comparison(bootstrap=30, fit_kwargs={"init_grid": SMALL_GRID}).fit(
            points(TRUE_LAW, 2, noise=0.004), points(scaled(TRUE_LAW, m), 3, noise=0.004))
    assert c.trend_ < 0 and c.k_[0] > c.k_[4]
    assert "shrinks" in c.sentence()


def test_json_has_the_issue_shape(constant_gain):
    d = constant_gain.to_dict()
    assert {"multiplier", "trend", "law", "base", "variant"} <= set(d)
    row = d["multiplier"][0]
    assert {"C", "k", "interval"} <= set(row) and row["kind"] == "budget"
    assert {"per_decade", "interval"} <= set(d["trend"])
    assert [r["item"] for r in d["base"]["checklist"]][:3] == ["form", "n_convention", "flop_count"]
    json.dumps(d, allow_nan=False)


def test_mixed_hashes_are_refused_in_one_fit_unless_allowed(tmp_path):
    df = isoflop_table(TRUE_LAW, BUDGETS)
    df["data_fingerprint"] = ["aaaa"] * 10 + ["bbbb"] * (len(df) - 10)
    df.to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(InputError, match="--allow-mixed"):
        load_points(tmp_path / "m.csv")
    pts = load_points(tmp_path / "m.csv", allow_mixed=True)
    assert pts.provenance["eval_data_hash"].startswith("mixed: ") and "aaaa (10 rows)" in pts.provenance["eval_data_hash"]
    df["data_fingerprint"] = "aaaa"
    df.to_csv(tmp_path / "one.csv", index=False)
    assert load_points(tmp_path / "one.csv").provenance["eval_data_hash"] == "aaaa"
    df.drop(columns="data_fingerprint").to_csv(tmp_path / "none.csv", index=False)
    assert "eval_data_hash" not in load_points(tmp_path / "none.csv").provenance


def test_fit_json_checklist_says_what_is_not_recorded(tmp_path, capsys, check_output):
    isoflop_table(TRUE_LAW, BUDGETS, noise=0.004).to_csv(tmp_path / "t.csv", index=False)
    assert main(["fit", str(tmp_path / "t.csv"), "--bootstrap", "10", "--json"]) == 0
    d = check_output(json.loads(capsys.readouterr().out), "fit")
    items = {r["item"]: r for r in d["checklist"]}
    assert not items["eval_data_hash"]["recorded"] and items["eval_data_hash"]["answer"] == "not recorded"
    assert not items["loss"]["recorded"]
    assert items["bootstrap"]["answer"].startswith("10 resamples") and "Huber" in items["objective"]["answer"]
    assert "starts" in items["initialisation"]["answer"]


def test_scaling_compare_cli_json_text_and_report(tmp_path, capsys, check_output):
    isoflop_table(TRUE_LAW, BUDGETS, noise=0.004, seed=0).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(isoflop_table(scaled(TRUE_LAW, 1.5), BUDGETS, noise=0.004, seed=1)).to_csv(tmp_path / "b.csv",
                                                                                          index=False)
    argv = ["compare", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--bootstrap", "20", "--to", "1e21"]
    assert main(argv + ["--json", "--out", str(tmp_path / "c.html")]) == 0
    d = check_output(json.loads(capsys.readouterr().out), "compare")
    assert d["to"] == 1e21 and d["multiplier"][-1]["C"] == 1e21 and d["report"].endswith("c.html")
    html = (tmp_path / "c.html").read_text()
    assert "plotly" in html and "Reporting checklist" in html and "k(C)" in html
    text = format_comparison(d)
    assert "trend: d log10 k / d log10 C" in text and "extrapolated" in text

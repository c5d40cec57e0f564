"""Planning from fitted laws: published anchors, closed form vs numeric, consistency, intervals, warnings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analysis.errors import InputError
from analysis.laws import (
    CHINCHILLA_PAPER,
    CHINCHILLA_PAPER_UNROUNDED,
    EPOCH_2024,
    KAPLAN_2020_ND,
    ChinchillaLaw,
)
from analysis.plan import Planner
from analysis.solvers import compute_optimal, numeric_budget

GOPHER_BUDGET = 5.76e23  # FLOPs; Hoffmann et al. 2022 trained Chinchilla (70B, 1.4T) at Gopher's compute


def fit_dict(law: ChinchillaLaw = EPOCH_2024, n_boot: int = 400, spread: float = 0.02, seed: int = 0, **extra) -> dict:
    """A fit JSON as `scaling fit --out` writes it (approach 3), with lognormal bootstrap samples."""
    rng = np.random.default_rng(seed)
    boot = {p: (getattr(law, p) * np.exp(rng.normal(0, spread, n_boot))).tolist() for p in ("E", "A", "B", "alpha", "beta")}
    d = {
        "approach": 3, "law": "chinchilla", **law.to_dict(), "a": law.a, "b": law.b, "G": law.G,
        "n_points": 240, "objective": 0.001, "delta": 1e-3, "n_convention": "total", "flops_convention": "6ND",
        "interval_level": 0.95, "bootstrap": boot,
        "data_range": {"N": [5.7e7, 1.6e10], "D": [1e9, 2e11], "C": [6e18, 1.3e22], "loss": [2.07, 5.0]},
        "source": "test fixture",
    }
    d.update(extra)
    return d


# ---- Epoch's point: the same planner, three parameter sets, very different plans at Gopher's budget


def test_gopher_plan_with_epoch_fit_is_73B_on_1_3T_tokens():
    plan = Planner(EPOCH_2024).budget(GOPHER_BUDGET)
    assert plan.N == pytest.approx(7.3e10, rel=0.02)
    assert plan.D == pytest.approx(1.3e12, rel=0.02)
    assert plan.tokens_per_param == pytest.approx(18, abs=0.5)
    assert plan.C == pytest.approx(GOPHER_BUDGET, rel=1e-12)


def test_gopher_plan_with_hoffmann_unrounded_params_is_59_tokens_per_param():
    assert Planner(CHINCHILLA_PAPER_UNROUNDED).budget(GOPHER_BUDGET).tokens_per_param == pytest.approx(59, abs=0.5)


def test_gopher_plan_with_hoffmann_rounded_params_is_93_tokens_per_param():
    plan = Planner(CHINCHILLA_PAPER).budget(GOPHER_BUDGET)
    assert plan.tokens_per_param == pytest.approx(93, abs=0.7)
    # rounding alone moves the planned model from 40B to 32B parameters
    assert plan.N < 0.85 * Planner(CHINCHILLA_PAPER_UNROUNDED).budget(GOPHER_BUDGET).N


# ---- closed form vs numeric


LAWS = [EPOCH_2024, CHINCHILLA_PAPER, CHINCHILLA_PAPER_UNROUNDED, ChinchillaLaw(E=2.5, A=80.0, B=3000.0, alpha=0.25, beta=0.45)]


@pytest.mark.parametrize("law", LAWS, ids=["epoch", "paper", "unrounded", "synthetic"])
@pytest.mark.parametrize("C", [1e18, 5.76e23, 1e27])
def test_closed_form_and_numeric_budget_plans_agree_to_1e_6(law, C):
    closed = Planner(law).budget(C)
    numeric = Planner(law, method="numeric").budget(C)
    for key in ("N", "D", "loss"):
        assert getattr(numeric, key) == pytest.approx(getattr(closed, key), rel=1e-6), key
    assert closed.method.startswith("closed") and numeric.method == "numeric"


@pytest.mark.parametrize("law", LAWS[:2], ids=["epoch", "paper"])
def test_closed_form_and_numeric_agree_for_every_plan_kind(law):
    closed, numeric = Planner(law), Planner(law, method="numeric")
    ref = closed.budget(3e21)
    cases = [
        ("params", (ref.N,), {}),
        ("tokens", (ref.D,), {}),
        ("target_loss", (ref.loss + 0.05,), {}),
        ("inference", (5e11,), {"budget": 3e21}),
    ]
    for name, args, kw in cases:
        a, b = getattr(closed, name)(*args, **kw), getattr(numeric, name)(*args, **kw)
        assert b.N == pytest.approx(a.N, rel=1e-6), name
        assert b.D == pytest.approx(a.D, rel=1e-6), name


def test_compute_optimal_helper_vectorises_and_rejects_closed_form_for_other_laws():
    C = np.array([1e19, 1e21, 1e23])
    N, D = compute_optimal(EPOCH_2024, C)
    assert N.shape == (3,) and np.allclose(6 * N * D, C, rtol=1e-12)
    Nn, Dn = compute_optimal(EPOCH_2024, C, method="numeric")
    assert np.allclose(Nn, N, rtol=1e-6)
    with pytest.raises(InputError, match="closed-form"):
        compute_optimal(KAPLAN_2020_ND, C, method="closed")


def test_numeric_plan_of_kaplan_law_matches_its_analytic_optimum():
    # L = [(Nc/N)^r + Dc/D]^alpha_D with r = alpha_N/alpha_D; at fixed C = 6ND the bracket is
    # (Nc/N)^r + 6 Dc N / C, minimised at N* = (r Nc^r C / (6 Dc))^(1/(r+1)).
    law = KAPLAN_2020_ND
    r = law.alpha_N / law.alpha_D
    for C in (1e19, 1e23):
        N_star = (r * law.N_c**r * C / (6 * law.D_c)) ** (1 / (r + 1))
        N, D = numeric_budget(law, C)
        assert N == pytest.approx(N_star, rel=1e-6)
        assert 6 * N * D == pytest.approx(C, rel=1e-12)


# ---- consistency between the plan kinds


@pytest.mark.parametrize("method", ["auto", "numeric"])
def test_fixed_n_fixed_d_and_target_loss_plans_meet_the_budget_plan_at_the_optimum(method):
    planner = Planner(EPOCH_2024, method=method)
    ref = planner.budget(1e22)
    for plan in (planner.params(ref.N), planner.tokens(ref.D), planner.target_loss(ref.loss)):
        for key in ("N", "D", "C", "loss"):
            assert getattr(plan, key) == pytest.approx(getattr(ref, key), rel=1e-6), (plan.kind, key)


def test_fixed_n_plan_is_the_cheapest_way_to_its_own_loss():
    planner = Planner(EPOCH_2024)
    plan = planner.params(7e9)
    # any other split of the same FLOPs with N = 7e9 +- 20% reaches a higher loss
    for f in (0.8, 1.25):
        N = plan.N * f
        assert EPOCH_2024(N, plan.C / (6 * N)) > plan.loss


def test_inference_plan_without_inference_is_the_budget_plan_and_with_it_is_smaller_and_cheaper():
    planner = Planner(EPOCH_2024)
    ref = planner.budget(1e22)
    tiny = planner.inference(1.0, budget=1e22)
    assert tiny.N == pytest.approx(ref.N, rel=1e-6) and tiny.D == pytest.approx(ref.D, rel=1e-6)
    big = planner.inference(2e12, budget=1e22)
    assert big.N < ref.N and big.D > ref.D
    assert big.loss == pytest.approx(ref.loss, rel=1e-9)  # equal quality
    assert big.C > ref.C  # trains longer ...
    assert big.total_flops < ref.C + 2 * ref.N * 2e12  # ... and still saves overall
    assert big.reference["total_flops_saved"] == pytest.approx(1 - big.total_flops / (ref.C + 2 * ref.N * 2e12))
    # more inference demand -> smaller model
    assert planner.inference(2e13, budget=1e22).N < big.N


# ---- intervals, warnings, hardware


def test_bootstrap_fit_gives_intervals_around_every_planned_number():
    planner = Planner.from_fit(fit_dict())
    plan = planner.budget(1e22)
    assert plan.n_bootstrap == 400 and plan.interval_level == 0.95
    for key in ("N", "D", "loss", "tokens_per_param"):
        lo, hi = plan.intervals[key]
        assert lo < getattr(plan, key) < hi, key
    assert "C" not in plan.intervals  # fixed by the question
    narrow = Planner.from_fit(fit_dict(spread=0.005)).budget(1e22)
    assert np.ptp(narrow.intervals["N"]) < 0.5 * np.ptp(plan.intervals["N"])
    p80 = Planner.from_fit(fit_dict(), interval_level=0.8).budget(1e22)
    assert p80.intervals["N"][0] > plan.intervals["N"][0] and p80.intervals["N"][1] < plan.intervals["N"][1]
    for kind, args, kw in (("params", (7e9,), {}), ("tokens", (2e12,), {}), ("target_loss", (2.2,), {}),
                           ("inference", (2e12,), {"budget": 1e22})):
        p = getattr(planner, kind)(*args, **kw)
        assert p.intervals, kind
        lo, hi = p.intervals["C"] if "C" in p.intervals else p.intervals["N"]
        assert lo < hi


def test_plan_reads_a_fit_json_file(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fit_dict(n_boot=50)))
    plan = Planner.from_fit(path).budget(GOPHER_BUDGET)
    assert plan.N == pytest.approx(Planner(EPOCH_2024).budget(GOPHER_BUDGET).N, rel=1e-9)
    d = plan.to_dict()
    json.dumps(d)
    assert d["units"]["N"] == "parameters" and d["units"]["loss"] == "nats/token"


def test_extrapolation_beyond_100x_the_largest_budget_warns():
    planner = Planner.from_fit(fit_dict(n_boot=0, bootstrap=None))
    assert not any("extrapolation" in w for w in planner.budget(1.3e22 * 50).warnings)
    far = planner.budget(1.3e22 * 500)
    assert far.extrapolation_factor == pytest.approx(500)
    assert any("extrapolation" in w and "500x" in w for w in far.warnings)
    assert "extrapolation" in far.summary()


def test_wall_clock_from_peak_flops_and_mfu():
    plan = Planner(EPOCH_2024).budget(1e22, flops_per_s=989e12, mfu=0.4, devices=8)
    assert plan.wall_clock_s == pytest.approx(1e22 / (989e12 * 0.4 * 8))
    assert plan.device_hours == pytest.approx(plan.wall_clock_s * 8 / 3600)
    assert "days" in plan.summary() and "device-hours" in plan.summary()
    with pytest.raises(InputError, match="mfu"):
        Planner(EPOCH_2024).budget(1e22, flops_per_s=989e12, mfu=1.5)
    with pytest.raises(InputError, match="both"):
        Planner(EPOCH_2024).budget(1e22, flops_per_s=989e12)


def test_summary_gives_units_and_intervals():
    text = Planner.from_fit(fit_dict()).budget(GOPHER_BUDGET).summary()
    assert "73.3B parameters" in text and "1.31T tokens" in text and "nats/token" in text
    assert "95% interval" in text and "FLOPs" in text


# ---- errors and other fit kinds


def test_unreachable_target_loss_is_a_one_line_input_error():
    with pytest.raises(InputError, match="irreducible loss E = 1.8172") as exc:
        Planner(EPOCH_2024).target_loss(1.5)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("bad, match", [
    ({"approach": 3, "E": 1.8}, "no field 'A'"),
    ({"approach": 7}, "field 'approach'"),
    ({"approach": 2, "a": 0.5}, "no field 'N_opt_law'"),
])
def test_bad_fit_dicts_name_the_field(bad, match):
    with pytest.raises(InputError, match=match):
        Planner.from_fit(bad)


def test_missing_fit_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Planner.from_fit(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not a fit JSON"):
        Planner.from_fit(tmp_path / "bad.json")


def test_approach_2_fit_plans_along_its_frontier_and_refuses_loss_questions():
    fit = {"approach": 2, "a": 0.5, "b": 0.5, "N_opt_law": {"k": 0.1, "p": 0.5}, "D_opt_law": {"k": 1 / 0.6, "p": 0.5},
           "data_range": {"C": [1e18, 1e20]}}
    planner = Planner.from_fit(fit)
    plan = planner.budget(1e22)
    assert plan.N == pytest.approx(0.1 * 1e11) and plan.C == pytest.approx(1e22)
    assert plan.loss is None and any("no loss surface" in w for w in plan.warnings)
    assert planner.params(plan.N).C == pytest.approx(1e22, rel=1e-9)
    with pytest.raises(InputError, match="loss surface"):
        planner.target_loss(2.0)
    with pytest.raises(InputError, match="loss surface"):
        planner.inference(1e12, budget=1e22)


def test_kaplan_fit_dict_plans_numerically():
    fit = {"approach": "kaplan", "alpha_N": 0.076, "N_c": 6.4e13, "alpha_D": 0.103, "D_c": 1.8e13}
    plan = Planner.from_fit(fit).budget(1e21)
    assert plan.method == "numeric"
    assert math.isfinite(plan.loss) and plan.C == pytest.approx(1e21, rel=1e-9)


def test_nonpositive_inputs_are_rejected():
    planner = Planner(EPOCH_2024)
    for call in (lambda: planner.budget(0), lambda: planner.params(-1), lambda: planner.tokens(float("nan"))):
        with pytest.raises(InputError, match="positive"):
            call()
    with pytest.raises(InputError, match="exactly one"):
        planner.inference(1e12)


def test_gopher_plan_from_our_own_fit_of_the_epoch_data(shared_data):
    """The whole path: fit approach 3 to Epoch's digitised Chinchilla points, plan at Gopher's budget."""
    from analysis.fit import ChinchillaFit
    from analysis.io import load_points

    pts = load_points(shared_data / "chinchilla_epoch.csv", n_col="Model Size", c_col="Training FLOP",
                      loss_col="loss", drop_highest=5)
    fit = ChinchillaFit(bootstrap=100, random_state=0).fit(pts)
    plan = Planner.from_fit(fit.to_dict()).budget(GOPHER_BUDGET)
    assert plan.N == pytest.approx(7.3e10, rel=0.03)
    assert plan.D == pytest.approx(1.3e12, rel=0.03)
    assert plan.tokens_per_param == pytest.approx(18, abs=0.7)
    lo, hi = plan.intervals["tokens_per_param"]
    assert lo < 18 < hi and hi < 59  # Hoffmann's unrounded 59 tokens/param lies outside the interval
    assert plan.extrapolation_factor == pytest.approx(GOPHER_BUDGET / pts.C.max())

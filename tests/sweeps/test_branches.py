"""The isoflop-branches design: one WSD trial per size of a shared ladder, a cool-down branch at every
budget's D below the largest, its points and FLOPs (flops_total vs flops_one_run_per_point)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from scaling.plan import make_plan
from sweeps import store
from sweeps.design import expand, expected_optimum, totals
from sweeps.spec import SpecError, load_spec, parse_yaml, validate_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "sweeps" / "examples"
BASE = ("vocab_size: 512\ncontext: 64\nbatch: {tokens: 512}\nmin_steps: 10\ndesign: isoflop-branches\n"
        "schedule: {kind: wsd, decay_fraction: 0.2}\nisoflop: {sizes_per_budget: 5, spread: 2.5, tokens_per_param: 25}\n")


def spec_of(text: str):
    """BASE with the fields of `text` put in its place (a YAML file may name a key once)."""
    return validate_spec({**parse_yaml(BASE, "s.yaml"), **parse_yaml(text, "s.yaml")}, "s.yaml")


def test_example_has_every_budget_profile_from_one_trial_per_size_and_saves_half_the_flops():
    spec = load_spec(EXAMPLES / "isoflop-branches-cpu.yaml")
    trials = expand(spec)
    assert len(spec.budgets) >= 5 * (math.log10(max(spec.budgets) / min(spec.budgets)))  # >= 5 per decade
    shapes = [t.shape for t in trials]
    assert len(set(shapes)) == len(shapes)  # one trial per size (one LR, one seed)
    by_budget: dict[float, list[tuple[int, int]]] = {}
    for t in trials:
        pts = t.planned_points
        assert [p["kind"] for p in pts] == ["cooldown"] * (len(pts) - 1) + ["final"]
        assert pts[-1]["tokens"] == t.tokens  # the trunk trains to its largest D
        assert [p["tokens"] for p in pts] == sorted({p["tokens"] for p in pts})
        cfg = t.config.train
        assert cfg.schedule == "wsd" and cfg.tokens == t.tokens
        plan = make_plan(t.config)
        # every branch ends exactly at its point's D, and starts 20% of that D earlier
        assert [b.end_step * plan.batch_tokens for b in plan.branches] == [p["tokens"] for p in pts[:-1]]
        for b in plan.branches:
            assert b.end_step - b.start_step == max(1, round(0.2 * b.end_step))
        trained = plan.total_steps * plan.batch_tokens
        assert t.flops_total == 6.0 * t.params * trained
        assert t.flops_one_run_per_point == pytest.approx(6.0 * t.params * sum(p["tokens"] for p in pts))
        for p in pts:
            assert p["tokens"] // plan.batch_tokens >= spec.min_steps
            assert 6.0 * t.params * p["tokens"] == pytest.approx(p["budget"], rel=0.01)  # D = C / 6N
            by_budget.setdefault(p["budget"], []).append((t.params, p["tokens"]))
    assert sorted(by_budget) == sorted(spec.budgets)
    for C, group in by_budget.items():
        ns = sorted(n for n, _ in group)
        assert len(ns) == spec.isoflop.sizes_per_budget and ns[0] < expected_optimum(spec, C) < ns[-1]
    tot = totals(trials)
    assert tot["points"] == len(spec.budgets) * spec.isoflop.sizes_per_budget
    assert tot["flops_total"] == pytest.approx(sum(t.flops_total for t in trials))
    assert tot["flops_one_run_per_point"] == pytest.approx(sum(sum(C for C in by_budget) for _ in [0]) * 5, rel=0.01)
    assert tot["flops_saving"] == pytest.approx(1 - tot["flops_total"] / tot["flops_one_run_per_point"])
    assert tot["flops_saving"] >= 0.5


def test_denser_budgets_save_more():
    sparse = totals(expand(spec_of("budgets: [1e10, 1e11]\n")))
    dense = totals(expand(spec_of("budgets: [1e10, 1.58e10, 2.51e10, 3.98e10, 6.31e10, 1e11]\n")))
    assert dense["flops_saving"] > sparse["flops_saving"] > 0


def test_explicit_ladder_gives_each_budget_its_nearest_sizes():
    spec = spec_of("sizes: [20k, 30k, 45k, 68k, 100k, 150k]\nbudgets: [1e11, 3e11]\nisoflop: {sizes_per_budget: 4, "
                   "tokens_per_param: 20}\n")
    trials = expand(spec)
    per_budget = {C: sorted(t.params for t in trials if any(p["budget"] == C for p in t.planned_points))
                  for C in spec.budgets}
    assert all(len(v) == 4 for v in per_budget.values())
    assert per_budget[1e11][0] < per_budget[3e11][0]  # the window moves up with the budget


@pytest.mark.parametrize("text, message", [
    ("budgets: [1e10]\nschedule: {kind: cosine}\n", "schedule.kind: cosine cannot fork cool-down branches"),
    ("budgets: [1e10]\nschedule: {kind: wsd, cooldowns: [0.5]}\n", "schedule.cooldowns: [0.5] are set by the"),
    ("budgets: []\n", "budgets: [] is empty; the isoflop-branches design"),
    ("budgets: [1e10]\ntokens: [1M]\n", "tokens: [1000000] is not used by the isoflop-branches design"),
    ("budgets: [1e11]\nmin_steps: 1000\n", "below min_steps 1000"),
])
def test_bad_branch_specs_fail_in_one_line(text, message):
    with pytest.raises(SpecError) as err:
        expand(spec_of(text))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_collect_puts_each_branch_point_on_its_budget(tmp_path):
    spec = spec_of("budgets: [1e10, 1.58e10, 2.51e10]\n")
    trial = max(expand(spec), key=lambda t: len(t.planned_points))
    plan = trial.row()
    tokens = pd.Series([p["tokens"] for p in trial.planned_points] + [trial.tokens + 512])
    budgets = store.point_budgets(plan, tokens)
    assert budgets[:-1] == [p["budget"] for p in trial.planned_points]
    assert budgets[-1] == trial.planned_points[-1]["budget"]  # unplanned: nearest in log C
    assert store.point_budgets({"budget": 3e10}, tokens) == [3e10] * len(tokens)
    assert store.point_budgets({"budget": None, "points": [{"budget": None, "tokens": 1}]}, tokens) is None


def test_sweep_plan_prints_both_designs_flops(capsys):
    import json

    from orchestrator.cli import main

    path = str(EXAMPLES / "isoflop-branches-cpu.yaml")
    assert main(["sweep", "plan", path, "--no-probe", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    trials = expand(load_spec(path))
    assert d["design"] == "isoflop-branches" and d["n_trials"] == len(d["trials"]) == len(trials)
    assert d["flops_total"] == pytest.approx(sum(t.flops_total for t in trials))
    assert d["flops_one_run_per_point"] == pytest.approx(sum(t.flops_one_run_per_point for t in trials))
    assert d["flops_saving"] == pytest.approx(1 - d["flops_total"] / d["flops_one_run_per_point"])
    assert sum(len(t["points"]) for t in d["trials"]) == d["points"] == 35
    assert main(["sweep", "plan", path, "--no-probe"]) == 0
    text = capsys.readouterr().out
    assert f"{d['flops_total']:.3g} FLOPs (6ND, cool-down branches included), 35 fit-ready points" in text
    assert f"one run per point: {d['flops_one_run_per_point']:.3g} FLOPs (6ND); this design saves " \
           f"{100 * d['flops_saving']:.0f}%" in text

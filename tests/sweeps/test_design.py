"""Designs expand to the trials a scaling study needs: N, D, C, steps and resources per trial."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from scaling.counting import flops_per_token_detailed, param_counts
from sweeps.design import expand, expected_optimum, totals
from sweeps.estimate import estimate, schedule_makespan
from sweeps.spec import SpecError, load_spec, parse_yaml, validate_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "sweeps" / "examples"
BASE = "vocab_size: 512\ncontext: 64\nbatch: {tokens: 512}\nmin_steps: 10\n"


def spec_of(text: str):
    """BASE with the fields of `text` on top (a spec may not name a field twice, so they are merged)."""
    return validate_spec({**parse_yaml(BASE, "s.yaml"), **parse_yaml(text, "s.yaml")}, "s.yaml")


def test_isoflop_brackets_the_expected_optimum_and_spends_each_budget():
    spec = load_spec(EXAMPLES / "isoflop-cpu.yaml")
    trials = expand(spec)
    assert len(trials) == 15  # 3 budgets x 5 sizes
    for C in spec.budgets:
        group = [t for t in trials if t.budget == C]
        ns = sorted(t.params for t in group)
        n_star = expected_optimum(spec, C)
        assert len(set(ns)) == 5 and ns[0] < n_star < ns[-1]
        # sizes spread evenly in log N around N*, within the shape picker's granularity
        assert ns[-1] / ns[0] == pytest.approx(spec.isoflop.spread**2, rel=0.35)
        for t in group:
            assert t.flops_6nd == 6.0 * t.params * t.tokens  # exactly what the trial trains
            assert t.flops_6nd == pytest.approx(C, rel=0.01)  # D = C / 6N, rounded to whole steps
            assert t.tokens % t.config.train.batch_tokens == 0 and t.steps >= spec.min_steps
            assert t.flops_detailed == pytest.approx(flops_per_token_detailed(t.config.model) * t.tokens)
            assert param_counts(t.config.model)["params"] == t.params
            assert t.config.train.threads == 1 and t.config.train.device == "cpu" and t.config.train.nproc == 1
            assert t.config.sweep == "isoflop-cpu" and t.config.run_id == t.run_id
    assert len({t.run_id for t in trials}) == len(trials)


def test_grid_is_sizes_times_data_times_lr_multipliers_times_seeds():
    spec = spec_of("design: grid\nsizes: [16k, {n_layer: 3, d_model: 32, n_head: 2}]\ntokens: [100k, 200k]\n"
                   "lr: {rule: fixed, value: 1e-3, multipliers: [0.5, 2]}\nseeds: [0, 1]\n")
    trials = expand(spec)
    assert len(trials) == 2 * 2 * 2 * 2
    assert {t.tokens for t in trials} == {99840, 200192}  # whole steps of 512 tokens (195, 391)
    assert {t.config.train.lr for t in trials} == {5e-4, 2e-3}
    assert {t.config.train.seed for t in trials} == {0, 1}
    explicit = [t for t in trials if t.config.model.n_layer == 3]
    assert explicit and all(t.config.model.d_model == 32 and t.target_params is None for t in explicit)


def test_lr_multipliers_scale_the_default_width_rule():
    from scaling.recipe import default_lr

    trials = expand(spec_of("design: grid\nsizes: [{n_layer: 2, d_model: 64, n_head: 4}]\ntokens: [100k]\n"
                            "lr: {rule: default, multipliers: [0.5, 1, 2]}\n"))
    base = default_lr(trials[0].config.model)
    by_mult = {t.lr_multiplier: t.config.train.lr for t in trials}
    assert by_mult[0.5] == pytest.approx(base / 2) and by_mult[2] == pytest.approx(2 * base)
    assert by_mult[1] is None  # x1 leaves the run on its own default, recorded as such in trial.json
    assert len({t.run_id for t in trials}) == 3


def test_batch_multipliers_cross_the_lr_grid_and_the_plan_prices_it():
    spec = spec_of("design: grid\nsizes: [{n_layer: 2, d_model: 64, n_head: 4}]\ntokens: [100k, 200k]\n"
                   "lr: {rule: fixed, value: 1e-3, multipliers: [0.5, 1, 2]}\n"
                   "batch: {tokens: 512, multipliers: [0.5, 1, 2]}\n")
    trials = expand(spec)
    assert len(trials) == 2 * 3 * 3 and len({t.run_id for t in trials}) == 18
    assert {t.config.train.batch_tokens for t in trials} == {256, 512, 1024}    # whole sequences of 64
    assert all(t.tokens % t.config.train.batch_tokens == 0 for t in trials)
    assert {(t.lr_multiplier, t.batch_multiplier) for t in trials} == {(a, b) for a in (0.5, 1, 2) for b in (0.5, 1, 2)}
    tot = totals(trials)
    one = sum(t.flops_total for t in trials if t.lr_multiplier == 1 and t.batch_multiplier == 1)
    assert tot["settings_per_point"] == 9 and tot["flops_one_setting"] == pytest.approx(one)
    assert tot["grid_cost_ratio"] == pytest.approx(tot["flops_total"] / one) and 8 < tot["grid_cost_ratio"] < 10
    with pytest.raises(SpecError, match="multipliers"):
        spec_of("design: grid\nsizes: [16k]\ntokens: [100k]\nbatch: {tokens: 512, multipliers: [1, -2]}\n")


def test_grid_tokens_per_param_and_ladder_multiples():
    grid = expand(spec_of("design: grid\nsizes: [16k, 40k]\ntokens_per_param: [10, 40]\n"))
    for t in grid:
        assert t.tokens / t.params == pytest.approx(t.tokens_per_param) and round(t.tokens_per_param, -1) in (10, 40)
    ladder = expand(spec_of("design: ladder\nsizes: [16k, 40k]\nladder: {multiples: [1, 2, 5], tokens_per_param: 20}\n"))
    assert len(ladder) == 6
    assert sorted({round(t.tokens_per_param / 20) for t in ladder}) == [1, 2, 5]


def test_lr_and_batch_rules_of_size():
    trials = expand(spec_of("design: grid\nsizes: [16k, 80k]\ntokens: [400k]\n"
                            "lr: {rule: power, value: 1e-3, reference_params: 1e4, exponent: -0.5}\n"
                            "batch: {rule: power, tokens: 512, reference_tokens: 1e5, exponent: 0.5}\n"))
    for t in trials:
        assert t.config.train.lr == pytest.approx(1e-3 * (t.params / 1e4) ** -0.5)
        assert t.config.train.batch_tokens == 1024  # 512 * (4e5 / 1e5)^0.5, a whole number of 64-token rows
    default = expand(spec_of("design: grid\nsizes: [16k]\ntokens: [100k]\n"))
    assert default[0].config.train.lr is None  # train() applies scaling.recipe.default_lr


def test_gpu_resources_become_ddp_processes():
    spec = load_spec(EXAMPLES / "chinchilla-gpu.yaml")
    trials = expand(spec)
    assert len(trials) == 35
    t = trials[0]
    assert t.gpus == 8 and t.config.train.nproc == 8 and t.config.train.device == "cuda"
    assert t.config.train.threads == 4  # the trial's 32 CPUs shared by its 8 processes
    assert spec.resources.nproc == 8 and spec.resources.worker_gpus == 1 and t.cpus == 32
    assert totals(trials)["flops_6nd"] == pytest.approx(7 * sum(spec.budgets), rel=0.01)
    half = expand(spec_of("design: grid\nsizes: [16k]\ntokens: [100k]\nresources: {gpus: 0.5}\n"))[0]
    assert half.config.train.nproc == 1 and half.config.train.device == "cuda" and half.gpus == 0.5


def test_explicit_isoflop_sizes_must_have_enough_steps_everywhere():
    with pytest.raises(SpecError, match=r"budgets\[0\]: the .*-param model .* below min_steps 400"):
        expand(spec_of("design: isoflop\nbudgets: [4e10, 1e11]\nsizes: [16k, 28k, 40k]\nmin_steps: 400\n"))


def test_wall_time_estimate_schedules_longest_first():
    assert schedule_makespan([10, 10, 10, 10], 2) == 20
    assert schedule_makespan([9, 5, 4, 3, 3], 2) == 12
    spec = spec_of("design: grid\nsizes: [16k, 28k]\ntokens: [100k]\nresources: {cpus: 1}\n")
    trials = expand(spec)
    est = estimate(trials, slots=2, probe=True, probe_steps=1)
    assert est.source == "probe" and all(v > 0 and math.isfinite(v) for v in est.tokens_per_s.values())
    assert est.wall_s == pytest.approx(max(est.per_trial_s.values()))
    assumed = estimate(trials, slots=1, probe=False)
    assert assumed.source == "assumed" and assumed.wall_s == pytest.approx(sum(assumed.per_trial_s.values()))

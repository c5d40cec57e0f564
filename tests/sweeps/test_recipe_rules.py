"""The per-trial recipe rules of a sweep spec: AdamW's beta2 fixed or set by the batch (`adam`), the
warmup as a fraction of each trial's shortest point (`schedule.warmup_fraction`); both validated at the
edge in one line and recorded in every trial's config (and so in its trial.json)."""

from __future__ import annotations

import math

import pytest

from scaling.plan import make_plan
from sweeps.design import expand
from sweeps.spec import SpecError, parse_yaml, validate_spec

BRANCHES = ("vocab_size: 512\ncontext: 64\nmin_steps: 10\ndesign: isoflop-branches\nbudgets: [1e11, 2e11, 4e11]\n"
            "schedule: {kind: wsd, decay_fraction: 0.2}\nisoflop: {sizes_per_budget: 5, spread: 2.5, tokens_per_param: 25}\n")
GRID = "vocab_size: 512\ncontext: 64\nmin_steps: 10\ndesign: grid\nsizes: [20k, 60k]\ntokens: [300k]\n"


def spec_of(base: str, text: str):
    return validate_spec({**parse_yaml(base, "s.yaml"), **(parse_yaml(text, "s.yaml") if text else {})}, "s.yaml")


@pytest.mark.parametrize("batch", [512, 2048])
def test_beta2_half_life_gives_each_batch_the_same_token_half_life(batch):
    T = 100_000
    trials = expand(spec_of(GRID, f"batch: {{tokens: {batch}}}\nadam: {{beta2_half_life_tokens: {T}}}"))
    for t in trials:
        b2 = t.config.train.beta2
        assert b2 == pytest.approx(2.0 ** (-t.config.train.batch_tokens / T))
        # the second-moment average halves its weight on the past after T tokens = T / B steps
        assert b2 ** (T / t.config.train.batch_tokens) == pytest.approx(0.5)
    assert 0.98 < trials[0].config.train.beta2 < 1
    # a larger batch gets a smaller beta2 (fewer steps per half-life)
    other = expand(spec_of(GRID, f"batch: {{tokens: {4 * batch}}}\nadam: {{beta2_half_life_tokens: {T}}}"))
    assert other[0].config.train.beta2 < trials[0].config.train.beta2


def test_fixed_betas_and_defaults():
    t = expand(spec_of(GRID, "adam: {beta1: 0.8, beta2: 0.99}"))[0].config.train
    assert (t.beta1, t.beta2) == (0.8, 0.99)
    d = expand(spec_of(GRID, ""))[0].config.train
    assert (d.beta1, d.beta2, d.warmup_tokens) == (0.9, 0.95, None)  # TrainConfig's defaults, the size rule


def test_warmup_fraction_scales_to_the_shortest_branch_of_a_branch_trial():
    trials = expand(spec_of(BRANCHES, "batch: {tokens: 512}\nschedule: {kind: wsd, decay_fraction: 0.2, warmup_fraction: 0.1}"))
    assert any(len(t.planned_points) > 1 for t in trials)
    for t in trials:
        shortest = t.planned_points[0]["tokens"]
        plan = make_plan(t.config)
        assert plan.warmup_tokens == max(512, round(0.1 * shortest))
        # every point, branch or final, warms up over at most ~10% of its own tokens
        for p in t.planned_points:
            assert plan.warmup_tokens <= max(512, 0.1 * p["tokens"]) + 1
    grid = expand(spec_of(GRID, "batch: {tokens: 512}\nschedule: {warmup_fraction: 0.05}"))
    assert [t.config.train.warmup_tokens for t in grid] == [round(0.05 * t.tokens) for t in grid]


@pytest.mark.parametrize("text, message", [
    ("adam: {beta2: 1.0}", "adam.beta2: 1 is out of range (must be < 1)"),
    ("adam: {beta2: 0.99, beta2_half_life_tokens: 100k}", "adam.beta2: 0.99 and beta2_half_life_tokens both set"),
    ("adam: {beta2_half_life_tokens: -5}", "adam.beta2_half_life_tokens: -5 is not a positive token count"),
    ("adam: {beta2_half_life_tokens: 1e300}", "gives beta2 = 1 to float precision at a batch of"),
    ("adam: {beta3: 0.9}", "adam.beta3: unknown field"),
    ("train: {beta2: 0.99}", "train.beta2: is set by the spec's adam.beta2"),
    ("schedule: {warmup_fraction: 0.6}", "schedule.warmup_fraction: 0.6 is out of range (must be <= 0.5)"),
    ("schedule: {warmup_fraction: 0.1, warmup_tokens: 1000}", "warmup_fraction: 0.1 and warmup_tokens both set"),
    ("schedule: {warmup_fraction: .nan}", "schedule.warmup_fraction"),
])
def test_bad_recipe_rules_fail_in_one_line(text, message):
    with pytest.raises(SpecError) as err:
        expand(spec_of(GRID, text))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_heldout_of_the_demo_inherits_the_recipe():
    """The demo's held-out run is the sweep's recipe: its spec keeps `adam` and the warmup rule."""
    from orchestrator.demo import _heldout_spec
    from scaling.config import ModelConfig

    spec = spec_of(BRANCHES, "batch: {tokens: 512}\nadam: {beta2_half_life_tokens: 100k}\n"
                             "schedule: {kind: wsd, decay_fraction: 0.2, warmup_fraction: 0.05}")
    model = ModelConfig(n_layer=2, d_model=32, n_head=4, context=64, vocab_size=512)
    t = expand(_heldout_spec(spec, model, 1_000_000, 1), "held-out run")[0].config.train
    assert t.schedule == "wsd" and not t.cooldowns
    assert t.beta2 == pytest.approx(2.0 ** (-512 / 100_000))
    assert t.warmup_tokens == round(0.05 * t.tokens)
    assert math.isclose(t.tokens, 1_000_000, rel_tol=0.001)

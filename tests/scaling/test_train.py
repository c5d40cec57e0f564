"""Real training runs on a slice of the default corpus: learning, outputs, WSD branches, divergence, plans."""

from __future__ import annotations

import csv
import json
import math
import resource

import pytest

from scaling import recipe
import torch

from scaling.config import RunConfig
from scaling.errors import ConfigError
from contracts.runs_table import CURVE_COLUMNS, POINT_COLUMNS, TRIAL_COLUMNS
from scaling.train import make_plan, train

TINY_MODEL = {"n_layer": 1, "d_model": 32, "n_head": 2, "context": 64, "vocab_size": 512}


def tiny_config(stdlib_data_config, model=None, **train_kw) -> RunConfig:
    train_cfg = {"tokens": 16 * 1024, "batch_tokens": 1024, "eval_tokens": 4096, "threads": 1, "lr": 3e-3} | train_kw
    return RunConfig.model_validate(
        {"model": model or TINY_MODEL, "data": stdlib_data_config.model_dump(), "train": train_cfg}
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.slow
def test_two_layer_model_learns_well_below_unigram_entropy_within_60_cpu_seconds(stdlib_data, stdlib_data_config, tmp_path):
    """Issue 3: 2 layers, d_model 64, default corpus: validation loss well below the unigram entropy of its tokens."""
    model = {"n_layer": 2, "d_model": 64, "n_head": 4, "context": 128, "vocab_size": 512}
    cfg = tiny_config(stdlib_data_config, model=model, tokens=500_000, batch_tokens=2048, lr=None, eval_tokens=32768)
    cpu0 = _cpu_seconds()
    result = train(cfg, tmp_path / "run", data=stdlib_data, progress=False)
    cpu = _cpu_seconds() - cpu0
    trial = result.trial
    print(f"final_loss {trial['final_loss']:.3f} vs unigram entropy {stdlib_data.unigram_entropy:.3f}, "
          f"{cpu:.1f} CPU s, {trial['tokens_per_s']:.0f} tok/s")
    assert trial["status"] == "completed"
    assert trial["final_loss"] < stdlib_data.unigram_entropy - 1.0  # at least 1 nat/token better than unigram
    assert cpu < 60
    losses = [row["val_loss"] for row in result.curves]
    assert losses[-1] < losses[0] - 1.5


def test_outputs_follow_the_contract(stdlib_data, stdlib_data_config, tmp_path):
    calls = []
    cfg = tiny_config(stdlib_data_config, eval_interval=4).model_copy(update={"sweep": "s1"})
    result = train(cfg, tmp_path / "r", data=stdlib_data, progress=False, reporter=lambda m, c: calls.append((m, c)))
    out = result.out_dir
    trial = json.loads((out / "trial.json").read_text())
    assert set(TRIAL_COLUMNS) <= set(trial)
    assert trial["status"] == "completed" and trial["run_id"] == "r" and trial["sweep"] == "s1"
    assert trial["tokens_seen"] == trial["tokens"] == 16 * 1024 and trial["steps"] == 16
    assert trial["flops_6nd"] == 6 * trial["params"] * trial["tokens"]
    assert trial["flops_detailed"] > trial["flops_6nd"] * 0.5
    assert trial["mfu"] is None and trial["device"] == "cpu" and trial["tokens_per_s"] > 0
    assert trial["final_loss"] == pytest.approx(result.curves[-1]["val_loss"])
    assert json.loads((out / "config.json").read_text()) == cfg.model_dump(mode="json")
    with open(out / "curves.csv") as f:
        curves = list(csv.DictReader(f))
    assert tuple(curves[0]) == CURVE_COLUMNS and [int(r["step"]) for r in curves] == [4, 8, 12, 16]
    with open(out / "points.csv") as f:
        points = list(csv.DictReader(f))
    assert tuple(points[0]) == POINT_COLUMNS and [p["kind"] for p in points] == ["final"]
    assert float(points[0]["loss"]) == pytest.approx(trial["final_loss"])
    # the reporter: once per evaluation, flat JSON-able metrics, a complete checkpoint folder
    assert len(calls) == 4
    metrics, folder = calls[-1]
    for key in ("step", "tokens", "flops", "train_loss", "val_loss", "lr", "elapsed_s", "tokens_per_s", "epochs", "status"):
        assert key in metrics
    json.dumps(metrics)
    assert metrics["status"] == "completed" and calls[0][0]["status"] == "running"
    assert (folder / "state.pt").exists() and json.loads((folder / "meta.json").read_text())["step"] == 16
    state = torch.load(folder / "state.pt", weights_only=True)
    assert {"model", "optimizer", "stream", "rng", "progress"} <= set(state)
    # a finished run called again returns its result without training
    again = train(cfg, out, data=stdlib_data, progress=False)
    assert again.trial["final_loss"] == trial["final_loss"] and again.trial["status"] == "completed"


def test_wsd_cooldown_branches_give_points_and_leave_the_trunk_untouched(stdlib_data, stdlib_data_config, tmp_path):
    kw = dict(tokens=40 * 1024, schedule="wsd", decay_fraction=0.25, eval_interval=10, lr=4e-3)
    plain = train(tiny_config(stdlib_data_config, **kw), tmp_path / "plain", data=stdlib_data, progress=False)
    branched = train(tiny_config(stdlib_data_config, cooldowns=(0.25, 0.5), **kw), tmp_path / "branched",
                     data=stdlib_data, progress=False)
    points = branched.points
    assert [p["kind"] for p in points] == ["cooldown", "cooldown", "final"]
    assert [p["tokens"] for p in points] == [10 * 1024, 20 * 1024, 40 * 1024]
    assert all(p["status"] == "completed" and math.isfinite(p["loss"]) for p in points)
    # the trunk resumes bit-identically after each branch: same final loss as the run without branches
    assert branched.trial["final_loss"] == plain.trial["final_loss"]
    trunk_rows = [r for r in branched.curves if r["branch"] == "trunk"]
    assert [r["val_loss"] for r in trunk_rows] == [r["val_loss"] for r in plain.curves]
    branch_rows = [r for r in branched.curves if r["branch"] != "trunk"]
    assert [r["branch"] for r in branch_rows] == ["cooldown@0.25", "cooldown@0.5"]
    assert branch_rows[0]["lr"] == pytest.approx(4e-4, rel=0.05)  # decayed to min_lr_ratio at D_k
    assert branched.trial["tokens_processed"] == (40 + 10 // 4 + 20 // 4) * 1024


def test_divergence_is_recorded_not_raised(stdlib_data, stdlib_data_config, tmp_path):
    reports = []
    cfg = tiny_config(stdlib_data_config, lr=1e3, grad_clip=None, tokens=64 * 1024, eval_interval=4)
    result = train(cfg, tmp_path / "d", data=stdlib_data, progress=False, reporter=lambda m, c: reports.append(m))
    trial = result.trial
    assert trial["status"] == "diverged" and trial["diverge_reason"]
    assert trial["step"] < 64
    assert json.loads((tmp_path / "d" / "trial.json").read_text())["status"] == "diverged"
    assert result.points[-1]["status"] == "diverged" and math.isnan(result.points[-1]["loss"])
    assert reports[-1]["status"] == "diverged"


def test_resume_refuses_a_different_run(stdlib_data, stdlib_data_config, tmp_path):
    train(tiny_config(stdlib_data_config), tmp_path / "r", data=stdlib_data, progress=False, stop_after_steps=2)
    with pytest.raises(ConfigError, match="train.tokens"):
        train(tiny_config(stdlib_data_config, tokens=32 * 1024), tmp_path / "r", data=stdlib_data, progress=False)
    fresh = train(tiny_config(stdlib_data_config, tokens=32 * 1024), tmp_path / "r", data=stdlib_data,
                  progress=False, resume=False)
    assert fresh.trial["status"] == "completed" and fresh.trial["steps"] == 32


def test_plan_turns_tokens_into_steps_and_branches(stdlib_data_config):
    cfg = tiny_config(stdlib_data_config, tokens=1_000_000, batch_tokens=8192, micro_batch_tokens=2048,
                      schedule="wsd", cooldowns=(0.1, 0.5, 0.999), decay_fraction=0.2)
    plan = make_plan(cfg)
    assert plan.batch_tokens == 8192 and plan.steps == 122 and plan.accum_steps == 4 and plan.micro_batch_size == 32
    assert plan.decay_start_step == 122 - 24
    assert [(b.start_step, b.end_step) for b in plan.branches] == [(10, 12), (49, 61)]  # 0.999 ends at the final point
    assert plan.eval_interval == 6 and plan.lr == 3e-3
    two = make_plan(cfg, world_size=2)
    assert two.batch_tokens == 8192 and two.micro_batch_size * two.accum_steps * 2 * 64 == 8192
    default = make_plan(tiny_config(stdlib_data_config, lr=None, tokens=10**6))
    assert default.lr == pytest.approx(min(recipe.LR_MAX, recipe.LR_WIDTH / 32)) and 0 < default.warmup_tokens <= 0.25 * 10**6

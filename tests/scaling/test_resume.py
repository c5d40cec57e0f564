"""Stop a run anywhere, resume it, and get exactly the run that was never stopped (CPU, bit for bit)."""

from __future__ import annotations

import torch

from scaling.checkpoint import find_checkpoint
from scaling.config import RunConfig
from scaling.train import train

MODEL = {"n_layer": 2, "d_model": 32, "n_head": 2, "context": 64, "vocab_size": 512}


def config(stdlib_data_config, **kw) -> RunConfig:
    train_cfg = {"tokens": 24 * 1024, "batch_tokens": 1024, "micro_batch_tokens": 512, "eval_tokens": 4096,
                 "threads": 1, "lr": 3e-3, "eval_interval": 5} | kw
    return RunConfig.model_validate({"model": MODEL, "data": stdlib_data_config.model_dump(), "train": train_cfg})


def final_state(out_dir) -> dict:
    return torch.load(find_checkpoint(out_dir) / "state.pt", weights_only=True)


def assert_same_run(a, b, dir_a, dir_b) -> None:
    assert a.trial["final_loss"] == b.trial["final_loss"]
    assert [(r["step"], r["branch"], r["val_loss"], r["train_loss"]) for r in a.curves] == \
           [(r["step"], r["branch"], r["val_loss"], r["train_loss"]) for r in b.curves]
    assert [(p["kind"], p["tokens"], p["loss"]) for p in a.points] == [(p["kind"], p["tokens"], p["loss"]) for p in b.points]
    sa, sb = final_state(dir_a), final_state(dir_b)
    assert sa["model"].keys() == sb["model"].keys()
    for name in sa["model"]:
        assert torch.equal(sa["model"][name], sb["model"][name]), name
    for pa, pb in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert torch.equal(pa["exp_avg"], pb["exp_avg"]) and torch.equal(pa["exp_avg_sq"], pb["exp_avg_sq"])
    assert sa["stream"] == sb["stream"]


def test_stopped_and_resumed_run_is_bit_identical(stdlib_data, stdlib_data_config, tmp_path):
    cfg = config(stdlib_data_config)
    full = train(cfg, tmp_path / "full", data=stdlib_data, progress=False)
    part = train(cfg, tmp_path / "part", data=stdlib_data, progress=False, stop_after_steps=7)
    assert part.trial["status"] == "running" and part.trial["step"] == 7
    assert [r["step"] for r in part.curves] == [5]
    resumed = train(cfg, tmp_path / "part", data=stdlib_data, progress=False)
    assert resumed.trial["status"] == "completed"
    assert_same_run(full, resumed, tmp_path / "full", tmp_path / "part")


def test_wsd_run_with_branches_resumes_bit_identically_from_anywhere(stdlib_data, stdlib_data_config, tmp_path):
    """Stopped every 4 steps, so several stops fall inside cool-down branches (trunk state in the checkpoint)."""
    cfg = config(stdlib_data_config, tokens=32 * 1024, schedule="wsd", cooldowns=(0.3, 0.6), decay_fraction=0.25)
    full = train(cfg, tmp_path / "full", data=stdlib_data, progress=False)
    calls, in_branch = 0, 0
    while True:
        result = train(cfg, tmp_path / "part", data=stdlib_data, progress=False, stop_after_steps=4)
        calls += 1
        in_branch += torch.load(find_checkpoint(tmp_path / "part") / "state.pt", weights_only=True)["trunk"] is not None
        if result.trial["status"] != "running":
            break
    assert calls >= 9 and in_branch >= 1
    assert [p["kind"] for p in result.points] == ["cooldown", "cooldown", "final"]
    assert_same_run(full, result, tmp_path / "full", tmp_path / "part")

"""FSDP (`fully_shard`) over 2 gloo processes trains the same model as one process with the same global batch,
through a WSD cool-down branch and a resume inside it; N and FLOPs are counted as without sharding; its
checkpoint is one full state dict read with `weights_only=True`."""

from __future__ import annotations

import pytest

from scaling.checkpoint import find_checkpoint, load_checkpoint
from scaling.config import RunConfig
from scaling.counting import param_counts
from scaling.model import GPT
from scaling.train import train

MODEL = {"n_layer": 2, "d_model": 32, "n_head": 2, "context": 64, "vocab_size": 512}


def config(stdlib_data_config, nproc: int, parallel: str = "fsdp") -> RunConfig:
    return RunConfig.model_validate({
        "model": MODEL, "data": stdlib_data_config.model_dump(),
        "train": {"tokens": 24 * 1024, "batch_tokens": 2048, "eval_tokens": 5 * 1024, "threads": 1, "lr": 3e-3,
                  "eval_interval": 4, "nproc": nproc, "device": "cpu", "parallel": parallel, "schedule": "wsd",
                  "cooldowns": [0.5], "decay_fraction": 0.5},
    })


@pytest.mark.slow
def test_fsdp_two_processes_match_one_process_through_a_branch_and_a_resume(stdlib_data, stdlib_data_config,
                                                                           tmp_path):
    single = train(config(stdlib_data_config, 1), tmp_path / "one", data=stdlib_data, progress=False)
    cfg = config(stdlib_data_config, 2)
    # 12 steps; the branch to D/2 = step 6 decays over its last half (steps 3-6): 5 steps end inside it
    part = train(cfg, tmp_path / "fsdp", data=stdlib_data, progress=False, stop_after_steps=5)
    assert part.trial["status"] == "running"
    state = load_checkpoint(find_checkpoint(tmp_path / "fsdp"))  # torch.load(weights_only=True)
    assert state["progress"]["branch"] == 0 and state["trunk"] is not None
    full = GPT(cfg.model).state_dict()
    assert set(state["model"]) == set(full)  # the full, unsharded model, not rank 0's shard
    assert all(state["model"][k].shape == v.shape for k, v in full.items())
    fsdp = train(cfg, tmp_path / "fsdp", data=stdlib_data, progress=False)
    assert fsdp.trial["status"] == "completed" and fsdp.trial["nproc"] == 2 and fsdp.trial["parallel"] == "fsdp"
    # counting is unchanged by sharding: N of the whole model, C = 6ND
    for key in ("params", "params_nonembedding", "params_embedding", "flops_6nd", "flops_detailed", "tokens_seen"):
        assert fsdp.trial[key] == single.trial[key], key
    assert fsdp.trial["params"] == param_counts(cfg.model)["params"]
    one = [(r["branch"], r["val_loss"]) for r in single.curves]
    two = [(r["branch"], r["val_loss"]) for r in fsdp.curves]
    assert len(one) == len(two) >= 4
    for (ka, a), (kb, b) in zip(one, two):
        assert ka == kb and b == pytest.approx(a, rel=2e-3)
    cool = [p for p in fsdp.points if p["kind"] == "cooldown"]
    ref = [p for p in single.points if p["kind"] == "cooldown"]
    assert len(cool) == len(ref) == 1 and cool[0]["loss"] == pytest.approx(ref[0]["loss"], rel=2e-3)
    assert fsdp.points[-1]["loss"] == pytest.approx(single.points[-1]["loss"], rel=2e-3)

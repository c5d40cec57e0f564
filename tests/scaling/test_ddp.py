"""DDP over 2 local gloo processes sees the same batches as one process and trains the same model."""

from __future__ import annotations

import json

import pytest

from scaling.config import RunConfig
from scaling.train import train

MODEL = {"n_layer": 1, "d_model": 32, "n_head": 2, "context": 64, "vocab_size": 512}


def config(stdlib_data_config, nproc: int) -> RunConfig:
    return RunConfig.model_validate({
        "model": MODEL, "data": stdlib_data_config.model_dump(),
        "train": {"tokens": 24 * 1024, "batch_tokens": 2048, "eval_tokens": 4096, "threads": 1, "lr": 3e-3,
                  "eval_interval": 3, "nproc": nproc, "device": "cpu"},
    })


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_and_resume(stdlib_data, stdlib_data_config, tmp_path):
    single = train(config(stdlib_data_config, 1), tmp_path / "one", data=stdlib_data, progress=False)
    reports = []
    ddp_cfg = config(stdlib_data_config, 2)
    part = train(ddp_cfg, tmp_path / "two", data=stdlib_data, progress=False, stop_after_steps=5,
                 reporter=lambda m, c: reports.append((m["step"], c)))
    assert part.trial["status"] == "running" and part.trial["step"] == 5
    ddp = train(ddp_cfg, tmp_path / "two", data=stdlib_data, progress=False,
                reporter=lambda m, c: reports.append((m["step"], c)))
    assert ddp.trial["status"] == "completed" and ddp.trial["nproc"] == 2
    assert ddp.trial["batch_tokens"] == single.trial["batch_tokens"] == 2048
    assert ddp.trial["micro_batch_tokens"] == 1024  # each rank reads half of every batch
    # the reporter runs in this (rank 0) process, once per evaluation, with a checkpoint each time
    assert [s for s, _ in reports] == [3, 6, 9, 12] and all((c / "state.pt").exists() for _, c in reports)
    # same data, same init, gradients averaged: the trajectories agree up to float summation order
    one = [r["val_loss"] for r in single.curves]
    two = [r["val_loss"] for r in ddp.curves]
    assert len(one) == len(two) == 4
    for a, b in zip(one, two):
        assert b == pytest.approx(a, rel=2e-3)
    assert two[-1] < two[0] - 0.15
    assert single.curves[0]["train_loss"] == pytest.approx(ddp.curves[0]["train_loss"], rel=1e-4)
    assert json.loads((tmp_path / "two" / "trial.json").read_text())["status"] == "completed"

"""A WSD run resumed from the checkpoint taken at a cool-down branch's end (its point already recorded,
the trunk still set aside) goes back to the trunk: no extra branch step, no second point, and the same
points as a run never stopped. Real CPU training of a tiny GPT on the first 3 MB of the default corpus."""

from __future__ import annotations

import shutil

import pandas as pd

from scaling.config import RunConfig
from scaling.train import make_plan, train

MODEL = {"n_layer": 2, "d_model": 32, "n_head": 2, "context": 64, "vocab_size": 512}
TRAIN = {"tokens": 16 * 1024, "batch_tokens": 1024, "eval_tokens": 4096, "threads": 1, "lr": 3e-3,
         "eval_interval": 4, "schedule": "wsd", "cooldowns": (0.5, 0.75), "decay_fraction": 0.5}


def test_resume_from_a_branch_end_checkpoint_records_each_point_once(stdlib_data, stdlib_data_config, tmp_path):
    cfg = RunConfig.model_validate({"model": MODEL, "data": stdlib_data_config.model_dump(), "train": TRAIN})
    plan = make_plan(cfg)
    assert [(b.start_step, b.end_step) for b in plan.branches] == [(4, 8), (6, 12)]
    saved = tmp_path / "at-branch-end"

    def keep_branch_end(metrics: dict, folder) -> None:
        if metrics["branch"] == "cooldown@0.5" and not saved.exists():
            shutil.copytree(folder, saved)  # the checkpoint written with the branch's point, trunk aside

    whole = train(cfg, tmp_path / "whole", data=stdlib_data, progress=False, reporter=keep_branch_end)
    assert saved.exists()
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copytree(saved, resumed_dir / "checkpoint")
    resumed = train(cfg, resumed_dir, data=stdlib_data, progress=False)

    expected = [("cooldown", 8 * 1024), ("cooldown", 12 * 1024), ("final", 16 * 1024)]
    for result in (whole, resumed):
        assert [(p["kind"], p["tokens"]) for p in result.points] == expected
    a, b = pd.DataFrame(whole.points), pd.DataFrame(resumed.points)
    assert (a["loss"] == b["loss"]).all()  # bit for bit the run that never stopped
    assert resumed.trial["tokens_processed"] == whole.trial["tokens_processed"] == (16 + 4 + 6) * 1024

"""A trial of a WSD run with cool-down branches resumes from the NEWER of its two checkpoints (the run
folder's and Ray Tune's) when they disagree, also when it was killed inside a branch.

A branch leaves the trunk at its start step and counts steps on from there; when it ends, the trunk
comes back at that start step. So the step of a checkpoint is not how far the run is: a checkpoint
taken in the trunk after a branch, or inside a later branch, can have a SMALLER step than an older one
taken inside an earlier branch. The checkpoint's meta.json carries `tokens_processed` (every token
trained, branches included) for this comparison.

Real CPU training of a tiny GPT on the first 3 MB of the default corpus; the last test is a real Ray
Tune run whose two trials each die once (a kill inside a branch) and are retried by Tune.

The run (16 steps of 1,024 tokens, cool-downs at 0.5 and 0.6 of D with decay_fraction 0.5):

    trunk 0 -> 4 | branch A (cooldown@0.5) 4 -> 8 | trunk 4 -> 5 | branch B (cooldown@0.6) 5 -> 10 | trunk 5 -> 16

The three checkpoints, oldest first: inside A at step 7 (7 steps trained), the trunk at step 5 after A
(9 steps trained), inside B at step 6 (10 steps trained).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from ray import tune

from contracts.jsonio import read_json
from scaling.checkpoint import find_checkpoint
from scaling.config import RunConfig
from scaling.train import make_plan, train
from sweeps import trainable
from sweeps.trainable import checkpoint_progress, checkpoint_step

MODEL = {"n_layer": 2, "d_model": 32, "n_head": 2, "context": 64, "vocab_size": 512}
TRAIN = {"tokens": 16 * 1024, "batch_tokens": 1024, "micro_batch_tokens": 512, "eval_tokens": 4096, "threads": 1,
         "lr": 3e-3, "eval_interval": 4, "schedule": "wsd", "cooldowns": (0.5, 0.6), "decay_fraction": 0.5}
# (name, optimiser steps of the next train() call, step, branch index, steps trained in all), oldest first
CHECKPOINTS = (
    ("inside A", 7, 7, 0, 7),  # trunk 0 -> 4, then A 4 -> 7
    ("trunk after A", 2, 5, None, 9),  # A 7 -> 8 (A ends, the trunk comes back at 4), trunk 4 -> 5
    ("inside B", 1, 6, 1, 10),  # B 5 -> 6
)
OLDER_NEWER = [("inside A", "trunk after A"), ("inside A", "inside B")]


def run_config(stdlib_data_config) -> RunConfig:
    return RunConfig.model_validate({"model": MODEL, "data": stdlib_data_config.model_dump(), "train": TRAIN})


@pytest.fixture(scope="module")
def checkpoints(stdlib_data, stdlib_data_config, tmp_path_factory) -> dict[str, Path]:
    """Copies of the three checkpoints, written by real training that stops at each of them."""
    cfg = run_config(stdlib_data_config)
    plan = make_plan(cfg)
    assert [(b.start_step, b.end_step) for b in plan.branches] == [(4, 8), (5, 10)] and plan.steps == 16
    root = tmp_path_factory.mktemp("branch-checkpoints")
    out, copies = root / "run", {}
    for name, steps, *_ in CHECKPOINTS:
        result = train(cfg, out, data=stdlib_data, progress=False, stop_after_steps=steps)
        assert result.trial["status"] == "running"
        copies[name] = root / name.replace(" ", "-")
        shutil.copytree(find_checkpoint(out), copies[name])
    return copies


def test_checkpoint_meta_counts_tokens_trained_including_branches(checkpoints):
    progress = []
    for name, _, step, branch, trained in CHECKPOINTS:
        meta = read_json(checkpoints[name] / "meta.json")
        assert (meta["step"], meta["branch"]) == (step, branch), name
        assert meta["tokens_processed"] == trained * TRAIN["batch_tokens"], name
        assert checkpoint_step(checkpoints[name]) == step
        progress.append(checkpoint_progress(checkpoints[name]))
    assert progress == sorted(progress) and len(set(progress)) == len(progress)  # newer is further, steps are not


@pytest.mark.parametrize("older,newer", OLDER_NEWER)
@pytest.mark.parametrize("newer_in", ["run_dir", "tune"])
def test_restore_takes_the_newer_checkpoint(checkpoints, tmp_path, monkeypatch, older, newer, newer_in):
    """`_restore_checkpoint` with the run folder's and Tune's checkpoints disagreeing, either way round."""
    local, remote = (newer, older) if newer_in == "run_dir" else (older, newer)
    out = tmp_path / "run"
    out.mkdir()
    shutil.copytree(checkpoints[local], out / "checkpoint")
    monkeypatch.setattr(trainable.tune, "get_checkpoint",
                        lambda: tune.Checkpoint.from_directory(str(checkpoints[remote])))
    source, step = trainable._restore_checkpoint(out)
    newer_step = read_json(checkpoints[newer] / "meta.json")["step"]
    assert (source, step) == (newer_in, newer_step)
    assert read_json(find_checkpoint(out) / "meta.json") == read_json(checkpoints[newer] / "meta.json")
    assert (find_checkpoint(out) / "state.pt").read_bytes() == (checkpoints[newer] / "state.pt").read_bytes()


# --- a real Ray Tune run ------------------------------------------------------------------------------

def trial_killed_inside_a_branch(config: dict) -> None:
    """A Tune function trainable. First attempt: train the run folder into branch B, leave the newer
    checkpoint in the run folder or in Tune as `newer_in` says (the older one, inside A, in the other
    place), and die. Later attempts: the sweep's own trainable, `sweeps.trainable.run_trial`."""
    from ray import tune

    from scaling.config import RunConfig
    from scaling.data import TokenData
    from scaling.train import train
    from sweeps.trainable import run_trial

    if tune.get_checkpoint() is not None:
        run_trial(config)
        return
    t = config["trial"]
    cfg, out, data = RunConfig.model_validate(t["config"]), Path(t["run_dir"]), TokenData.load(t["data_root"])
    train(cfg, out, data=data, progress=False, stop_after_steps=7)  # inside A, step 7
    inside_a = out.parent / f"{out.name}.inside-A"
    shutil.copytree(out / "checkpoint", inside_a)
    if t["newer_in"] == "run_dir":
        tune.report({"step": 7}, checkpoint=tune.Checkpoint.from_directory(str(inside_a)))
    train(cfg, out, data=data, progress=False, stop_after_steps=2)  # trunk after A, step 5
    train(cfg, out, data=data, progress=False, stop_after_steps=1)  # inside B, step 6
    if t["newer_in"] == "tune":  # the run folder is stale (say another node's copy): older than Tune's
        tune.report({"step": 6}, checkpoint=tune.Checkpoint.from_directory(str(out / "checkpoint")))
        shutil.rmtree(out / "checkpoint")
        shutil.copytree(inside_a, out / "checkpoint")
    raise RuntimeError("trial killed inside cool-down branch B")


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init("local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2)
    yield ray
    ray.shutdown()


def test_tune_trial_killed_inside_a_branch_resumes_from_the_newer_checkpoint(
        ray_local, stdlib_data, stdlib_data_config, tmp_path):
    from ray import cloudpickle

    cfg = run_config(stdlib_data_config)
    uninterrupted = train(cfg, tmp_path / "uninterrupted", data=stdlib_data, progress=False)
    trials = [{"run_id": f"newer-in-{where}", "run_dir": str(tmp_path / "runs" / f"newer-in-{where}"),
               "config": cfg.model_dump(mode="json"), "cpus": 1, "gpus": 0, "data_root": str(stdlib_data.root),
               "checkpoint_sync_s": 0.0, "newer_in": where} for where in ("run_dir", "tune")]
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this test module
    try:
        tuner = tune.Tuner(
            trial_killed_inside_a_branch,
            param_space={"trial": tune.grid_search(trials)},
            tune_config=tune.TuneConfig(max_concurrent_trials=2),
            run_config=tune.RunConfig(name="branch-resume", storage_path=str(tmp_path / "ray"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=1)),
        )
        results = tuner.fit()
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert not results.errors, results.errors

    for t in trials:
        out = Path(t["run_dir"])
        attempts = [json.loads(line) for line in (out / "attempts.jsonl").read_text().splitlines()]
        assert [(a["source"], a["start_step"]) for a in attempts] == [(t["newer_in"], 6)], t["run_id"]
        record = read_json(out / "trial.json")
        assert record["status"] == "completed"
        assert record["tokens_processed"] == uninterrupted.trial["tokens_processed"] == 25 * TRAIN["batch_tokens"]
        final = torch.load(find_checkpoint(out) / "state.pt", weights_only=True)["progress"]["points"]
        assert [(p["kind"], p["tokens"], p["loss"]) for p in final] == \
               [(p["kind"], p["tokens"], p["loss"]) for p in uninterrupted.points]

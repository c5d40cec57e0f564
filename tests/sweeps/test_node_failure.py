"""A worker node dies mid-sweep (`ray.cluster_utils.Cluster`, `remove_node`): the sweep still finishes
with every trial completed, and the trial that lost its node resumes from its last checkpoint on the
other node instead of starting over. The dead node's run folder is treated as lost with it (as when
run folders are not on shared storage), so the checkpoint must come back from Ray Tune's storage."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
from ray import tune

import ray_cluster

from sweeps import store
from sweeps.launch import launch
from sweeps.spec import load_spec

pytestmark = pytest.mark.slow

SPEC = """
vocab_size: 512
context: 64
data: {max_bytes: 3000000}
design: grid
sizes: [16k, 20k, 28k]
tokens: [300k]
min_steps: 50
batch: {tokens: 1024}
lr: {rule: fixed, value: 3e-3}
train: {eval_tokens: 4096}
eval_interval: 10        # a checkpoint every 10 steps (checkpoint_interval defaults to eval_interval)
checkpoint_sync_s: 0     # ...and every one copied to Tune's storage
resources: {cpus: 1}
max_concurrent_trials: 2
retries: 2
"""
KILL_AT_STEP = 60


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster.local_cluster(worker_nodes=2, cpus_per_node=1, object_store_mb=100) as c:
        yield c


class KillNodeOnce(tune.Callback):
    """Remove, without grace, the node running the first trial checkpointed at step >= KILL_AT_STEP."""

    def __init__(self):
        self.killed: dict | None = None

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        # Kill once Tune has registered the checkpoint that came with this result: killing from
        # on_trial_result races the registration, and the trial then restarts one checkpoint earlier.
        result = trial.last_result
        if self.killed is not None or result.get("done") or result.get("step", 0) < KILL_AT_STEP:
            return
        ray_cluster.remove_node(result["node_id"])
        ray_cluster.wait_until_dead(result.get("pid"))  # else the dying trial may still write a newer checkpoint
        self.killed = {"run_id": result["run_id"], "step": result["step"], "node_id": result["node_id"]}
        run_dir = store.run_dir(trial.config["trial"]["run_dir"].rsplit("/runs/", 1)[0], result["run_id"])
        for name in ("checkpoint", "checkpoint.old", "checkpoint.tmp"):  # lost with the node
            shutil.rmtree(run_dir / name, ignore_errors=True)


def test_worker_node_killed_mid_sweep(cluster, tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    killer = KillNodeOnce()
    out = tmp_path / "sweep"
    # a test cluster without token auth on this machine's own address: insecure by intent
    result = launch(spec, out, address=cluster.address, progress=False, callbacks=[killer], insecure=True)

    assert killer.killed is not None, "no trial reached the step at which the node was to be killed"
    assert result["counts"]["completed"] == 3, result["counts"]
    trials = pd.read_parquet(out / "trials.parquet").set_index("run_id")
    assert (trials["status"] == "completed").all()
    assert trials["final_loss"].map(math.isfinite).all()

    victim = killer.killed["run_id"]
    lines = (store.run_dir(out, victim) / "attempts.jsonl").read_text().splitlines()
    attempts = [json.loads(line) for line in lines]
    assert len(attempts) == 2, attempts
    first, second = attempts
    assert first["node_id"] == killer.killed["node_id"] and second["node_id"] != first["node_id"]
    # resumed from Tune's copy of the checkpoint taken at the last step reported before its node died
    assert second["source"] == "tune" and second["start_step"] == killer.killed["step"]
    assert store.read_state(out)[victim]["attempts"] == 2
    # its curve is one unbroken run: every evaluation once, in order, up to the planned step count
    curves = pd.read_parquet(out / "curves.parquet")
    steps = curves[curves["run_id"] == victim]["step"]
    assert steps.is_unique and steps.is_monotonic_increasing
    assert steps.iloc[-1] == trials.loc[victim, "steps"]
    assert trials.loc[victim, "tokens_seen"] == trials.loc[victim, "tokens"]
    # the others never restarted
    for run_id in trials.index.drop(victim):
        assert len((store.run_dir(out, run_id) / "attempts.jsonl").read_text().splitlines()) == 1
    assert len(pd.read_parquet(out / "points.parquet")) == 3

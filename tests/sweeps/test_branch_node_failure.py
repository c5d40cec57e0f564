"""An `isoflop-branches` trial whose worker node dies mid-stable-phase, after its first cool-down branch,
resumes on the other node from its last checkpoint and finishes with every planned point exactly once
(`ray.cluster_utils.Cluster`, `remove_node`; the run folder's checkpoint is lost with the node, so it
comes back from Ray Tune's storage). Real CPU training of tiny GPTs on the first 3 MB of the corpus."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from ray import tune

import ray_cluster

from sweeps import store
from sweeps.design import expand
from sweeps.launch import launch
from sweeps.spec import load_spec

pytestmark = pytest.mark.slow

SPEC = """
vocab_size: 512
context: 64
data: {max_bytes: 3000000}
design: isoflop-branches
sizes: [16k, 20k, 28k]          # one trunk each: 232, 169, 129 steps, branches at 105/158, 77/115, 59/88
budgets: [1e10, 1.5e10, 2.2e10]
isoflop: {sizes_per_budget: 3, tokens_per_param: 5}
min_steps: 50
batch: {tokens: 1024}
lr: {rule: fixed, value: 3e-3}
schedule: {kind: wsd, decay_fraction: 0.2}
train: {eval_tokens: 4096}
eval_interval: 10
checkpoint_sync_s: 0
resources: {cpus: 1}
max_concurrent_trials: 2
retries: 2
"""
KILL_AT_STEP = 100  # on the trunk, after >= 1 branch and before every trunk's decay (>= step 103)


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster.local_cluster(worker_nodes=2, cpus_per_node=1, object_store_mb=100) as c:
        yield c


class KillNodeInStablePhase(tune.Callback):
    """Remove the node of the first trial checkpointed on its trunk at step >= KILL_AT_STEP."""

    def __init__(self):
        self.killed: dict | None = None

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        result = trial.last_result
        if (self.killed is not None or result.get("done") or result.get("branch") != "trunk"
                or result.get("step", 0) < KILL_AT_STEP):
            return
        run_dir = store.run_dir(trial.config["trial"]["run_dir"].rsplit("/runs/", 1)[0], result["run_id"])
        points_before = pd.read_csv(run_dir / "points.csv")
        ray_cluster.remove_node(result["node_id"])
        ray_cluster.wait_until_dead(result.get("pid"))
        self.killed = {"run_id": result["run_id"], "step": result["step"], "node_id": result["node_id"],
                       "points_before": points_before}
        for name in ("checkpoint", "checkpoint.old", "checkpoint.tmp"):  # lost with the node
            shutil.rmtree(run_dir / name, ignore_errors=True)


def test_branch_trial_killed_on_a_worker_node_finishes_every_point_once(cluster, tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    planned = {t.run_id: t.planned_points for t in expand(spec)}
    killer = KillNodeInStablePhase()
    out = tmp_path / "sweep"
    # a test cluster without token auth on this machine's own address: insecure by intent
    result = launch(spec, out, address=cluster.address, progress=False, callbacks=[killer], insecure=True)

    assert killer.killed is not None, "no trial reached the step at which the node was to be killed"
    victim = killer.killed["run_id"]
    assert (killer.killed["points_before"]["kind"] == "cooldown").sum() >= 1  # a branch was done before
    assert result["counts"]["completed"] == 3, result["counts"]
    assert result["points_done"] == result["points_planned"] == 9

    attempts = [json.loads(x) for x in (store.run_dir(out, victim) / "attempts.jsonl").read_text().splitlines()]
    assert len(attempts) == 2 and attempts[1]["node_id"] != attempts[0]["node_id"]
    assert attempts[1]["source"] == "tune" and attempts[1]["start_step"] == killer.killed["step"]

    points = pd.read_parquet(out / "points.parquet")
    for run_id, pts in planned.items():
        got = points[points["run_id"] == run_id].sort_values("tokens")
        assert list(zip(got["kind"], got["tokens"], got["budget"])) == \
            [(p["kind"], p["tokens"], p["budget"]) for p in pts], run_id
    raw = pd.read_csv(store.run_dir(out, victim) / "points.csv")  # the run's own rows, before any dedup
    assert len(raw) == len(planned[victim]) and raw["tokens"].is_unique
    before = killer.killed["points_before"].set_index("tokens")["loss"]
    assert (raw.set_index("tokens").loc[before.index, "loss"] == before).all()  # the branch done before: kept

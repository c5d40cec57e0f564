"""Trials of 2 workers (Ray Train V2 inside Tune, gloo on CPU) on a 3-node `ray.cluster_utils.Cluster` with logical
resources: DDP and FSDP reach the same loss curve as the same run in one process with the same global batch; the DDP
trial loses the node of one of its workers mid-run, the FSDP trial its rank-0 process, and each finishes from its
last checkpoint in a new worker group (FSDP's checkpoint sharded: one file per rank); a DDP trial whose rank-1 process
is sent SIGTERM stops every rank at one step with a checkpoint and the next worker group resumes from that step."""

from __future__ import annotations

import json
import os
import signal

import pandas as pd
import pytest
from ray import tune

import ray_cluster

from scaling.config import RunConfig
from scaling.data import prepare_data
from scaling.train import train
from sweeps import store
from sweeps.launch import launch
from sweeps.spec import load_spec

pytestmark = pytest.mark.slow

SPEC = """
vocab_size: 512
context: 64
data: {max_bytes: 3000000}
design: grid
sizes: [16k]
tokens: [30k]
min_steps: 20
batch: {tokens: 1024}
lr: {rule: fixed, value: 3e-3}
train: {eval_tokens: 4096}
eval_interval: 5
checkpoint_sync_s: 0
resources: {cpus: 1.5, workers: 2, strategy: STRATEGY, placement: spread}
max_concurrent_trials: 1
retries: 2
"""
KILL_AT_STEP = 10


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster.local_cluster(worker_nodes=3, cpus_per_node=2, object_store_mb=80) as c:
        yield c


class RemoveWorkerNode(tune.Callback):
    """Remove, without grace, the node of rank 1 once a result at step >= KILL_AT_STEP arrives."""

    def __init__(self):
        self.removed: dict | None = None

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.removed is not None or result.get("done") or result.get("step", 0) < KILL_AT_STEP:
            return
        nodes = result["worker_nodes"].split(",")
        assert nodes[0] != nodes[1]
        ray_cluster.remove_node(nodes[1])
        self.removed = {"step": result["step"], "node_id": nodes[1]}


class KillRankZero(tune.Callback):
    """Kill (SIGKILL) the rank-0 worker process once a result at step >= KILL_AT_STEP arrives."""

    def __init__(self):
        self.killed: dict | None = None

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.killed is not None or result.get("done") or result.get("step", 0) < KILL_AT_STEP:
            return
        os.kill(result["rank0_pid"], signal.SIGKILL)
        self.killed = {"step": result["step"], "pid": result["rank0_pid"]}


def attempts_of(out, run_id) -> list[dict]:
    return [json.loads(line) for line in (store.run_dir(out, run_id) / "attempts.jsonl").read_text().splitlines()]


def run_interrupted(tmp_path, strategy: str, callback, reference) -> tuple[dict, list[dict], object]:
    """The one-trial sweep on the cluster with `callback` interrupting it: it must complete on the reference
    curve in two attempts. Returns the trial's record, its attempts and the sweep folder."""
    spec = load_spec_text(tmp_path, strategy)
    out = tmp_path / "sweep"
    status = launch(spec, out, address=ray_cluster.CURRENT.address, progress=False, callbacks=[callback],
                    insecure=True)  # a test cluster without token auth on this machine's own address
    assert status["counts"]["completed"] == 1, status["counts"]
    run_id = store.read_manifest(out)["trials"][0]["run_id"]
    trial = assert_same_curve(reference, out, run_id)
    attempts = attempts_of(out, run_id)
    assert len(attempts) == 2, attempts
    return trial, attempts, store.run_dir(out, run_id)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same run in one process (nproc 1): the loss curve both strategies must reproduce."""
    path = tmp_path_factory.mktemp("ref")
    spec = load_spec_text(path, "ddp")
    from sweeps.design import expand

    trial = expand(spec, "spec")[0]
    cfg = RunConfig.model_validate({**trial.config.model_dump(mode="json"),
                                    "train": {**trial.config.train.model_dump(mode="json"), "nproc": 1}})
    return train(cfg, path / "run", data=prepare_data(spec.data_config(), progress=False), progress=False)


def load_spec_text(path, strategy):
    (path / "spec.yaml").write_text(SPEC.replace("STRATEGY", strategy))
    return load_spec(path / "spec.yaml")


def assert_same_curve(reference, out, run_id) -> dict:
    run = store.run_dir(out, run_id)
    trial = json.loads((run / "trial.json").read_text())
    assert trial["status"] == "completed" and trial["nproc"] == 2
    assert trial["micro_batch_tokens"] == reference.trial["micro_batch_tokens"] // 2  # each rank: half a batch
    assert trial["params"] == reference.trial["params"] and trial["flops_6nd"] == reference.trial["flops_6nd"]
    curves = pd.read_csv(run / "curves.csv")
    one = [r["val_loss"] for r in reference.curves]
    assert list(curves["step"]) == [r["step"] for r in reference.curves]  # every evaluation once, in order
    for a, b in zip(one, curves["val_loss"]):
        assert b == pytest.approx(a, rel=2e-3)
    assert one[-1] < one[0] - 0.1
    return trial


def test_ddp_trial_on_two_nodes_survives_losing_a_worker_node(cluster, reference, tmp_path):
    remover = RemoveWorkerNode()
    trial, (first, second), _ = run_interrupted(tmp_path, "ddp", remover, reference)
    assert trial["parallel"] == "ddp"
    assert remover.removed is not None, "no result reached the step at which the node was to be removed"
    assert first["workers"] == 2 and len(set(first["nodes"])) == 2  # two workers on two nodes
    assert remover.removed["node_id"] in first["nodes"] and remover.removed["node_id"] not in second["nodes"]
    # the new worker group resumed from the last checkpoint, not from the start
    assert second["start_step"] >= remover.removed["step"] and second["source"] in ("run_dir", "train")


def test_fsdp_trial_on_two_nodes_matches_one_process_and_survives_losing_rank_0(cluster, reference, tmp_path):
    killer = KillRankZero()
    trial, (first, second), run = run_interrupted(tmp_path, "fsdp", killer, reference)
    assert trial["parallel"] == "fsdp"
    assert killer.killed is not None, "no result reached the step at which rank 0 was to be killed"
    assert len(set(first["nodes"])) == 2 and first["pid"] == killer.killed["pid"] != second["pid"]
    assert second["start_step"] >= killer.killed["step"] and second["source"] in ("run_dir", "train")
    # the checkpoints are sharded: one file per rank beside rank 0's state.pt
    folder = run / "checkpoint"
    meta = json.loads((folder / "meta.json").read_text())
    assert (meta["layout"], meta["shards"]) == ("sharded", 2)
    assert sorted(p.name for p in folder.glob("__*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]


def test_sigterm_to_one_worker_stops_the_group_at_one_step_and_the_next_group_resumes_there(cluster, reference,
                                                                                            tmp_path):
    """SIGTERM to rank 1 of a DDP trial: every rank stops at the same step (the flag rides the loss all-reduce),
    rank 0 checkpoints there, the group fails (not finished) and Train's retry resumes from that step; the
    curve is the uninterrupted one (the float tolerance of the other tests here)."""
    terminator = ray_cluster.SigtermOnce(at_step=KILL_AT_STEP, pid_field="worker_pids", index=1)  # rank 1
    _, attempts, _ = run_interrupted(tmp_path, "ddp", terminator, reference)
    assert terminator.signalled is not None, "no result reached the step at which rank 1 was to be signalled"
    assert terminator.stopped is not None and terminator.stopped["by"].startswith("SIGTERM")
    assert attempts[1]["start_step"] == terminator.stopped["step"] > terminator.signalled["step"]
    # the failed group's workers are stopped: the signalled process exits
    ray_cluster.wait_until_dead(terminator.signalled["pid"], timeout_s=30)

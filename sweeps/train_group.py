"""Trials that outgrow one process: a Ray Train V2 `TorchTrainer` inside each Tune trial (`resources.workers > 1`,
or `resources.gpus: N > 1`).

The driver pattern of Ray 2.60 (Train user guide, "Hyperparameter optimization"): the Tune trial is a light
driver (`DRIVER_CPUS`) that builds a `ray.train.torch.TorchTrainer` and calls `fit()`; the trainer starts
`workers` processes (its own placement group, `resources_per_worker = {CPU: cpus, GPU: gpus}`, PACK or SPREAD
over the nodes), joins them in one torch process group (gloo on CPU, NCCL on CUDA; it sets `RANK`,
`WORLD_SIZE`, `LOCAL_RANK`) and runs `train_worker` on each. `train_worker` calls the same `scaling.train.train`
as a one-process trial, which finds its place in that group (`scaling.distributed.world_from_env`): rank r
reads block r of every batch, DDP or FSDP (`train.parallel`, `scaling.parallel`), the same evaluations,
cool-down branches, checkpoints and rows (rank 0 writes the run folder; under FSDP each rank writes its own
shard of the checkpoint into it, `scaling.checkpoint`'s sharded layout; nothing is read back by unpickling).
Every evaluation goes to `ray.train.report` on every rank (a collective in V2), with rank 0's checkpoint
folder at most every `checkpoint_sync_s`; `TuneReportCallback` forwards rank 0's metrics to the Tune trial,
so the sweep's callback, progress view and `state.json` see a group trial like any other.

Preemption (`scaling.preemption`): Train V2 runs `train_worker` in a thread of each worker actor, whose main thread
stays free for the actor's tasks; `train_worker` first asks its own actor (`__ray_call__`, a task: on the main
thread) to install the SIGTERM latch there, chained to Ray's handler. A SIGTERM to any worker then stops every rank
at the same step (the flag rides the loss all-reduce, `scaling.trainer`), rank 0 writes one checkpoint, every
rank reports it to Ray Train (rank 0 with the folder) and raises `Preempted`, so the group fails rather than
finishes: Train's `FailureConfig(max_failures=retries)` starts a new group that resumes from that checkpoint (with
no retries left the Tune trial errors and Tune's own retry, or `scaling sweep resume`, resumes it).

Failures: a lost worker (process or node) fails the worker group; `FailureConfig(max_failures=retries)` starts
a new group when resources allow, and it resumes from the newer of the run folder's checkpoint and the last
one reported to Ray Train (`ray.train.get_checkpoint()`). If the driver itself dies, Tune retries the trial;
its new `TorchTrainer` has the same `name` and `storage_path`, which is how V2 resumes (its
`resume_from_checkpoint` argument raises). Several nodes need the run folders and `storage_path` on shared
storage (NFS or a cloud URI): an FSDP checkpoint is one folder that every rank writes its shard into. Known traps (`../shared/notes/ray-2.60.md` §2.4, §5): Tune does not reserve
the workers' resources, so `max_concurrent_trials` must be at most GPUs / GPUs per trial, and a Train V2
placement group can outlive a Tune-side stop (ray#54305): these trials stop from inside the training loop.
Worker-group start-up costs seconds to tens of seconds per trial (`benchmarks/bench_train_workers.py`), so
one-process trials stay plain Tune functions (`sweeps.trainable`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from ray import tune

from contracts.jsonio import read_json
from scaling.preemption import install_latch
from sweeps import store
from sweeps.trainable import Preempted, _append_attempt, _final_metrics, _load_data, _scalars, restore_newer

#: CPUs the Tune trial (the Train driver) holds while its workers train.
DRIVER_CPUS = 0.25


def group_resources(config: dict) -> tune.PlacementGroupFactory:
    """The Tune trial's own bundle: the driver only (Train V2 reserves the workers' resources itself)."""
    return tune.PlacementGroupFactory([{"CPU": DRIVER_CPUS}])


def make_group_trainable():
    """`run_group_trial` with the driver's resources (the same callable every time: with_resources mutates it)."""
    return tune.with_resources(run_group_trial, group_resources)


def run_group_trial(config: dict) -> None:
    """Tune function trainable: drive one run's worker group through `TorchTrainer.fit()`."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    logging.getLogger("ray.train").setLevel(logging.WARNING)
    t = config["trial"]
    out = Path(t["run_dir"])
    out.mkdir(parents=True, exist_ok=True)
    record = read_json(out / "trial.json")
    if store.is_finished(record):
        tune.report({**_final_metrics(record), "run_id": t["run_id"], "skipped": True})
        return
    g = t["group"]
    per_worker = {"CPU": float(g["cpus"])} | ({"GPU": float(g["gpus"])} if g["gpus"] else {})
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"trial": t},
        torch_config=TorchConfig(backend="nccl" if g["gpus"] else "gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=int(g["workers"]), use_gpu=bool(g["gpus"]),
                                               resources_per_worker=per_worker,
                                               placement_strategy=g["placement"].upper()),
        run_config=ray.train.RunConfig(
            name=f"train-{t['run_id']}",  # the same name and storage on a retried trial: V2 resumes the run
            storage_path=g["storage_path"],
            failure_config=ray.train.FailureConfig(max_failures=int(g["retries"])),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=[TuneReportCallback()],
        ),
    )
    t0 = time.perf_counter()
    trainer.fit()
    record = read_json(out / "trial.json") or {}
    tune.report({**_final_metrics(record), "run_id": t["run_id"], "train_call_s": time.perf_counter() - t0,
                 "workers": int(g["workers"])})


def train_worker(config: dict) -> None:
    """One worker of the group: the run's rank `ray.train.get_context().get_world_rank()`."""
    import ray.train
    import torch.distributed as dist

    from scaling.config import RunConfig
    from scaling.train import train

    logging.getLogger("ray.train").setLevel(logging.WARNING)  # a "Reporting training result" line per eval and rank
    t = config["trial"]
    out = Path(t["run_dir"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    node_id = ray.get_runtime_context().get_node_id()
    _install_latch_on_main_thread()
    nodes: list[Any] = [None] * world
    dist.all_gather_object(nodes, node_id)  # Ray Train has joined the process group already
    pids: list[Any] = [None] * world
    dist.all_gather_object(pids, os.getpid())
    source, start_step = "none", 0
    if rank == 0:  # the others wait in train()'s barrier until rank 0 has prepared the run folder
        source, start_step = restore_newer(out, ray.train.get_checkpoint(), "train")
        _append_attempt(out, node_id=node_id, source=source, start_step=start_step, workers=world, nodes=nodes)
    cfg = RunConfig.model_validate(t["config"])
    data = _load_data(t.get("data_root"), cfg)
    sync_s = float(t.get("checkpoint_sync_s", 60.0))
    last_sync = -math.inf

    def reporter(metrics: dict, checkpoint_dir: Path | None) -> None:
        nonlocal last_sync
        payload = {**_scalars(metrics), "run_id": t["run_id"], "node_id": node_id, "resumed_from_step": start_step,
                   "worker_nodes": ",".join(nodes), "rank0_pid": pids[0], "worker_pids": ",".join(map(str, pids))}
        checkpoint = None
        now = time.monotonic()
        if checkpoint_dir and (now - last_sync >= sync_s or metrics.get("status") != "running"):
            checkpoint = ray.train.Checkpoint.from_directory(str(checkpoint_dir))
            last_sync = now
        ray.train.report(payload, checkpoint=checkpoint)

    result = train(cfg, out, data=data, resume=True, reporter=reporter, progress=False)
    if result.stopped_by:  # every rank stopped at the same step; rank 0 wrote the checkpoint
        from scaling.checkpoint import find_checkpoint

        step = result.trial.get("step")
        folder = find_checkpoint(out) if rank == 0 else None
        ray.train.report({"run_id": t["run_id"], "step": step, "stopped_by": result.stopped_by, "node_id": node_id},
                         checkpoint=ray.train.Checkpoint.from_directory(str(folder)) if folder else None)
        raise Preempted(f"{t['run_id']}: rank {rank} stopped by {result.stopped_by} at step {step} with a checkpoint; "
                        f"the next worker group resumes from it")


def _install_latch_on_main_thread() -> bool:
    """Install the SIGTERM latch on this worker actor's main thread (this function runs in Train's training
    thread): `__ray_call__` runs a function as a task of the actor, and a Train worker runs its tasks on its
    main thread. False when that was not the main thread (the run then keeps Ray's SIGTERM behaviour)."""
    import ray

    actor = ray.get_runtime_context().current_actor
    return bool(ray.get(actor.__ray_call__.remote(_install_latch)))


def _install_latch(actor: Any) -> bool:
    return install_latch()

"""Data-parallel processes the standard PyTorch way: the `torch.distributed.run` (torchrun) environment.

A process belongs to a data-parallel run when the launcher says so in its environment, the env://
rendezvous of `torch.distributed.init_process_group`: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`,
`MASTER_PORT`. torchrun sets them (`python -m torch.distributed.run --nproc-per-node 2 -m orchestrator.cli
train ...`), Slurm jobs export them (`srun` with `RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS ...`), and Ray
Train sets them on every worker and joins the group itself. So one entry point serves all of them:
`world_from_env()` reads the position, `process_group()` joins the group (gloo on CPU, NCCL on CUDA) unless
someone already did, and `launch_local()` is `scaling train --nproc N` on one machine: it starts N
processes through `torch.distributed.launcher.elastic_launch`, the API behind torchrun (c10d rendezvous
on a free local port, no restarts), each of which finds its place in that environment.

Each rank reads a disjoint block of every batch of the one global token stream (`TokenStream(rank=,
world_size=)`), so N processes see the same tokens per step as one process with the same
`batch_tokens`; gradients are averaged by DDP's all-reduce (or FSDP's reduce-scatter).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scaling.config import RunConfig
from scaling.errors import ConfigError
from scaling.outputs import RunResult, read_result
from scaling.trainer import Reporter, run_process

_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel processes of a run."""

    rank: int
    local_rank: int
    world_size: int


def world_from_env() -> World | None:
    """The place the launcher gave this process (an initialised process group first, else the
    `RANK`/`WORLD_SIZE`/`LOCAL_RANK` environment); None outside any launcher or for a world of one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = _env_int("LOCAL_RANK", rank)
    elif "WORLD_SIZE" in os.environ:
        world, rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0)
        local = _env_int("LOCAL_RANK", rank)
    else:
        return None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(f"launcher environment: RANK {rank}, WORLD_SIZE {world}, LOCAL_RANK {local} "
                          f"is not a place among the processes")
    return None if world == 1 else World(rank=rank, local_rank=local, world_size=world)


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"launcher environment: {name}={text!r} is not an integer") from None


def backend_for(device: str) -> str:
    """NCCL when the run computes on CUDA, gloo on the CPU."""
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "nccl" if cuda else "gloo"


@contextmanager
def process_group(backend: str) -> Iterator[None]:
    """Join the env:// process group for the duration (left as found when a launcher already joined it)."""
    import torch.distributed as dist

    if dist.is_initialized():
        yield
        return
    dist.init_process_group(backend, init_method="env://", timeout=_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def launch_local(cfg: RunConfig, out_dir: Path, data: Any, *, progress: bool,
                 stop_after_steps: int | None) -> RunResult:
    """`cfg.train.nproc` processes on this machine through torchrun's `elastic_launch`; returns rank 0's result.

    Each process runs `_launched_entry`, which joins the group from the environment the launcher gave it.
    A failing rank stops the others and raises `torch.distributed.elastic.multiprocessing.errors.ChildFailedError`
    with its traceback. SIGTERM to this process (the launcher): torchrun's agent passes it on to every rank and
    gives them 30 s before SIGKILL; the ranks stop at one agreed step with a checkpoint (`scaling.preemption`), and
    the result is read back from `out_dir` (`stopped_by` "SIGTERM", None if the run had already completed)."""
    import signal

    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=cfg.train.nproc, run_id=f"scaling-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.1,
        start_method="spawn",
    )
    try:
        results = elastic_launch(config, _launched_entry)(cfg.model_dump(mode="json"), str(out_dir), data, progress,
                                                          stop_after_steps)
    except SignalException as exc:
        result = read_result(out_dir) if exc.sigval == signal.SIGTERM else None
        if result is None:  # another signal, or stopped before rank 0 wrote anything
            raise
        running = result.trial.get("status") == "running"
        return dataclasses.replace(result, stopped_by="SIGTERM" if running else None)
    return results[0]


def run_in_world(cfg: RunConfig, out_dir: Path, data: Any, world: World, *, reporter: Reporter | None,
                 progress: bool, stop_after_steps: int | None) -> RunResult:
    """This process's part of the run at `world`'s place: join the group, train (rank 0 writes). `reporter` is
    called on every rank (Ray Train's `report` is a collective), with rank 0's checkpoint folder there only."""
    import torch.distributed as dist

    with process_group(backend_for(cfg.train.device)):
        dist.barrier()  # rank 0 has prepared out_dir (config.json, no stale checkpoint) before anyone reads it
        return run_process(cfg, out_dir, data, rank=world.rank, local_rank=world.local_rank,
                           world_size=world.world_size, reporter=reporter,
                           progress=progress and world.rank == 0, stop_after_steps=stop_after_steps)


def _launched_entry(cfg_dict: dict, out_dir: str, data: Any, progress: bool,
                    stop_after_steps: int | None) -> RunResult:
    """One process started by `launch_local` (module level: the spawn start method pickles it by name)."""
    world = world_from_env()
    assert world is not None, "elastic_launch sets RANK and WORLD_SIZE"
    return run_in_world(RunConfig.model_validate(cfg_dict), Path(out_dir), data, world, reporter=None,
                        progress=progress, stop_after_steps=stop_after_steps)

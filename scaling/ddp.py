"""Data-parallel training over `nproc` local processes (DDP: gloo on CPU, NCCL on CUDA).

The calling process is rank 0: it trains like every other rank and is the one that evaluates the
shared metrics, writes the checkpoint and the rows, and calls the `reporter`, so a Ray Tune trainable
that calls `train()` sees its callback in its own process. Ranks 1..nproc-1 are fresh `spawn`ed
interpreters. Each rank reads a disjoint block of every batch of the one global token stream
(`scaling.data.TokenStream(rank=, world_size=)`), so `nproc` processes see the same tokens per step as
one process with the same `batch_tokens`; gradients are averaged by DDP's all-reduce.
"""

from __future__ import annotations

import datetime
import multiprocessing as mp
import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

import torch

from scaling.config import RunConfig
from scaling.outputs import RunResult
from scaling.trainer import Reporter, run_process

_TIMEOUT = datetime.timedelta(minutes=30)


def train_ddp(cfg: RunConfig, out_dir: Path, data: Any, *, reporter: Reporter | None, progress: bool,
              stop_after_steps: int | None) -> RunResult:
    """Run `cfg` on `cfg.train.nproc` local processes; returns rank 0's `RunResult`."""
    import torch.distributed as dist

    world = cfg.train.nproc
    backend = "nccl" if _uses_cuda(cfg) else "gloo"
    init_method = f"tcp://127.0.0.1:{_free_port()}"
    ctx = mp.get_context("spawn")
    workers = [
        ctx.Process(
            target=_worker,
            args=(rank, world, backend, init_method, cfg.model_dump(mode="json"), str(out_dir), data, stop_after_steps),
            name=f"scaling-ddp-rank{rank}",
        )
        for rank in range(1, world)
    ]
    for w in workers:
        w.start()
    ok = False
    try:
        dist.init_process_group(backend, init_method=init_method, rank=0, world_size=world, timeout=_TIMEOUT)
        try:
            result = run_process(cfg, out_dir, data, rank=0, world_size=world, reporter=reporter,
                                 progress=progress, stop_after_steps=stop_after_steps)
        finally:
            dist.destroy_process_group()
        ok = True
    finally:
        for w in workers:
            w.join(timeout=None if ok else 5)
            if w.is_alive():  # rank 0 failed: the others would wait for it until the timeout
                w.terminate()
                w.join()
    failed = [w.name for w in workers if w.exitcode != 0]
    if failed:
        raise RuntimeError(f"DDP worker(s) {', '.join(failed)} failed (exit codes "
                           f"{[w.exitcode for w in workers]}); see their traceback above")
    return result


def _worker(rank: int, world: int, backend: str, init_method: str, cfg_dict: dict, out_dir: str, data: Any,
            stop_after_steps: int | None) -> None:
    import torch.distributed as dist

    try:
        cfg = RunConfig.model_validate(cfg_dict)
        dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world, timeout=_TIMEOUT)
        try:
            run_process(cfg, Path(out_dir), data, rank=rank, world_size=world, reporter=None, progress=False,
                        stop_after_steps=stop_after_steps)
        finally:
            dist.destroy_process_group()
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)


def _uses_cuda(cfg: RunConfig) -> bool:
    device = cfg.train.device
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

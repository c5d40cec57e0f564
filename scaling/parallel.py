"""How the data-parallel processes of a run share the model (`train.parallel`).

- `ddp` (and a single process): every rank holds the whole model and optimiser; `DistributedDataParallel`
  all-reduces the gradients (Li et al. 2020, "PyTorch Distributed", VLDB). State dicts are the modules' own.
- `fsdp`: PyTorch's `torch.distributed.fsdp.fully_shard` (FSDP2; Zhao et al. 2023, "PyTorch FSDP", VLDB)
  on every transformer block and then the whole model: each rank keeps 1/world of every parameter,
  gradient and AdamW moment (ZeRO-3, Rajbhandari et al. 2020), all-gathers a block's parameters for its
  forward and backward and reduce-scatters its gradients. On CUDA with a bf16 dtype the parameters are
  cast to bf16 for compute and the gradients reduced in fp32 (`MixedPrecisionPolicy`); on the CPU all is fp32.
  Checkpoints and the trunk a cool-down branch sets aside hold the *full* state dicts, gathered to rank 0
  (`torch.distributed.checkpoint.state_dict`, `full_state_dict=True, cpu_offload=True`) and broadcast
  back from rank 0 when loaded, so a checkpoint is one `state.pt` read with `weights_only=True`, whatever
  the number of processes that wrote it.

Sharding changes where the numbers live, not what they are: N counts the model's parameters (a sharded
parameter's `numel()` is its global size) and C = 6ND (Kaplan et al. 2020, eq. 2.1) is the same (tested).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch


class Replicated:
    """One process, or DDP: the whole model on every rank."""

    name = "ddp"

    def __init__(self, world_size: int, device: torch.device) -> None:
        self.world_size, self.device = world_size, device

    def shard(self, model: torch.nn.Module) -> None:
        """Nothing to shard: every rank holds the whole model."""

    @property
    def lockstep(self) -> bool:
        """Whether every rank must run the same number of forward passes (sharded parameters are gathered
        by collectives inside the forward)."""
        return False

    def wrap(self, model: torch.nn.Module, compiled: torch.nn.Module) -> torch.nn.Module:
        """The module the training step calls (DDP around the compiled model when there are several ranks)."""
        if self.world_size == 1:
            return compiled
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(compiled, device_ids=ids)

    def no_sync(self, forward_model: torch.nn.Module, sync: bool) -> AbstractContextManager:
        """Skip the gradient reduction of a micro-batch that is not the last of its step."""
        return nullcontext() if sync or self.world_size == 1 else forward_model.no_sync()

    def state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
        """(model, optimiser) state dicts as a checkpoint holds them."""
        return model.state_dict(), optimizer.state_dict()

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
             optimizer_state: dict) -> None:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)


class Sharded(Replicated):
    """FSDP2 (`fully_shard`): each rank holds a shard of every parameter and optimiser state."""

    name = "fsdp"

    def __init__(self, world_size: int, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(world_size, device)
        self.dtype = dtype

    def shard(self, model: torch.nn.Module) -> None:
        """Shard `model` in place (before its optimiser is built): each block, then the rest (embeddings, head)."""
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        kwargs: dict[str, Any] = {}
        if self.device.type == "cuda" and self.dtype != torch.float32:
            kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=self.dtype, reduce_dtype=torch.float32)
        for block in model.transformer.h:
            fully_shard(block, **kwargs)
        fully_shard(model, **kwargs)

    @property
    def lockstep(self) -> bool:
        return True

    def wrap(self, model: torch.nn.Module, compiled: torch.nn.Module) -> torch.nn.Module:
        return compiled

    def no_sync(self, forward_model: torch.nn.Module, sync: bool) -> AbstractContextManager:
        forward_model.set_requires_gradient_sync(sync)
        return nullcontext()

    def state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
        """Full state dicts on rank 0's CPU (empty on the others); a collective: every rank calls it."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
             optimizer_state: dict) -> None:
        """Rank 0's full state dicts, broadcast and sharded (a collective: every rank calls it)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optimizer_state,
                       options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))


def make_parallel(kind: str, world_size: int, device: torch.device, dtype: torch.dtype) -> Replicated:
    """The strategy of `train.parallel` for `world_size` processes (a single process is never sharded)."""
    if kind == "fsdp" and world_size > 1:
        return Sharded(world_size, device, dtype)
    return Replicated(world_size, device)

"""How the data-parallel processes of a run share the model (`train.parallel`).

- `ddp` (and a single process): every rank holds the whole model and optimiser; `DistributedDataParallel`
  all-reduces the gradients (Li et al. 2020, "PyTorch Distributed", VLDB). State dicts are the modules' own.
- `fsdp`: PyTorch's `torch.distributed.fsdp.fully_shard` (FSDP2; Zhao et al. 2023, "PyTorch FSDP", VLDB)
  on every transformer block and then the whole model: each rank keeps 1/world of every parameter,
  gradient and AdamW moment (ZeRO-3, Rajbhandari et al. 2020), all-gathers a block's parameters for its
  forward and backward and reduce-scatters its gradients. On CUDA with a bf16 dtype the parameters are
  cast to bf16 for compute and the gradients reduced in fp32 (`MixedPrecisionPolicy`); on the CPU all is fp32.
  Each rank checkpoints its own shard (`torch.distributed.checkpoint`, the sharded layout of
  `scaling.checkpoint`): nothing is gathered to one rank, in a checkpoint or in the trunk a cool-down
  branch sets aside (each rank keeps its shard of it on the CPU).

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

    @property
    def sharded_checkpoints(self) -> bool:
        """Whether each rank checkpoints its own shard (`scaling.checkpoint`'s sharded layout) instead of rank 0
        writing everything (the full layout)."""
        return False

    def state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
        """(model, optimiser) state dicts as this rank keeps them (a checkpoint, the trunk of a branch)."""
        return model.state_dict(), optimizer.state_dict()

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
             optimizer_state: dict) -> None:
        """Load what `state` (or `named_state`, from a sharded checkpoint) gave."""
        if _named(optimizer_state):
            self.load_named(model, optimizer, model_state, optimizer_state)
            return
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)

    def load_full(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
                  optimizer_state: dict) -> None:
        """Load the whole (unsharded) state dicts of a full-layout checkpoint."""
        self.load(model, optimizer, model_state, optimizer_state)

    def named_state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
        """(model, optimiser) state dicts keyed by parameter name (`get_state_dict`): this rank's DTensor shards
        under FSDP, whole tensors otherwise; what a sharded checkpoint saves and loads into, for any number of
        processes. A collective under FSDP."""
        from torch.distributed.checkpoint.state_dict import get_state_dict

        return get_state_dict(model, optimizer)

    def load_named(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
                   optimizer_state: dict) -> None:
        """Load what `named_state` gave (`set_state_dict`; a collective under FSDP)."""
        from torch.distributed.checkpoint.state_dict import set_state_dict

        set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optimizer_state)


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

    @property
    def sharded_checkpoints(self) -> bool:
        return True

    def state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
        """This rank's shards, keyed by parameter name (a collective: every rank calls it)."""
        return self.named_state(model, optimizer)

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
             optimizer_state: dict) -> None:
        """This rank's shards, as `state` gave them (a collective)."""
        self.load_named(model, optimizer, model_state, optimizer_state)

    def load_full(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
                  optimizer_state: dict) -> None:
        """Whole state dicts (a full-layout checkpoint, e.g. of the same run in one process): rank 0's copy is
        broadcast and each rank keeps its shard (a collective)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        if not _named(optimizer_state):
            optimizer_state = _by_name(model, optimizer, optimizer_state)
        set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optimizer_state,
                       options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))


def _named(optimizer_state: dict) -> bool:
    """Whether an optimiser state dict is keyed by parameter name (`get_state_dict`) rather than by index."""
    groups = optimizer_state.get("param_groups") or [{}]
    return any(isinstance(p, str) for g in groups for p in g.get("params", []))


def _by_name(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> dict:
    """`optimizer.state_dict()` (parameters numbered in the order of `optimizer.param_groups`) keyed by parameter
    name instead, the form `set_state_dict` takes; the model's parameter names are the same sharded or not."""
    names = {id(p): n for n, p in model.named_parameters()}
    order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    groups = [{**g, "params": [order[i] for i in g["params"]]} for g in state["param_groups"]]
    return {"state": {order[i]: v for i, v in state["state"].items()}, "param_groups": groups}


def make_parallel(kind: str, world_size: int, device: torch.device, dtype: torch.dtype) -> Replicated:
    """The strategy of `train.parallel` for `world_size` processes (a single process is never sharded)."""
    if kind == "fsdp" and world_size > 1:
        return Sharded(world_size, device, dtype)
    return Replicated(world_size, device)

"""Validation loss: mean cross-entropy in nats per token over a run's fixed validation batches
(`scaling.data.val_batches`), the same windows at every evaluation, sharded across DDP ranks."""

from __future__ import annotations

import torch

from scaling.device import autocast, to_device


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], *, device: torch.device,
             dtype: torch.dtype, rank: int = 0, world_size: int = 1, lockstep: bool = False) -> float:
    """Mean cross-entropy (nats/token) of `model` over `batches`; rank r evaluates every world_size-th batch
    and the sums are all-reduced, so every rank returns the loss over all of them. `lockstep` (FSDP, whose
    forward is a collective): every rank runs ceil(len / world_size) forwards, the extra ones uncounted."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    mine = batches[rank::world_size]
    rounds = -(-len(batches) // world_size) if lockstep else len(mine)
    for i in range(rounds):
        x, y = to_device(*(mine[i] if i < len(mine) else batches[0]), device)
        with autocast(device, dtype):
            _, loss = model(x, y)
        if i < len(mine):
            total[0] += loss.double() * y.numel()
            total[1] += y.numel()
    if world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(total)
    return float(total[0] / total[1])

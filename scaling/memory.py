"""Memory a training run needs, checked before anything is allocated.

A run that cannot fit is refused with one line naming its shape, instead of the process asking the
allocator for 20 GB and dying (or swapping the machine to a halt). The estimate is a lower bound of
what `scaling.train` and the `sweep plan` probe allocate:

- parameters, gradients and AdamW's two moments in fp32: 16 bytes per parameter (N from
  `scaling.counting.param_counts`);
- activations kept for the backward pass, per token per layer: ``(34 d + 5 a s)`` bytes in 16-bit
  precision (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
  eq. 2, with h = d, a heads, s context), doubled for fp32.
"""

from __future__ import annotations

import os

from scaling.config import ModelConfig
from scaling.counting import param_counts
from scaling.errors import ConfigError

BYTES_PER_PARAM = 16  # fp32 weight + gradient + AdamW exp_avg + exp_avg_sq


def training_bytes(model: ModelConfig, micro_batch_tokens: int, shards: int = 1) -> int:
    """Lower bound of the bytes one training process of `model` needs on `micro_batch_tokens` tokens
    (fp32); `shards` > 1 when FSDP splits parameters, gradients and optimiser state over that many ranks."""
    params = param_counts(model)["params"]
    per_token_layer = 2 * (34 * model.d_model + 5 * model.n_head * model.context)
    return BYTES_PER_PARAM * params // max(1, shards) + micro_batch_tokens * model.n_layer * per_token_layer


def available_bytes(device: str = "cpu") -> int | None:
    """Memory free for a new allocation: CUDA's free memory on `cuda[:i]`, else the host's
    MemAvailable (/proc/meminfo) or its physical memory; None when unknown."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            index = int(device.partition(":")[2] or 0)
            return int(torch.cuda.mem_get_info(index)[0])
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(model: ModelConfig, micro_batch_tokens: int, device: str = "cpu", what: str = "run",
               shards: int = 1) -> int:
    """The bytes `training_bytes` estimates, or a ConfigError naming the shape when they exceed what
    `device` has free (`available_bytes`)."""
    need = training_bytes(model, micro_batch_tokens, shards)
    have = available_bytes(device)
    if have is not None and need > have:
        from contracts.counts import format_count

        params = param_counts(model)["params"]
        raise ConfigError(
            f"{what}: the model n_layer {model.n_layer}, d_model {model.d_model}, context {model.context} "
            f"({format_count(params)} params) needs at least {need / 2**30:,.1f} GiB to train on "
            f"{micro_batch_tokens} tokens a step, more than the {have / 2**30:,.1f} GiB free on {device}; "
            f"nothing was allocated"
        )
    return need

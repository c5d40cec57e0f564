"""Where a run computes and in what precision: the device of each process, the autocast dtype, moving
batches there, and the peak bf16 FLOP/s of known GPUs (for MFU)."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from scaling.errors import ConfigError

# Dense bf16 peak FLOP/s per GPU (no sparsity), for MFU. Matched against torch.cuda.get_device_name().
PEAK_FLOPS_BF16 = (
    ("H200", 989e12), ("H100", 989e12), ("GH200", 989e12), ("B200", 2250e12), ("A100", 312e12),
    ("A800", 312e12), ("L40S", 362e12), ("L40", 181e12), ("L4", 121e12), ("A10", 125e12),
    ("RTX 4090", 165e12), ("RTX 3090", 71e12), ("V100", 125e12), ("T4", 65e12),
)


def resolve_device(spec: str, local_rank: int, world_size: int) -> torch.device:
    """`train.device` (auto, cpu, cuda, cuda:N) for the data-parallel process with `local_rank` on its node (the
    GPU of that index); on CUDA also selects it and allows TF32."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device: {spec!r} but CUDA is not available")
        if world_size > 1:
            if local_rank >= torch.cuda.device_count():
                raise ConfigError(f"train.nproc: local rank {local_rank} of {world_size} processes but "
                                  f"{torch.cuda.device_count()} GPUs on this node")
            device = torch.device("cuda", local_rank)
        elif device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    elif device.type != "cpu":
        raise ConfigError(f"train.device: {spec!r} is not auto, cpu, cuda or cuda:N")
    return device


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """`train.dtype`: auto is bf16 on a CUDA device that has it, else fp32."""
    if spec == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[spec]


def autocast(device: torch.device, dtype: torch.dtype):
    """The autocast context of a forward pass (none in fp32)."""
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch on `device` (pinned and copied asynchronously to a GPU)."""
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x, y


def peak_flops(device: torch.device) -> float | None:
    """Dense bf16 peak FLOP/s of the GPU, None on CPU or an unknown GPU."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_FLOPS_BF16 if key in name), None)


def device_name(device: torch.device, world_size: int) -> str:
    """The trials table's `device`: `cpu`, the GPU's name, or `2x <name>` for DDP."""
    name = "cpu" if device.type == "cpu" else torch.cuda.get_device_name(device)
    return f"{world_size}x {name}" if world_size > 1 else name

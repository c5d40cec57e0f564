"""FSDP checkpoint cost, gathered vs sharded, measured in this run: 2 gloo processes on the CPU, one GPT sharded by
`fully_shard` (`scaling.parallel.Sharded`) with its AdamW state, saved by `scaling.checkpoint.save_checkpoint`.

    python benchmarks/bench_checkpoint_fsdp.py                 29.4M parameters, 3 saves of each kind (~1-2 min)
    python benchmarks/bench_checkpoint_fsdp.py --smoke-test    a 2-layer model, 1 save of each kind

- gathered: the layout before sharded checkpoints (`get_state_dict(full_state_dict=True, cpu_offload=True)`: every
  tensor all-gathered and copied to rank 0's CPU, which writes one `state.pt`);
- sharded: this version's FSDP layout (`get_state_dict()`: each rank's own DTensor shards; every rank writes its
  file through `torch.distributed.checkpoint`, rank 0 the `.metadata`, `state.pt` and the atomic swap).

Each save runs in a fresh pair of processes launched by torchrun's `elastic_launch` (kinds alternate), after one
training step (so the AdamW moments exist). Measured on rank 0: the save's wall time (barrier to barrier, both
ranks done) and its peak extra memory: the highest resident set size (`/proc/self/statm`, sampled every 2 ms)
during the save minus the resident set size just before it (freed heap pages handed back to the OS first),
and the bytes of the tensors the save copied to rank 0's CPU. Printed: medians per kind and their ratios.

The machine this runs on is shared by other work in development: compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

MODEL = {"n_layer": 8, "d_model": 512, "n_head": 8, "context": 128, "vocab_size": 8192}
SMOKE_MODEL = {"n_layer": 2, "d_model": 64, "n_head": 2, "context": 64, "vocab_size": 512}
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _release_free_heap() -> None:
    """Hand freed heap pages back to the OS (glibc `malloc_trim`), else a save reusing them looks free."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _PeakRss:
    """The highest resident set size seen while the block runs (a sampling thread)."""

    def __enter__(self) -> "_PeakRss":
        _release_free_heap()
        self.before = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _one_save(model_cfg: dict, kind: str, out: str) -> dict:
    """One rank: build, shard, train one step, save once (`kind`); rank 0 returns its measurements."""
    import torch
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    from scaling import checkpoint as ckpt
    from scaling.config import ModelConfig
    from scaling.model import GPT
    from scaling.parallel import Sharded

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = ModelConfig(**model_cfg)
    model = GPT(cfg)
    parallel = Sharded(dist.get_world_size(), torch.device("cpu"), torch.float32)
    parallel.shard(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, cfg.vocab_size, (1, cfg.context))
    _, loss = model(x, x)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    n_params = sum(p.numel() for p in model.parameters())
    dist.barrier()
    with _PeakRss() as mem:
        t0 = time.perf_counter()
        if kind == "gathered":
            msd, osd = get_state_dict(model, optimizer,
                                      options=StateDictOptions(full_state_dict=True, cpu_offload=True))
            copied = _tensor_bytes((msd, osd))
            if rank == 0:
                ckpt.save_checkpoint(out, {"model": msd, "optimizer": osd}, {"step": 1})
            del msd, osd
        else:
            msd, osd = parallel.named_state(model, optimizer)  # views of this rank's own shards: nothing copied
            copied = 0
            ckpt.save_checkpoint(out, {"optimizer_param_groups": osd["param_groups"]}, {"step": 1},
                                 {"model": msd, "optimizer": osd["state"]}, rank=rank)
        dist.barrier()
        seconds = time.perf_counter() - t0
    folder = Path(out) / "checkpoint"
    result = {"seconds": seconds, "peak_extra": mem.peak - mem.before, "params": n_params, "copied": copied,
              "bytes": sum(p.stat().st_size for p in folder.iterdir()),
              "largest_file": max(p.stat().st_size for p in folder.iterdir())}
    dist.barrier()
    dist.destroy_process_group()
    return result


def _tensor_bytes(tree) -> int:
    import torch

    if isinstance(tree, torch.Tensor):
        return tree.numel() * tree.element_size()
    if isinstance(tree, dict):
        return sum(_tensor_bytes(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return sum(_tensor_bytes(v) for v in tree)
    return 0


def _launch(model_cfg: dict, kind: str, out: Path) -> dict:
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=2, run_id=f"bench-{uuid.uuid4().hex[:8]}",
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.1,
                          start_method="spawn")
    shutil.rmtree(out, ignore_errors=True)
    return elastic_launch(config, _one_save)(model_cfg, kind, str(out))[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke-test", action="store_true", help="a tiny model, one save of each kind")
    ap.add_argument("--repeats", type=int, default=3, help="saves of each kind (each in fresh processes)")
    args = ap.parse_args()
    model_cfg, repeats = (SMOKE_MODEL, 1) if args.smoke_test else (MODEL, args.repeats)
    root = Path(tempfile.mkdtemp(prefix="bench_checkpoint_fsdp_"))
    rows: dict[str, list[dict]] = {"gathered": [], "sharded": []}
    try:
        for _ in range(repeats):
            for kind in rows:
                rows[kind].append(_launch(model_cfg, kind, root / kind))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("seconds", "peak_extra", "copied", "bytes", "largest_file")}
           for k, v in rows.items()}
    n = rows["sharded"][0]["params"]
    print(f"model {model_cfg} : {n / 1e6:.1f}M parameters, fp32, AdamW; 2 gloo processes; {repeats} saves of each kind")
    for kind, m in med.items():
        print(f"{kind:8s}: save {m['seconds']:.2f} s, rank-0 peak extra memory {m['peak_extra'] / 2**20:.0f} MiB "
              f"(tensors copied to its CPU {m['copied'] / 2**20:.0f} MiB), "
              f"checkpoint {m['bytes'] / 2**20:.0f} MiB, largest file {m['largest_file'] / 2**20:.0f} MiB")
    g, s = med["gathered"], med["sharded"]
    print(f"sharded / gathered: save time {s['seconds'] / g['seconds']:.2f}, "
          f"rank-0 peak extra memory {s['peak_extra'] / max(g['peak_extra'], 1):.2f}, "
          f"largest file {s['largest_file'] / g['largest_file']:.2f}")


if __name__ == "__main__":
    main()

"""One-GPU check (<= 8 minutes on an H100/H200): what a GPU gives this project's training, in one JSON.

    python benchmarks/gpu_check.py --out gpu_check.json        on a machine with one CUDA GPU
    python benchmarks/gpu_check.py --dry-run --out dry.json    every code path on CPU with tiny sizes (a test)

1. **Throughput of a 124M model** (GPT-2 small shape: 12 layers, d_model 768, 12 heads, context 1024,
   vocab 50,304) in bf16 autocast, AdamW, on random tokens: tokens/s over `--steps` timed optimiser
   steps after `--warmup` untimed ones, without and with `torch.compile`, and MFU = tokens/s x model
   FLOPs per token (`scaling.counting.model_flops_per_token`: 6 N plus attention, PaLM's appendix B
   convention) / the device's peak bf16 FLOP/s (`scaling.device.peak_flops`).
2. **Packing tiny trials on one GPU**: the same 12-trial sweep of tiny GPTs (`sweeps.launch.launch`
   on a local Ray with one GPU) twice: packed 4 per GPU (`resources.gpus: 0.25`; each trial caps its
   memory with `torch.cuda.set_per_process_memory_fraction(0.25)`, `sweeps.trainable`) and one at a
   time (`gpus: 1`). Throughput = training tokens of all trials / sweep wall time; printed as the
   ratio packed / one at a time. Ray's fractional GPUs are logical only: the memory cap is what keeps
   four trials from exhausting the device.

`--dry-run`: model 1 becomes a 2-layer d_model 64 model at context 64 in fp32 on the CPU (compile
included when the CPU toolchain allows; its error is recorded otherwise), and the sweep packs CPU trials
(`cpus: 0.5`, 4 at once on 2 logical CPUs) against one at a time, with 4 trials of 10-20 steps.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

GPT2_SMALL = {"n_layer": 12, "d_model": 768, "n_head": 12, "context": 1024, "vocab_size": 50304}
TINY = {"n_layer": 2, "d_model": 64, "n_head": 4, "context": 64, "vocab_size": 512}

SWEEP = """
name: gpu-pack
vocab_size: 512
context: {context}
data: {{max_bytes: 3000000}}
design: grid
sizes: [{sizes}]
tokens: [{tokens}]
min_steps: 10
batch: {{tokens: {batch}}}
lr: {{rule: fixed, value: 3e-3}}
train: {{eval_tokens: {eval_tokens}}}
resources: {resources}
max_concurrent_trials: {concurrent}
retries: 0
"""


def throughput(model_kw: dict, *, device: str, batch_rows: int, steps: int, warmup: int, compile: bool) -> dict:
    """Tokens/s and MFU of AdamW training steps of one model on random tokens."""
    import torch

    from scaling.config import ModelConfig
    from scaling.counting import model_flops_per_token, param_counts
    from scaling.device import autocast, peak_flops
    from scaling.model import GPT

    dev = torch.device(device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    cfg = ModelConfig(**model_kw)
    torch.manual_seed(0)
    model = GPT(cfg).to(dev)
    opt = torch.optim.AdamW(model.optimizer_groups(0.1), lr=3e-4, fused=dev.type == "cuda")
    fwd = torch.compile(model) if compile else model
    x = torch.randint(0, cfg.vocab_size, (batch_rows, cfg.context), device=dev)
    y = torch.randint(0, cfg.vocab_size, (batch_rows, cfg.context), device=dev)

    def step() -> None:
        with autocast(dev, dtype):
            _, loss = fwd(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(dev)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(dev)
    dt = time.perf_counter() - t0
    tps = batch_rows * cfg.context * steps / dt
    peak = peak_flops(dev)
    out = {"compile": compile, "device": str(dev), "dtype": str(dtype).removeprefix("torch."),
           "params": param_counts(cfg)["params"], "tokens_per_step": batch_rows * cfg.context, "steps": steps,
           "warmup_s": warm_s, "tokens_per_s": tps, "model_flops_per_token": model_flops_per_token(cfg),
           "peak_flops": peak, "mfu": tps * model_flops_per_token(cfg) / peak if peak else None}
    if dev.type == "cuda":
        out["max_memory_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
        torch.cuda.reset_peak_memory_stats(dev)
    return out


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def packing(dry_run: bool, root: Path) -> dict:
    """The 12-trial sweep (4 trials in a dry run) packed 4 at once and one at a time; throughput of each
    and their ratio."""
    import ray

    from sweeps.launch import launch
    from sweeps.spec import load_spec
    import pandas as pd

    if dry_run:
        common = dict(context=64, sizes="16k, 20k", tokens="10k, 20k", batch=1024, eval_tokens=2048)  # 4 trials
        packed_res, serial_res, serial_n = "{cpus: 0.5}", "{cpus: 0.5}", 1
        ray_kw = {"num_cpus": 2}
    else:
        common = dict(context=128, sizes="100k, 200k, 400k", tokens="2M, 3M, 4M, 5M", batch=8192, eval_tokens=16384)
        packed_res, serial_res, serial_n = "{cpus: 2, gpus: 0.25}", "{cpus: 2, gpus: 1}", 1
        ray_kw = {"num_cpus": max(8, os.cpu_count() or 8), "num_gpus": 1}
    results = {}
    ray.init("local", include_dashboard=False, **ray_kw)
    try:
        for name, res, concurrent in (("packed", packed_res, 4), ("one_at_a_time", serial_res, serial_n)):
            spec_path = root / f"{name}.yaml"
            spec_path.write_text(SWEEP.format(resources=res, concurrent=concurrent, **common))
            spec = load_spec(spec_path)
            t0 = time.perf_counter()
            status = launch(spec, root / name, progress=False)
            wall = time.perf_counter() - t0
            trials = pd.read_parquet(root / name / "trials.parquet")
            tokens = float(trials["tokens_seen"].sum())
            results[name] = {"trials": len(trials), "completed": int(status["counts"]["completed"]), "wall_s": wall,
                             "tokens": tokens, "tokens_per_s": tokens / wall,
                             "trial_tokens_per_s_mean": float(trials["tokens_per_s"].mean())}
    finally:
        ray.shutdown()
    results["throughput_ratio_packed_vs_one"] = (results["packed"]["tokens_per_s"]
                                                 / results["one_at_a_time"]["tokens_per_s"])
    return results


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: every code path, no GPU numbers")
    ap.add_argument("--out", default="gpu_check.json", help="the JSON written (atomically)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per throughput measurement")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (compilation included)")
    ap.add_argument("--skip-packing", action="store_true", help="only the 124M throughput")
    args = ap.parse_args(argv)

    import torch

    from contracts.jsonio import write_json

    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA GPU here; run with --dry-run to check the code paths on CPU")
    device = "cpu" if args.dry_run else "cuda"
    model_kw = TINY if args.dry_run else GPT2_SMALL
    rows = 4 if args.dry_run else 16  # 16 x 1024 = 16k tokens per step for the 124M model
    steps = args.steps or (2 if args.dry_run else 30)
    warmup = args.warmup or (1 if args.dry_run else 5)
    report: dict = {"dry_run": args.dry_run, "torch": torch.__version__,
                    "device_name": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "throughput": []}
    for compile in (False, True):
        try:
            report["throughput"].append(throughput(model_kw, device=device, batch_rows=rows, steps=steps,
                                                   warmup=warmup, compile=compile))
        except Exception as exc:  # e.g. no C++ toolchain for inductor on this CPU: record it, go on
            report["throughput"].append({"compile": compile, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        print(json.dumps(report["throughput"][-1]), flush=True)
    ok = [t for t in report["throughput"] if "tokens_per_s" in t]
    if len(ok) == 2:
        report["compile_speedup"] = ok[1]["tokens_per_s"] / ok[0]["tokens_per_s"]
    if not args.skip_packing:
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
            report["packing"] = packing(args.dry_run, Path(tmp))
        print(json.dumps(report["packing"]), flush=True)
    write_json(Path(args.out), report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()

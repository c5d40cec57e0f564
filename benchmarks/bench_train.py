"""Training throughput of `scaling.train.train` against a minimal plain-PyTorch loop, measured in one run.

    python benchmarks/bench_train.py                    CPU: 2 layers x 128, context 128, 4,096-token batches
    python benchmarks/bench_train.py --smoke-test       seconds: tiny model, a few steps (CI checks it runs)
    python benchmarks/bench_train.py --gpt2             CUDA: GPT-2 124M, context 1024, bf16, with and
                                                        without torch.compile; prints MFU

Both sides train the same `scaling.model.GPT`, from the same seed, on windows of the same token memmap,
with the same batch, micro-batch, thread count, AdamW settings and gradient clipping. The plain loop is
what one writes by hand (nanoGPT style): random windows from the memmap, forward, backward, clip, step,
`loss.item()`. `train()` adds everything a sweep needs (the resumable data stream, the LR schedule,
divergence checks, progress). Each side's tokens/s counts the training steps only, without the first
step (compilation, allocation) and without evaluation or checkpoints: `train()` reports exactly that as
`trial["tokens_per_s"]`. The two are interleaved for `--rounds` rounds and the medians compared:
target ratio >= 1.0 on CPU. MFU (CUDA only) = tokens/s x FLOPs/token (`counting.model_flops_per_token`:
Chinchilla appendix F without the embedding lookup) / (peak bf16 FLOP/s of the GPU, `train.PEAK_FLOPS_BF16`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from scaling import counting
from scaling.config import DataConfig, ModelConfig, RunConfig
from scaling.data import prepare_data
from scaling.model import GPT
from scaling.train import PEAK_FLOPS_BF16, make_plan, train


def plain_loop(cfg: RunConfig, tokens: np.ndarray, steps: int) -> float:
    """A minimal hand-written training loop of the same model and batch; returns tokens/s (first step excluded)."""
    plan = make_plan(cfg, device_type=cfg.train.device.split(":")[0])
    t, T = cfg.train, cfg.model.context
    device = torch.device(t.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(t.seed)
    model = GPT(cfg.model).to(device)
    optimizer = torch.optim.AdamW(model.optimizer_groups(t.weight_decay), lr=plan.lr, betas=(t.beta1, t.beta2),
                                  fused=device.type == "cuda" or None)  # torch's default on CPU: the foreach loop
    forward = torch.compile(model) if t.compile else model
    rng = np.random.default_rng(t.seed)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        for _ in range(plan.accum_steps):
            starts = rng.integers(0, len(tokens) - T - 1, plan.micro_batch_size)
            buf = torch.from_numpy(np.stack([tokens[s : s + T + 1] for s in starts]).astype(np.int64))
            x, y = buf[:, :-1].to(device), buf[:, 1:].to(device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                _, loss = forward(x, y)
            (loss / plan.accum_steps).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - t0)
    return plan.batch_tokens * (steps - 1) / sum(times[1:])


def scaling_train(cfg: RunConfig, data, work: Path, name: str) -> dict:
    result = train(cfg, work / name, data=data, resume=False, progress=False)
    return result.trial


def measure(model: ModelConfig, data_cfg: DataConfig, *, steps: int, batch_tokens: int, micro_batch_tokens: int | None,
            threads: int | None, device: str, compile_: bool, rounds: int, label: str) -> dict:
    data = prepare_data(data_cfg, progress=False)
    cfg = RunConfig.model_validate({
        "model": model.model_dump(), "data": data_cfg.model_dump(),
        "train": {"tokens": steps * batch_tokens, "batch_tokens": batch_tokens, "micro_batch_tokens": micro_batch_tokens,
                  "threads": threads, "device": device, "compile": compile_, "eval_interval": 10**9,
                  "eval_tokens": model.context * 8, "lr": 1e-3},
    })
    if threads:
        torch.set_num_threads(threads)
    tokens = data.train_tokens()
    ours, plain, mfu = [], [], []
    with tempfile.TemporaryDirectory() as work:
        for r in range(rounds):
            trial = scaling_train(cfg, data, Path(work), f"r{r}")
            ours.append(trial["tokens_per_s"])
            if trial["mfu"] is not None:
                mfu.append(trial["mfu"])
            plain.append(plain_loop(cfg, tokens, steps))
    out = {
        "label": label, "params": counting.param_counts(model)["params"], "threads": torch.get_num_threads(),
        "batch_tokens": make_plan(cfg, device_type=device.split(":")[0]).batch_tokens, "steps": steps,
        "scaling_tokens_per_s": statistics.median(ours), "plain_tokens_per_s": statistics.median(plain),
        "all_scaling": [round(x) for x in ours], "all_plain": [round(x) for x in plain],
    }
    out["ratio"] = out["scaling_tokens_per_s"] / out["plain_tokens_per_s"]
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name()
        peak = next((p for k, p in PEAK_FLOPS_BF16 if k in name), None)
        fpt = counting.model_flops_per_token(model)
        out["device"] = name
        out["mfu_scaling"] = statistics.median(mfu) if mfu else None
        out["mfu_plain"] = out["plain_tokens_per_s"] * fpt / peak if peak else None
    return out


def report(r: dict) -> None:
    print(f"{r['label']}: {r['params']:,} params, batch {r['batch_tokens']:,} tokens, {r['steps']} steps, "
          f"{r['threads']} threads")
    print(f"  scaling train  {r['scaling_tokens_per_s']:>12,.0f} tokens/s   (rounds: {r['all_scaling']})")
    print(f"  plain loop     {r['plain_tokens_per_s']:>12,.0f} tokens/s   (rounds: {r['all_plain']})")
    print(f"  ratio          {r['ratio']:>12.3f}   (target >= 1.0)")
    if "mfu_scaling" in r:
        fmt = lambda x: "n/a (unknown GPU peak)" if x is None else f"{x:.1%}"  # noqa: E731
        print(f"  MFU on {r['device']}: scaling train {fmt(r['mfu_scaling'])}, plain loop {fmt(r['mfu_plain'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke-test", action="store_true", help="tiny and quick: checks that the benchmark runs")
    ap.add_argument("--gpt2", action="store_true", help="CUDA: GPT-2 124M at context 1024, bf16, +/- torch.compile")
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for both sides (default 1)")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--cache-dir", help="prepared-corpus cache (default $SCALING_CACHE or ~/.cache/scaling)")
    args = ap.parse_args()

    if args.gpt2:
        if not torch.cuda.is_available():
            raise SystemExit("--gpt2 needs a CUDA GPU: MFU is unmeasured on this machine")
        model = ModelConfig(n_layer=12, d_model=768, n_head=12, context=1024, vocab_size=50304)
        data_cfg = DataConfig(vocab_size=50304, cache_dir=args.cache_dir)
        for compile_ in (False, True):
            report(measure(model, data_cfg, steps=args.steps if args.steps != 30 else 12, batch_tokens=2**19,
                           micro_batch_tokens=16 * 1024, threads=None, device="cuda", compile_=compile_,
                           rounds=max(1, args.rounds - 1), label=f"GPT-2 124M bf16, compile={compile_}"))
        return

    if args.smoke_test:
        model = ModelConfig(n_layer=1, d_model=32, n_head=2, context=64, vocab_size=512)
        with tempfile.TemporaryDirectory() as cache:
            data_cfg = DataConfig(vocab_size=512, max_bytes=1_000_000, cache_dir=args.cache_dir or cache)
            report(measure(model, data_cfg, steps=4, batch_tokens=1024, micro_batch_tokens=None, threads=1,
                           device="cpu", compile_=False, rounds=1, label="smoke test"))
        return

    model = ModelConfig(n_layer=args.n_layer, d_model=args.d_model, n_head=max(1, args.d_model // 32),
                        context=args.context, vocab_size=args.vocab_size)
    data_cfg = DataConfig(vocab_size=args.vocab_size, cache_dir=args.cache_dir)
    report(measure(model, data_cfg, steps=args.steps, batch_tokens=args.batch_tokens, micro_batch_tokens=None,
                   threads=args.threads, device="cpu", compile_=args.compile, rounds=args.rounds,
                   label=f"CPU {args.n_layer} layers x {args.d_model}, context {args.context}"))


if __name__ == "__main__":
    main()

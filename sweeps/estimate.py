"""How long a sweep will take: per-trial time from measured (or assumed) throughput, then a schedule.

Per-trial time = (D + evaluation tokens / 3) / tokens_per_s (D: every token trained, WSD cool-down
branches included), where tokens_per_s comes from either

- a **probe** (`source="probe"`): a few real optimiser steps (forward, backward, AdamW) of each
  distinct shape on random tokens, at the trial's batch and thread count, timed after one warm-up
  step; a CPU probe runs here, on this machine, so it says how fast *this* machine is; or
- a **calibration** (`source="assumed"`): detailed FLOPs per token (Chinchilla appendix F) over an
  assumed sustained rate: 50 GFLOP/s per CPU thread (fp32, measured for tiny GPTs on the 2-core
  development machine, notes/training.md §7), or 40% MFU of an H100's 989 TFLOP/s bf16 per GPU.
  plus 30 ms per optimiser step on CPU (tiny models are bound by per-step overhead, not FLOPs).
  Used for GPU specs planned on a CPU machine and with `--no-probe`.

Wall time: trials are placed longest-first on `slots` parallel slots (list scheduling), plus a fixed
per-trial start-up cost (Ray actor, torch import, data open; ~3 s measured on 2 cores).
"""

from __future__ import annotations

import heapq
import os
import time
from dataclasses import dataclass

from scaling.config import ModelConfig
from sweeps.design import Trial

CPU_FLOPS_PER_THREAD = 50e9
CPU_STEP_OVERHEAD_S = 0.03  # per optimiser step of a tiny model on a busy 2-core box (Python, AdamW, launch)
GPU_PEAK_FLOPS = 989e12  # H100 SXM dense bf16
GPU_MFU = 0.40
TRIAL_OVERHEAD_S = 3.0


@dataclass(frozen=True)
class Estimate:
    per_trial_s: dict[str, float]  # run_id -> seconds
    tokens_per_s: dict[str, float]  # run_id -> training tokens per second
    wall_s: float
    slots: int
    source: str  # "probe" | "assumed"
    note: str


def probe_tokens_per_s(model: ModelConfig, *, batch_tokens: int, threads: int, steps: int = 3) -> float:
    """Time `steps` AdamW steps of `model` on random tokens (CPU, fp32) after one warm-up; tokens/s."""
    import torch

    from scaling.memory import check_fits
    from scaling.model import GPT

    check_fits(model, max(model.context, batch_tokens), "cpu", what="sweep plan probe")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        torch.manual_seed(0)
        gpt = GPT(model)
        opt = torch.optim.AdamW(gpt.optimizer_groups(0.1), lr=1e-3)
        rows = max(1, batch_tokens // model.context)
        x = torch.randint(0, model.vocab_size, (rows, model.context))
        y = torch.randint(0, model.vocab_size, (rows, model.context))

        def step() -> None:
            _, loss = gpt(x, y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        dt = time.perf_counter() - t0
        return rows * model.context * steps / dt
    finally:
        torch.set_num_threads(old_threads)


def assumed_tokens_per_s(trial: Trial) -> float:
    per_token = trial.flops_detailed / trial.tokens
    if trial.gpus > 0:
        return max(trial.gpus, 1e-3) * GPU_PEAK_FLOPS * GPU_MFU / per_token
    return max(1, int(trial.cpus)) * CPU_FLOPS_PER_THREAD / per_token


def estimate(trials: list[Trial], *, slots: int, probe: bool = True, probe_steps: int = 3,
             progress: bool = False) -> Estimate:
    """Per-trial and total wall time; probes CPU trials' shapes when `probe` (GPU trials are assumed),
    with a progress bar over the shapes on stderr when `progress`."""
    from tqdm.auto import tqdm

    rates: dict[str, float] = {}
    cache: dict[tuple, float] = {}
    probed = assumed = 0

    def key(t: Trial) -> tuple:
        return (t.config.model, t.config.train.batch_tokens, t.config.train.threads)

    def is_cpu(t: Trial) -> bool:
        return t.config.train.device == "cpu" or (t.gpus == 0 and t.config.train.device == "auto")

    n_shapes = len({key(t) for t in trials if is_cpu(t)}) if probe else 0
    bar = tqdm(total=n_shapes, desc="probing throughput", unit="shape", disable=not progress or not n_shapes,
               leave=False)
    with bar:
        for t in trials:
            if probe and is_cpu(t):
                if key(t) not in cache:
                    cache[key(t)] = probe_tokens_per_s(
                        t.config.model, batch_tokens=t.config.train.batch_tokens,
                        threads=t.config.train.threads or 1, steps=probe_steps,
                    )
                    bar.update()
                rates[t.run_id] = cache[key(t)]
                probed += 1
            else:
                rates[t.run_id] = assumed_tokens_per_s(t)
                assumed += 1
    per_trial = {}
    for t in trials:
        tr = t.config.train
        n_evals = (t.steps // tr.eval_interval + 1) if tr.eval_interval else 21
        trained = int(t.extra.get("tokens_trained", t.tokens))  # cool-down branches included
        n_evals += len(t.planned_points) - 1  # each branch ends with an evaluation
        eval_tokens = n_evals * tr.eval_tokens
        seconds = (trained + eval_tokens / 3.0) / rates[t.run_id] + TRIAL_OVERHEAD_S
        if not probe and t.gpus == 0:
            seconds += trained / tr.batch_tokens * CPU_STEP_OVERHEAD_S  # tiny CPU models are bound by per-step overhead
        per_trial[t.run_id] = seconds
    wall = schedule_makespan(list(per_trial.values()), slots)
    if probed and assumed:
        source, note = "probe+assumed", f"{len(cache)} CPU shapes probed here; GPU trials at {GPU_MFU:.0%} MFU of 989 TFLOP/s"
    elif probed:
        source, note = "probe", f"measured: {probe_steps} AdamW steps of each of {len(cache)} shapes on this machine"
    else:
        source = "assumed"
        note = (f"{GPU_MFU:.0%} MFU of an H100 (989 TFLOP/s bf16) per GPU" if any(t.gpus > 0 for t in trials)
                else f"{CPU_FLOPS_PER_THREAD / 1e9:.0f} GFLOP/s per CPU thread + "
                     f"{CPU_STEP_OVERHEAD_S * 1e3:.0f} ms per step (no probe)")
    note += f"; +{TRIAL_OVERHEAD_S:.0f} s start-up per trial; {slots} trial(s) at a time"
    return Estimate(per_trial, rates, wall, slots, source, note)


def schedule_makespan(durations: list[float], slots: int) -> float:
    """Longest-processing-time-first list scheduling on `slots` identical slots: the finish time."""
    if not durations:
        return 0.0
    loads = [0.0] * max(1, slots)
    heapq.heapify(loads)
    for d in sorted(durations, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + d)
    return max(loads)


def default_slots(trials: list[Trial], max_concurrent: int | None, *, cpus: int | None = None) -> int:
    """Trials at once: GPU sweeps (a cluster) run `max_concurrent_trials` at once (one node's worth when
    unset); CPU sweeps (this machine) run CPUs // cpus-per-trial at once, capped by max_concurrent_trials."""
    if not trials:
        return 1
    t = trials[0]
    if t.gpus > 0:
        if max_concurrent:
            return max_concurrent
        return max(1, int(1 // t.gpus)) if t.gpus < 1 else 1
    slots = max(1, int((cpus or os.cpu_count() or 1) // t.cpus))
    return min(slots, max_concurrent) if max_concurrent else slots

"""One real GPT pretraining run: `train(cfg, out_dir)` -> trial row, loss curve, fit-ready points.

The loop, in the order it happens:

1. **Plan** (`make_plan`): tokens -> optimiser steps of `batch_tokens` (rounded to whole sequences per
   process), micro-batches for gradient accumulation, the LR schedule over the run's own horizon, the
   evaluation and checkpoint steps, and the WSD cool-down branches.
2. **Build**: seed, `GPT(cfg.model)`, AdamW with decoupled weight decay on the weight matrices only
   (`GPT.optimizer_groups`; fused kernel), optionally `torch.compile`, DDP when `nproc > 1`; the training stream
   (`scaling.data.TokenStream`) and the fixed validation batches.
3. **Resume** from `<out>/checkpoint` when it exists: model, optimiser, stream position, RNG and the
   progress so far, so the run continues bit-identically on CPU.
4. **Train**: each step accumulates gradients over micro-batches (fp32 on CPU, bf16 autocast on CUDA),
   clips the global gradient norm, sets the scheduled LR and steps AdamW. Every `eval_interval`
   steps: validation loss, a `curves` row, `trial.json` (status `running`), a checkpoint, the
   `reporter` callback.
5. **Cool-down branches** (WSD only): when the trunk reaches the start of branch k (D_k minus its
   decay), its state is set aside, the branch decays the LR with (1 - sqrt) over decay_fraction * D_k
   tokens (the same data stream, so D_k is honest), evaluates, records a `cooldown` point at D_k,
   and the trunk's state is put back, bit for bit, to go on at the stable LR.
6. **Finish**: the trunk's own decay ends at D; its final validation loss is the `final` point.
   NaN/inf, or a training loss (EMA) above `diverge_factor` x its best, stops the run as `diverged`
   (recorded, never raised).

Files in `out_dir`: `config.json`, `trial.json`, `curves.csv`, `points.csv`, `checkpoint/`.
Measured: `tokens_per_s` over the training steps only (not evaluation, checkpoints, or the first step
of each call, which pays for compilation); `mfu` on CUDA = tokens_per_s x `counting.model_flops_per_token`
/ (peak bf16 FLOP/s of the GPU x processes), None on CPU.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from contracts.jsonio import to_jsonable, write_atomic
from contracts.runs_table import CURVE_COLUMNS, POINT_COLUMNS
from scaling import checkpoint as ckpt
from scaling import counting, recipe
from scaling.config import RunConfig
from scaling.errors import ConfigError, DataError
from scaling.schedules import Schedule

Reporter = Callable[[dict, "Path | None"], None]

# Dense bf16 peak FLOP/s per GPU (no sparsity), for MFU. Matched against torch.cuda.get_device_name().
PEAK_FLOPS_BF16 = (
    ("H200", 989e12), ("H100", 989e12), ("GH200", 989e12), ("B200", 2250e12), ("A100", 312e12),
    ("A800", 312e12), ("L40S", 362e12), ("L40", 181e12), ("L4", 121e12), ("A10", 125e12),
    ("RTX 4090", 165e12), ("RTX 3090", 71e12), ("V100", 125e12), ("T4", 65e12),
)
_EMA = 0.9  # smoothing of the training loss for the spike test (about the last 10 steps)
_DEFAULT_CUDA_MICRO_TOKENS = 16384


@dataclass(frozen=True)
class RunResult:
    trial: dict  # one `trials` row (DESIGN.md columns + extras)
    curves: list[dict]  # `curves` rows
    points: list[dict]  # `points` rows (one `final`, plus one `cooldown` per WSD branch)
    out_dir: Path


@dataclass(frozen=True)
class Branch:
    """A WSD cool-down branch: leaves the trunk after `start_step`, decays until `end_step` (= D_k)."""

    fraction: float
    start_step: int
    end_step: int

    @property
    def name(self) -> str:
        return f"cooldown@{self.fraction:g}"


@dataclass(frozen=True)
class Plan:
    """Everything about a run that follows from its config (and the number of processes)."""

    steps: int  # trunk optimiser steps
    batch_tokens: int  # tokens per optimiser step, all processes together
    micro_batch_size: int  # sequences per forward/backward per process
    accum_steps: int  # micro-batches per optimiser step per process
    lr: float
    warmup_tokens: int
    decay_start_step: int | None  # WSD
    eval_interval: int
    checkpoint_interval: int
    branches: tuple[Branch, ...]
    world_size: int

    @property
    def tokens(self) -> int:
        return self.steps * self.batch_tokens

    def schedule(self, kind: str, min_lr_ratio: float, branch: Branch | None = None) -> Schedule:
        """The LR schedule of the trunk, or of one cool-down branch (WSD ending at that branch's D_k)."""
        B = self.batch_tokens
        if branch is not None:
            return Schedule("wsd", self.lr, branch.end_step * B, self.warmup_tokens, min_lr_ratio, branch.start_step * B)
        decay_start = None if self.decay_start_step is None else self.decay_start_step * B
        return Schedule(kind, self.lr, self.tokens, self.warmup_tokens, min_lr_ratio, decay_start)


def make_plan(cfg: RunConfig, *, world_size: int = 1, device_type: str = "cpu") -> Plan:
    """Turn token counts into steps; apply the size rules of `scaling.recipe` for an unset LR and warmup."""
    t, m = cfg.train, cfg.model
    seqs = max(world_size, round(t.batch_tokens / m.context))  # sequences per step, all processes
    per_rank = math.ceil(seqs / world_size)
    if t.micro_batch_tokens is not None:
        micro_cap = max(1, t.micro_batch_tokens // m.context)
    elif device_type == "cuda":
        micro_cap = max(1, _DEFAULT_CUDA_MICRO_TOKENS // m.context)
    else:
        micro_cap = per_rank
    accum = math.ceil(per_rank / micro_cap)
    while per_rank % accum:
        accum += 1
    batch_tokens = per_rank * world_size * m.context
    steps = max(1, round(t.tokens / batch_tokens))
    lr = t.lr if t.lr is not None else recipe.default_lr(m)
    warmup = t.warmup_tokens if t.warmup_tokens is not None else recipe.default_warmup_tokens(m, t.tokens, batch_tokens)
    decay_start = None
    branches: list[Branch] = []
    if t.schedule == "wsd":
        decay_start = steps - max(1, round(steps * t.decay_fraction))
        for f in sorted(set(t.cooldowns)):
            end = max(1, round(f * t.tokens / batch_tokens))
            if end >= steps:  # the branch would end where the trunk's own decay ends: that is the final point
                continue
            start = max(0, end - max(1, round(end * t.decay_fraction)))
            branches.append(Branch(f, start, end))
        branches.sort(key=lambda b: (b.start_step, b.end_step))
    eval_interval = t.eval_interval or max(1, steps // 20)
    return Plan(
        steps=steps, batch_tokens=batch_tokens, micro_batch_size=per_rank // accum, accum_steps=accum, lr=lr,
        warmup_tokens=int(warmup), decay_start_step=decay_start, eval_interval=eval_interval,
        checkpoint_interval=t.checkpoint_interval or eval_interval, branches=tuple(branches),
        world_size=world_size,
    )


def train(
    cfg: RunConfig,
    out_dir: str | Path,
    *,
    data: Any = None,
    resume: bool = True,
    reporter: Reporter | None = None,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> RunResult:
    """Train `cfg` into `out_dir` (see the module docstring); returns the rows it wrote.

    `data`: a `scaling.data.TokenData` (else prepared from `cfg.data`). `resume`: continue from
    `out_dir/checkpoint` if there is one (else start over). `reporter(metrics, checkpoint_dir)` is
    called in this process after every evaluation. `stop_after_steps`: stop after that many optimiser
    steps of this call, with a checkpoint and status `running`. Divergence is returned, not raised.
    """
    from scaling.data import prepare_data

    out_dir = Path(out_dir)
    if data is None:
        data = prepare_data(cfg.data, progress=progress)
    _check_data(cfg, data)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        ckpt.remove_checkpoint(out_dir)
    elif ckpt.find_checkpoint(out_dir) is not None:
        _check_same_run(cfg, out_dir)
    write_atomic(out_dir / "config.json", json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")
    if cfg.train.nproc > 1:
        from scaling.ddp import train_ddp

        return train_ddp(cfg, out_dir, data, reporter=reporter, progress=progress, stop_after_steps=stop_after_steps)
    return run_process(cfg, out_dir, data, rank=0, world_size=1, reporter=reporter, progress=progress,
                       stop_after_steps=stop_after_steps)


def run_process(cfg: RunConfig, out_dir: Path, data: Any, *, rank: int, world_size: int,
                reporter: Reporter | None, progress: bool, stop_after_steps: int | None) -> RunResult:
    """The run as seen by one process (all of it when `world_size` is 1; one DDP rank otherwise)."""
    previous_threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    elif world_size > 1:  # share the cores between the processes instead of oversubscribing them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    try:
        trainer = Trainer(cfg, out_dir, data, rank=rank, world_size=world_size)
        return trainer.run(reporter=reporter if rank == 0 else None, progress=progress and rank == 0,
                           stop_after_steps=stop_after_steps)
    finally:
        torch.set_num_threads(previous_threads)


@dataclass
class Progress:
    """The run's position and history; saved in every checkpoint (plain JSON-able values only)."""

    step: int = 0  # optimiser steps on the current line (trunk, or the branch that left it)
    branch: int | None = None  # index into Plan.branches while inside a cool-down branch
    branches_done: int = 0
    status: str = "running"
    diverge_reason: str | None = None
    loss_ema: float | None = None
    best_loss_ema: float | None = None
    interval_loss_sum: float = 0.0  # training losses since the last curves row
    interval_steps: int = 0
    last_lr: float = 0.0
    last_val_loss: float | None = None
    last_train_loss: float | None = None
    tokens_processed: int = 0  # every step trained, branches included
    timed_tokens: int = 0  # tokens of the timed steps (all but the first step of each call: compile, warm-up)
    train_seconds: float = 0.0  # time inside the timed training steps only (tokens_per_s)
    wall_seconds: float = 0.0  # wall time of earlier calls (resumes)
    curves: list = field(default_factory=list)
    points: list = field(default_factory=list)

    # the part of Progress that belongs to the trunk and is put back after a branch
    TRUNK_FIELDS = ("step", "loss_ema", "best_loss_ema", "interval_loss_sum", "interval_steps", "last_lr",
                    "last_val_loss", "last_train_loss")


class Trainer:
    """Builds the model, optimiser and data for one process and runs the loop of the module docstring."""

    def __init__(self, cfg: RunConfig, out_dir: Path, data: Any, *, rank: int = 0, world_size: int = 1):
        from scaling.data import TokenStream, val_batches
        from scaling.model import GPT

        self.cfg, self.out_dir, self.data = cfg, Path(out_dir), data
        self.rank, self.world_size = rank, world_size
        self.device = _resolve_device(cfg.train.device, rank, world_size)
        self.dtype = _resolve_dtype(cfg.train.dtype, self.device)
        self.plan = make_plan(cfg, world_size=world_size, device_type=self.device.type)
        self.run_id = cfg.run_id or self.out_dir.name
        t = cfg.train

        torch.manual_seed(t.seed)
        self.model = GPT(cfg.model).to(self.device)
        self.counts = self.model.param_counts()
        # fused AdamW (one kernel over all parameters) on CUDA and, since torch 2.4, on CPU: several x faster
        # than the per-tensor loop for the many small tensors of a small model
        groups = self.model.optimizer_groups(t.weight_decay)
        adamw = dict(lr=self.plan.lr, betas=(t.beta1, t.beta2), eps=t.eps)
        try:
            self.optimizer = torch.optim.AdamW(groups, fused=True, **adamw)
        except (RuntimeError, ValueError):  # a device or torch version without the fused kernel
            self.optimizer = torch.optim.AdamW(groups, **adamw)
        self.eval_model: torch.nn.Module = torch.compile(self.model) if t.compile else self.model
        self.forward_model = self.eval_model
        if world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = DistributedDataParallel(self.forward_model, device_ids=ids)
        self.stream = TokenStream(data.train_tokens(), context=cfg.model.context,
                                  batch_size=self.plan.micro_batch_size, seed=t.seed, rank=rank, world_size=world_size)
        self.val = val_batches(data, context=cfg.model.context, n_tokens=t.eval_tokens,
                               batch_size=self.plan.micro_batch_size)
        self.trunk_schedule = self.plan.schedule(t.schedule, t.min_lr_ratio)
        self.progress = Progress()
        self.trunk_snapshot: dict | None = None  # the trunk's state while a branch runs
        self.warm, self.first_step_seconds = False, None  # see tokens_per_s
        self.flops_per_token_detailed = counting.flops_per_token_detailed(cfg.model)
        self.peak_flops = _peak_flops(self.device)

    # ---------------------------------------------------------------- the loop
    def run(self, *, reporter: Reporter | None, progress: bool, stop_after_steps: int | None) -> RunResult:
        start_wall = time.perf_counter()
        self.start_wall = start_wall
        folder = ckpt.find_checkpoint(self.out_dir)
        if folder is not None:
            self._load(folder)
            if self.progress.status != "running":  # finished earlier: nothing to do
                return self._result()
        p, plan = self.progress, self.plan
        bar = _progress_bar(progress, total=plan.steps + sum(b.end_step - b.start_step for b in plan.branches),
                            initial=self._steps_done_total(), desc=f"train {self.run_id}")
        steps_this_call = 0
        try:
            while True:
                if p.branch is None:
                    if p.branches_done < len(plan.branches) and p.step == plan.branches[p.branches_done].start_step:
                        self._enter_branch(p.branches_done)
                        continue
                    if p.step >= plan.steps:
                        break
                loss = self._train_step()
                steps_this_call += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{self.tokens_per_s() or 0:,.0f}", refresh=False)
                if self._diverged(loss):
                    break
                if p.branch is not None:
                    branch = plan.branches[p.branch]
                    if p.step >= branch.end_step:
                        self._finish_branch(branch, reporter)
                    elif p.step % plan.checkpoint_interval == 0:
                        self._save()
                elif p.step % plan.eval_interval == 0 or p.step == plan.steps:
                    self._evaluate_and_record(reporter, final=p.step == plan.steps)
                    if p.status != "running":
                        break
                elif p.step % plan.checkpoint_interval == 0:
                    self._save()
                if stop_after_steps is not None and steps_this_call >= stop_after_steps and p.status == "running":
                    if p.step < plan.steps or p.branch is not None:
                        self._save()
                        return self._result(write=True)
        finally:
            bar.close()
        if p.status == "running":  # only reached when a checkpoint was taken at the last step before its eval
            self._evaluate_and_record(reporter, final=True)
        if p.status == "diverged":
            self._record_divergence(reporter)
            self._save()
        return self._result()

    def _train_step(self) -> float:
        """One optimiser step: accumulate gradients over micro-batches, clip, set the LR, step. Returns the loss."""
        p, plan, t = self.progress, self.plan, self.cfg.train
        t0 = time.perf_counter()
        schedule = self.trunk_schedule if p.branch is None else plan.schedule("wsd", t.min_lr_ratio, plan.branches[p.branch])
        lr = schedule.lr((p.step + 1) * plan.batch_tokens)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        for micro in range(plan.accum_steps):
            x, y = self._to_device(*self.stream.next_batch())
            sync = micro == plan.accum_steps - 1 or self.world_size == 1
            with (nullcontext() if sync else self.forward_model.no_sync()), self._autocast():
                _, loss = self.forward_model(x, y)
            (loss / plan.accum_steps).backward()
            loss_sum += loss.detach()
        if t.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss_value = loss_sum / plan.accum_steps
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(loss_value, op=dist.ReduceOp.AVG)
        value = float(loss_value.item())  # also synchronises CUDA, so the timing below is honest
        elapsed = time.perf_counter() - t0
        if self.warm:
            p.train_seconds += elapsed
            p.timed_tokens += plan.batch_tokens
        else:  # the first step of each call pays for compilation and allocation: not timed
            self.first_step_seconds, self.warm = elapsed, True
        p.tokens_processed += plan.batch_tokens
        p.step += 1
        p.last_lr = lr
        p.last_train_loss = value
        p.interval_loss_sum += value
        p.interval_steps += 1
        return value

    def _diverged(self, loss: float) -> bool:
        p, factor = self.progress, self.cfg.train.diverge_factor
        where = f"at step {p.step} ({p.step * self.plan.batch_tokens:,} tokens)"
        if not math.isfinite(loss):
            p.status, p.diverge_reason = "diverged", f"training loss is {loss} {where}"
            return True
        p.loss_ema = loss if p.loss_ema is None else _EMA * p.loss_ema + (1 - _EMA) * loss
        p.best_loss_ema = p.loss_ema if p.best_loss_ema is None else min(p.best_loss_ema, p.loss_ema)
        if p.loss_ema > factor * p.best_loss_ema:
            p.status = "diverged"
            p.diverge_reason = (f"training loss spiked {where}: smoothed {p.loss_ema:.3f} > diverge_factor {factor:g} "
                                f"x best {p.best_loss_ema:.3f}")
            return True
        return False

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean cross-entropy (nats/token) over the fixed validation batches (sharded across DDP ranks)."""
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)
        for x, y in self.val[self.rank :: self.world_size]:
            x, y = self._to_device(x, y)
            with self._autocast():
                _, loss = self.eval_model(x, y)
            total[0] += loss.double() * y.numel()
            total[1] += y.numel()
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(total)
        return float(total[0] / total[1])

    def _evaluate_and_record(self, reporter: Reporter | None, *, final: bool = False,
                             branch: Branch | None = None) -> None:
        p = self.progress
        val_loss = self.evaluate()
        p.last_val_loss = val_loss
        tokens = p.step * self.plan.batch_tokens
        row = {
            "run_id": self.run_id, "step": p.step, "tokens": tokens, "flops": 6.0 * self.counts["params"] * tokens,
            "train_loss": p.interval_loss_sum / max(p.interval_steps, 1), "val_loss": val_loss, "lr": p.last_lr,
            "elapsed_s": self._elapsed(), "branch": branch.name if branch else "trunk", "epochs": self.stream.epochs,
        }
        p.curves.append(row)
        p.interval_loss_sum, p.interval_steps = 0.0, 0
        if not math.isfinite(val_loss):
            p.status = "diverged"
            p.diverge_reason = f"validation loss is {val_loss} at step {p.step} ({tokens:,} tokens)"
            return
        if branch is not None or final:
            p.points.append(self._point("cooldown" if branch else "final", tokens, val_loss, row["train_loss"],
                                        branch.name if branch else "trunk"))
        if final:
            p.status = "completed"
        folder = self._save()
        if reporter is not None:
            reporter(self._metrics(row), folder)

    def _point(self, kind: str, tokens: int, loss: float, train_loss: float, branch: str) -> dict:
        c = self.counts
        return {
            "run_id": self.run_id, "sweep": self.cfg.sweep, "kind": kind, "params": c["params"],
            "params_embedding": c["params_embedding"], "params_nonembedding": c["params_nonembedding"],
            "tokens": tokens, "flops_6nd": 6.0 * c["params"] * tokens,
            "flops_detailed": self.flops_per_token_detailed * tokens, "loss": loss, "status": "completed",
            "step": self.progress.step, "branch": branch, "train_loss": train_loss, "epochs": self.stream.epochs,
        }

    # ---------------------------------------------------------------- WSD cool-down branches
    def _enter_branch(self, index: int) -> None:
        """Set the trunk's state aside (in memory; also in every checkpoint taken inside the branch)."""
        self.trunk_snapshot = self._snapshot()
        self.progress.branch = index

    def _finish_branch(self, branch: Branch, reporter: Reporter | None) -> None:
        self._evaluate_and_record(reporter, branch=branch)
        if self.progress.status != "running":
            return
        self._restore(self.trunk_snapshot)
        self.trunk_snapshot = None
        self.progress.branch = None
        self.progress.branches_done += 1

    def _snapshot(self) -> dict:
        p = self.progress
        return {  # on the CPU: a branch must not double the GPU memory the model and optimiser take
            "model": _to_cpu(self.model.state_dict()),
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "stream": dict(self.stream.state_dict()),
            "progress": {k: getattr(p, k) for k in Progress.TRUNK_FIELDS},
        }

    def _restore(self, snap: dict) -> None:
        self.model.load_state_dict(snap["model"])
        self.optimizer.load_state_dict(snap["optimizer"])
        self.stream.load_state_dict(snap["stream"])
        for k, v in snap["progress"].items():
            setattr(self.progress, k, v)

    # ---------------------------------------------------------------- checkpoints and outputs
    def _save(self) -> Path | None:
        """Checkpoint (rank 0 writes; all ranks hold the same model, optimiser and stream position)."""
        folder = None
        if self.rank == 0:
            p = self.progress
            state = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "stream": self.stream.state_dict(),
                "rng": ckpt.rng_state(self.device),
                "progress": asdict(p) | {"wall_seconds": self._elapsed()},
                "trunk": self.trunk_snapshot,
                "plan": {"steps": self.plan.steps, "batch_tokens": self.plan.batch_tokens},
            }
            meta = {
                "run_id": self.run_id, "status": p.status, "step": p.step, "branch": p.branch,
                "tokens": p.step * self.plan.batch_tokens, "tokens_processed": p.tokens_processed,
                "world_size": self.world_size,
            }
            folder = ckpt.save_checkpoint(self.out_dir, state, meta)
            self._write_outputs()
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()
        return folder

    def _load(self, folder: Path) -> None:
        state = ckpt.load_checkpoint(folder, map_location="cpu")  # load_state_dict moves tensors to the device
        plan = state["plan"]
        if (plan["steps"], plan["batch_tokens"]) != (self.plan.steps, self.plan.batch_tokens):
            raise ConfigError(
                f"{folder}: checkpoint of a run with {plan['steps']} steps of {plan['batch_tokens']} tokens, "
                f"this config makes {self.plan.steps} of {self.plan.batch_tokens}; use --no-resume or another --out"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.stream.load_state_dict(state["stream"])
        ckpt.set_rng_state(state["rng"], self.device)
        self.progress = Progress(**state["progress"])
        self.trunk_snapshot = state["trunk"]

    def _write_outputs(self) -> None:
        write_atomic(self.out_dir / "trial.json", json.dumps(to_jsonable(self.trial_row()), indent=2) + "\n")
        write_atomic(self.out_dir / "curves.csv", _csv(self.progress.curves, CURVE_COLUMNS))
        write_atomic(self.out_dir / "points.csv", _csv(self.progress.points, POINT_COLUMNS))

    def trial_row(self) -> dict:
        cfg, p, c, plan = self.cfg, self.progress, self.counts, self.plan
        m, t = cfg.model, cfg.train
        tokens_per_s = self.tokens_per_s()
        mfu = None
        if tokens_per_s is not None and self.peak_flops is not None:
            mfu = tokens_per_s * counting.model_flops_per_token(m) / (self.peak_flops * self.world_size)
        final = next((pt for pt in p.points if pt["kind"] == "final"), None)
        return {
            "run_id": self.run_id, "sweep": cfg.sweep, "status": p.status,
            "n_layer": m.n_layer, "d_model": m.d_model, "n_head": m.n_head, "d_ff": m.ffw_size,
            "context": m.context, "vocab_size": m.vocab_size, **c,
            "tokens": t.tokens, "tokens_seen": p.step * plan.batch_tokens if p.branch is None else None,
            "flops_6nd": 6.0 * c["params"] * t.tokens, "flops_detailed": self.flops_per_token_detailed * t.tokens,
            "lr": plan.lr, "batch_tokens": plan.batch_tokens, "schedule": t.schedule, "seed": t.seed,
            "final_loss": final["loss"] if final else (float("nan") if p.status == "diverged" else p.last_val_loss),
            "final_train_loss": final["train_loss"] if final else p.last_train_loss,
            "epochs": self.stream.epochs, "wall_s": self._elapsed(), "tokens_per_s": tokens_per_s, "mfu": mfu,
            "device": _device_name(self.device, self.world_size),
            # extras
            "steps": plan.steps, "step": p.step, "warmup_tokens": plan.warmup_tokens, "beta1": t.beta1,
            "beta2": t.beta2, "weight_decay": t.weight_decay, "min_lr_ratio": t.min_lr_ratio,
            "decay_fraction": t.decay_fraction if t.schedule == "wsd" else None,
            "cooldowns": ",".join(f"{b.fraction:g}" for b in plan.branches) or None,
            "micro_batch_tokens": plan.micro_batch_size * m.context, "accum_steps": plan.accum_steps,
            "nproc": self.world_size, "dtype": str(self.dtype).removeprefix("torch."), "compile": t.compile,
            "positions": m.positions, "tie_embeddings": m.tie_embeddings,
            "diverge_reason": p.diverge_reason, "tokens_processed": p.tokens_processed,
            "train_s": p.train_seconds, "flops_per_token_detailed": self.flops_per_token_detailed,
            "unigram_entropy": getattr(self.data, "unigram_entropy", None),
            "bytes_per_token": getattr(self.data, "bytes_per_token", None),
            "final_bpb": (final["loss"] / math.log(2) / self.data.bytes_per_token
                          if final and getattr(self.data, "bytes_per_token", None) else None),
            "data_fingerprint": getattr(self.data, "fingerprint", None),
            "n_train_tokens": getattr(self.data, "n_train_tokens", None),
        }

    def _metrics(self, row: dict) -> dict:
        p = self.progress
        return {
            "step": row["step"], "tokens": row["tokens"], "flops": row["flops"], "train_loss": row["train_loss"],
            "val_loss": row["val_loss"], "lr": row["lr"], "elapsed_s": row["elapsed_s"],
            "tokens_per_s": self.tokens_per_s(),
            "epochs": row["epochs"], "status": p.status, "branch": row["branch"], "run_id": self.run_id,
            "params": self.counts["params"], "diverge_reason": p.diverge_reason,
        }

    def _record_divergence(self, reporter: Reporter | None) -> None:
        p = self.progress
        tokens = p.step * self.plan.batch_tokens
        if not p.curves or p.curves[-1]["step"] != p.step:
            p.curves.append({
                "run_id": self.run_id, "step": p.step, "tokens": tokens, "flops": 6.0 * self.counts["params"] * tokens,
                "train_loss": p.last_train_loss, "val_loss": float("nan"), "lr": p.last_lr,
                "elapsed_s": self._elapsed(), "epochs": self.stream.epochs,
                "branch": "trunk" if p.branch is None else self.plan.branches[p.branch].name,
            })
        point = self._point("final", tokens, float("nan"), p.last_train_loss, "trunk")
        p.points.append(point | {"status": "diverged"})
        if reporter is not None:
            reporter(self._metrics(p.curves[-1]), None)

    def _result(self, write: bool = False) -> RunResult:
        if write and self.rank == 0:
            self._write_outputs()
        return RunResult(trial=self.trial_row(), curves=list(self.progress.curves),
                         points=list(self.progress.points), out_dir=self.out_dir)

    # ---------------------------------------------------------------- small helpers
    def tokens_per_s(self) -> float | None:
        """Training throughput over the timed steps (evaluation, checkpoints and each call's first step excluded)."""
        p = self.progress
        if p.timed_tokens:
            return p.timed_tokens / p.train_seconds
        if self.first_step_seconds:  # a call that trained one step only
            return self.plan.batch_tokens / self.first_step_seconds
        return None

    def _elapsed(self) -> float:
        return self.progress.wall_seconds + (time.perf_counter() - self.start_wall)

    def _steps_done_total(self) -> int:
        p, plan = self.progress, self.plan
        return sum(b.end_step - b.start_step for b in plan.branches[: p.branches_done]) + p.step

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.device.type == "cuda":
            return x.pin_memory().to(self.device, non_blocking=True), y.pin_memory().to(self.device, non_blocking=True)
        return x, y

    def _autocast(self):
        if self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


# -------------------------------------------------------------------- module helpers
def _check_data(cfg: RunConfig, data: Any) -> None:
    if data.vocab_size > cfg.model.vocab_size:
        raise ConfigError(
            f"model.vocab_size: {cfg.model.vocab_size} is smaller than the tokenizer's {data.vocab_size} tokens"
        )
    if data.n_train_tokens < cfg.model.context + 1:
        raise DataError(f"data: {data.root}: {data.n_train_tokens} training tokens, fewer than context + 1")


def _check_same_run(cfg: RunConfig, out_dir: Path) -> None:
    """Refuse to resume a checkpoint written by a different run (model, data, tokens, schedule...)."""
    path = out_dir / "config.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    new = cfg.model_dump(mode="json")
    free = {"device", "threads", "compile", "nproc", "dtype", "checkpoint_interval", "eval_interval"}
    for section in ("model", "data", "train"):
        for key in sorted(set(old.get(section, {})) | set(new[section])):
            if section == "train" and key in free or section == "data" and key == "cache_dir":
                continue
            a, b = old.get(section, {}).get(key), new[section].get(key)
            if a != b:
                raise ConfigError(
                    f"{out_dir}: holds a run with {section}.{key} = {a!r}, not {b!r}; "
                    f"use --no-resume (resume=False) to start over, or another --out"
                )


def _resolve_device(spec: str, rank: int, world_size: int) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device: {spec!r} but CUDA is not available")
        if world_size > 1:
            if world_size > torch.cuda.device_count():
                raise ConfigError(f"train.nproc: {world_size} processes but {torch.cuda.device_count()} GPUs")
            device = torch.device("cuda", rank)
        elif device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    elif device.type != "cpu":
        raise ConfigError(f"train.device: {spec!r} is not auto, cpu, cuda or cuda:N")
    return device


def _resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    if spec == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[spec]


def _peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_FLOPS_BF16 if key in name), None)


def _device_name(device: torch.device, world_size: int) -> str:
    name = "cpu" if device.type == "cpu" else torch.cuda.get_device_name(device)
    return f"{world_size}x {name}" if world_size > 1 else name


def _progress_bar(enabled: bool, *, total: int, initial: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=not enabled, leave=False,
                dynamic_ncols=True)


def _to_cpu(obj: Any) -> Any:
    """A deep copy of a (nested) state dict with every tensor copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return copy.deepcopy(obj)


def _csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()

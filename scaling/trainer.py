"""The training loop of one process: `Trainer` builds the model, optimiser and data of a run and trains
it (see `scaling.train` for the loop in words); `run_process` is the run as seen by one process, the
whole run when it is the only one, one data-parallel rank otherwise (`scaling.distributed`)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from scaling import checkpoint as ckpt
from scaling.config import RunConfig
from scaling.batches import TokenStream, val_batches
from scaling.device import autocast, resolve_device, resolve_dtype, to_device
from scaling.evaluation import evaluate
from scaling.model import GPT
from scaling.outputs import Clock, RunOutputs, RunResult
from scaling.parallel import make_parallel
from scaling.plan import Branch, make_plan
from scaling.preemption import StopRequest, stop_on_sigterm
from scaling.run_state import Progress, RunState

#: `reporter(metrics, checkpoint_dir)`: called after every evaluation in each process given one (the same metrics
#: on every rank; `checkpoint_dir` is rank 0's, None on the others).
Reporter = Callable[[dict, "Path | None"], None]


def run_process(cfg: RunConfig, out_dir: Path, data: Any, *, rank: int, world_size: int,
                reporter: Reporter | None, progress: bool, stop_after_steps: int | None,
                local_rank: int | None = None) -> RunResult:
    """The run as seen by one process (all of it when `world_size` is 1; one data-parallel rank otherwise,
    in a process group already joined, `scaling.distributed`); `local_rank` picks its GPU (default `rank`)."""
    previous_threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    elif world_size > 1:  # share the cores between the processes instead of oversubscribing them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    try:
        trainer = Trainer(cfg, out_dir, data, rank=rank, world_size=world_size,
                          local_rank=rank if local_rank is None else local_rank)
        return trainer.run(reporter=reporter, progress=progress and rank == 0,
                           stop_after_steps=stop_after_steps)
    finally:
        torch.set_num_threads(previous_threads)


class Trainer:
    """Builds the model, optimiser and data for one process and runs the loop of `scaling.train`."""

    def __init__(self, cfg: RunConfig, out_dir: Path, data: Any, *, rank: int = 0, world_size: int = 1,
                 local_rank: int = 0):
        self.cfg, self.out_dir, self.data = cfg, Path(out_dir), data
        self.rank, self.world_size = rank, world_size
        self.device = resolve_device(cfg.train.device, local_rank, world_size)
        self.dtype = resolve_dtype(cfg.train.dtype, self.device)
        self.plan = make_plan(cfg, world_size=world_size, device_type=self.device.type)
        self.run_id = cfg.run_id or self.out_dir.name
        t = cfg.train

        torch.manual_seed(t.seed)
        self.model = GPT(cfg.model).to(self.device)
        self.parallel = make_parallel(t.parallel, world_size, self.device, self.dtype)
        self.parallel.shard(self.model)  # FSDP: before the optimiser sees the parameters
        # fused AdamW (one kernel over all parameters) on CUDA and, since torch 2.4, on CPU: several x faster
        # than the per-tensor loop for the many small tensors of a small model
        groups = self.model.optimizer_groups(t.weight_decay)
        adamw = dict(lr=self.plan.lr, betas=(t.beta1, t.beta2), eps=t.eps)
        try:
            self.optimizer = torch.optim.AdamW(groups, fused=True, **adamw)
        except (RuntimeError, ValueError):  # a device or torch version without the fused kernel
            self.optimizer = torch.optim.AdamW(groups, **adamw)
        self.eval_model: torch.nn.Module = torch.compile(self.model) if t.compile else self.model
        self.forward_model = self.parallel.wrap(self.model, self.eval_model)
        self.stream = TokenStream(data.train_tokens(), context=cfg.model.context,
                                  batch_size=self.plan.micro_batch_size, seed=t.seed, rank=rank, world_size=world_size)
        self.val = val_batches(data, context=cfg.model.context, n_tokens=t.eval_tokens,
                               batch_size=self.plan.micro_batch_size)
        self.trunk_schedule = self.plan.schedule(t.schedule, t.min_lr_ratio)
        self.state = RunState(self.model, self.optimizer, self.stream, self.device, self.parallel)
        self.clock = Clock(self.state, self.plan.batch_tokens)
        self.outputs = RunOutputs(cfg, self.plan, self.out_dir, data, run_id=self.run_id,
                                  counts=self.model.param_counts(), state=self.state, clock=self.clock,
                                  device=self.device, dtype=self.dtype, world_size=world_size)

    @property
    def progress(self) -> Progress:
        return self.state.progress

    # ---------------------------------------------------------------- the loop
    def run(self, *, reporter: Reporter | None, progress: bool, stop_after_steps: int | None) -> RunResult:
        self.clock.start()
        folder = ckpt.find_checkpoint(self.out_dir)
        if folder is not None:
            self.state.load(folder, self.plan)
            if self.progress.status != "running":  # finished earlier: nothing to train
                # rewrite the rows from the checkpoint: a crash between saving the completed checkpoint
                # and writing trial.json must not leave a finished run marked `running` forever
                if self.rank == 0:
                    self.outputs.write()
                return self.outputs.result()
        p, plan = self.progress, self.plan
        bar = _progress_bar(progress, total=plan.total_steps, initial=p.steps_done(plan), desc=f"train {self.run_id}")
        steps_this_call = 0
        # SIGTERM (preemption) stops at the next step boundary with a checkpoint (`scaling.preemption`); with
        # several processes the ranks agree on that step through the loss all-reduce (`_train_step`)
        with stop_on_sigterm() as stop, bar:
            while True:
                if p.branch is not None and p.step >= plan.branches[p.branch].end_step:
                    # resumed from the checkpoint taken at the branch's end: its point is recorded, so the
                    # trunk comes back (training on would add a step to the branch and a second point)
                    self.state.put_trunk_back()
                    continue
                if p.branch is None:
                    if p.branches_done < len(plan.branches) and p.step == plan.branches[p.branches_done].start_step:
                        self.state.set_trunk_aside(p.branches_done)
                        continue
                    if p.step >= plan.steps:
                        break
                loss, stop_agreed = self._train_step(stop)
                steps_this_call += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{self.clock.tokens_per_s() or 0:,.0f}", refresh=False)
                if p.check_divergence(loss, self.cfg.train.diverge_factor, plan.batch_tokens):
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
                stop_here = stop_agreed or (stop_after_steps is not None and steps_this_call >= stop_after_steps)
                if stop_here and p.status == "running":
                    if p.step < plan.steps or p.branch is not None:
                        self._save()
                        if self.rank == 0:
                            self.outputs.write()
                        by = (stop.name or "SIGTERM to another rank") if stop_agreed else None
                        return dataclasses.replace(self.outputs.result(), stopped_by=by)
        if p.status == "running":  # only reached when a checkpoint was taken at the last step before its eval
            self._evaluate_and_record(reporter, final=True)
        if p.status == "diverged":
            row = self.outputs.record_divergence()
            if reporter is not None:
                reporter(self.outputs.metrics(row), None)
            self._save()
        return self.outputs.result()

    def _train_step(self, stop: StopRequest | None = None) -> tuple[float, bool]:
        """One optimiser step: accumulate gradients over micro-batches, clip, set the LR, step. Returns the loss
        and whether to stop here: `stop` raised (this process saw SIGTERM, read after the step) or, with several
        processes, any rank's flag, carried in the loss all-reduce (AVG of [loss, flag]: the flag's mean is > 0
        when any rank raised it), so every rank decides at the same step with no extra collective."""
        p, plan, t = self.progress, self.plan, self.cfg.train
        t0 = time.perf_counter()
        schedule = self.trunk_schedule if p.branch is None else plan.schedule("wsd", t.min_lr_ratio, plan.branches[p.branch])
        lr = schedule.lr((p.step + 1) * plan.batch_tokens)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        for micro in range(plan.accum_steps):
            x, y = to_device(*self.stream.next_batch(), self.device)
            sync = micro == plan.accum_steps - 1
            with self.parallel.no_sync(self.forward_model, sync), autocast(self.device, self.dtype):
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

            flag = torch.tensor(float(bool(stop)), device=self.device, dtype=loss_value.dtype)
            both = torch.stack([loss_value, flag])
            dist.all_reduce(both, op=dist.ReduceOp.AVG)
            loss_value, stopping = both[0], bool(both[1].item() > 0)
        else:
            stopping = bool(stop)
        value = float(loss_value.item())  # also synchronises CUDA, so the timing below is honest
        self.clock.add_step(time.perf_counter() - t0)
        p.record_step(value, lr, plan.batch_tokens)
        return value, stopping

    def evaluate(self) -> float:
        """Mean cross-entropy (nats/token) over the fixed validation batches (sharded across DDP ranks)."""
        return evaluate(self.eval_model, self.val, device=self.device, dtype=self.dtype, rank=self.rank,
                        world_size=self.world_size, lockstep=self.parallel.lockstep)

    def _evaluate_and_record(self, reporter: Reporter | None, *, final: bool = False,
                             branch: Branch | None = None) -> None:
        row = self.outputs.record_evaluation(self.evaluate(), final=final, branch=branch)
        if self.progress.status == "diverged":
            return
        folder = self._save()
        if reporter is not None:
            reporter(self.outputs.metrics(row), folder)

    def _finish_branch(self, branch: Branch, reporter: Reporter | None) -> None:
        """The branch's evaluation gives its `cooldown` point; then the trunk comes back."""
        self._evaluate_and_record(reporter, branch=branch)
        if self.progress.status == "running":
            self.state.put_trunk_back()

    def _save(self) -> Path | None:
        """Checkpoint and rows (every rank calls it: under FSDP each writes its shard; rank 0 writes the rest;
        all ranks are at the same step and stream position)."""
        folder = self.state.save(self.out_dir, self.plan, run_id=self.run_id, world_size=self.world_size,
                                 wall_seconds=self.clock.elapsed(), rank=self.rank)
        if self.rank == 0:
            self.outputs.write()
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()
        return folder


def _progress_bar(enabled: bool, *, total: int, initial: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=not enabled, leave=False,
                dynamic_ncols=True)

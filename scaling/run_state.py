"""The state of one run's process: what a checkpoint holds and what a WSD cool-down branch sets aside.

`Progress` is the run's position and history in plain JSON-able values (steps, branches done, losses
so far, the curves and points rows, timings). `RunState` holds it together with the model, the
optimiser and the token stream, and does the three things done to that state as a whole:

- `set_trunk_aside()` / `put_trunk_back()`: when the trunk reaches the start of a cool-down branch its
  state is copied aside (to the CPU); when the branch ends it is put back, bit for bit, and the trunk
  goes on at the stable LR as if the branch had never run;
- `save()` / `load()`: a checkpoint (`scaling.checkpoint`) of all of it, plus the RNG and the trunk set
  aside when inside a branch, so a resumed run sees exactly the tokens and updates it would have seen.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from scaling import checkpoint as ckpt
from scaling.batches import TokenStream
from scaling.damage import RESTART, DamagedStateError
from scaling.errors import ConfigError
from scaling.parallel import Replicated
from scaling.plan import Plan

_EMA = 0.9  # smoothing of the training loss for the spike test (about the last 10 steps)


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

    def record_step(self, loss: float, lr: float, batch_tokens: int) -> None:
        """Count one optimiser step that trained `batch_tokens` at `lr` with training loss `loss`."""
        self.tokens_processed += batch_tokens
        self.step += 1
        self.last_lr = lr
        self.last_train_loss = loss
        self.interval_loss_sum += loss
        self.interval_steps += 1

    def check_divergence(self, loss: float, diverge_factor: float, batch_tokens: int) -> bool:
        """Mark the run `diverged` (and say why) on a NaN/inf loss, or a smoothed loss above
        `diverge_factor` x its best so far; True when it did."""
        where = f"at step {self.step} ({self.step * batch_tokens:,} tokens)"
        if not math.isfinite(loss):
            self.status, self.diverge_reason = "diverged", f"training loss is {loss} {where}"
            return True
        self.loss_ema = loss if self.loss_ema is None else _EMA * self.loss_ema + (1 - _EMA) * loss
        self.best_loss_ema = self.loss_ema if self.best_loss_ema is None else min(self.best_loss_ema, self.loss_ema)
        if self.loss_ema > diverge_factor * self.best_loss_ema:
            self.status = "diverged"
            self.diverge_reason = (f"training loss spiked {where}: smoothed {self.loss_ema:.3f} > diverge_factor "
                                   f"{diverge_factor:g} x best {self.best_loss_ema:.3f}")
            return True
        return False

    def steps_done(self, plan: Plan) -> int:
        """Optimiser steps trained so far, the branches done included (the progress bar's position)."""
        return sum(b.end_step - b.start_step for b in plan.branches[: self.branches_done]) + self.step


class RunState:
    """Model, optimiser, token stream and `Progress` of one process, and the trunk set aside in a branch."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, stream: TokenStream,
                 device: torch.device, parallel: Replicated | None = None) -> None:
        self.model, self.optimizer, self.stream, self.device = model, optimizer, stream, device
        self.parallel = parallel or Replicated(1, device)  # how model/optimiser state dicts are taken and put
        self.progress = Progress()
        self.trunk: dict | None = None  # the trunk's state while a branch runs

    # ---------------------------------------------------------------- WSD cool-down branches
    def set_trunk_aside(self, branch_index: int) -> None:
        """Enter branch `branch_index`: the trunk's state is kept aside, in memory on the CPU (a branch must
        not double the GPU memory the model and optimiser take) and in every checkpoint taken in the branch."""
        p = self.progress
        model_state, optimizer_state = self.parallel.state(self.model, self.optimizer)
        self.trunk = {
            "model": _to_cpu(model_state),
            "optimizer": _to_cpu(optimizer_state),
            "stream": dict(self.stream.state_dict()),
            "progress": {k: getattr(p, k) for k in Progress.TRUNK_FIELDS},
        }
        p.branch = branch_index

    def put_trunk_back(self) -> None:
        """Leave the branch: the trunk's state comes back bit for bit, one more branch done."""
        trunk, p = self.trunk, self.progress
        self.parallel.load(self.model, self.optimizer, trunk["model"], trunk["optimizer"])
        self.stream.load_state_dict(trunk["stream"])
        for k, v in trunk["progress"].items():
            setattr(p, k, v)
        self.trunk = None
        p.branch = None
        p.branches_done += 1

    # ---------------------------------------------------------------- checkpoints
    def save(self, out_dir: Path, plan: Plan, *, run_id: str, world_size: int, wall_seconds: float,
             rank: int = 0) -> Path | None:
        """Write the checkpoint `<out_dir>/checkpoint` (`scaling.checkpoint`); returns its folder on rank 0, None
        on the others. Every rank calls it: under FSDP each writes its own shard (the sharded layout); otherwise
        rank 0 writes the whole state (the full layout) and the others return at once."""
        p = self.progress
        sharded = self.parallel.sharded_checkpoints
        if rank != 0 and not sharded:
            return None
        model_state, optimizer_state = self.parallel.state(self.model, self.optimizer)
        state: dict[str, Any] = {
            "stream": self.stream.state_dict(),
            "rng": ckpt.rng_state(self.device),
            "progress": asdict(p) | {"wall_seconds": wall_seconds},
            "trunk": self.trunk,
            "plan": {"steps": plan.steps, "batch_tokens": plan.batch_tokens},
        }
        meta = {
            "run_id": run_id, "status": p.status, "step": p.step, "branch": p.branch,
            "tokens": p.step * plan.batch_tokens, "tokens_processed": p.tokens_processed,
            "world_size": world_size,
        }
        if not sharded:
            return ckpt.save_checkpoint(out_dir, {"model": model_state, "optimizer": optimizer_state, **state}, meta)
        # the sharded layout: tensors to this rank's shard file, the optimiser's param groups to state.pt
        shards = {"model": model_state, "optimizer": optimizer_state["state"]}
        state["optimizer_param_groups"] = optimizer_state["param_groups"]
        if self.trunk is not None:
            shards |= {"trunk_model": self.trunk["model"], "trunk_optimizer": self.trunk["optimizer"]["state"]}
            state["trunk"] = {"stream": self.trunk["stream"], "progress": self.trunk["progress"],
                              "optimizer_param_groups": self.trunk["optimizer"]["param_groups"]}
        return ckpt.save_checkpoint(out_dir, state, meta, shards, rank=rank)

    def load(self, folder: Path, plan: Plan) -> None:
        """Continue from the checkpoint in `folder`; ConfigError when it was written with another plan. Every rank
        calls it. A sharded checkpoint loads into any number of processes (DCP reshards); a full one is loaded by
        every rank (FSDP: rank 0's copy is broadcast and sharded)."""
        state = ckpt.load_checkpoint(folder, map_location="cpu")  # load_state_dict moves tensors to the device
        _check_state(Path(folder) / "state.pt", state)
        saved = state["plan"]
        if (saved["steps"], saved["batch_tokens"]) != (plan.steps, plan.batch_tokens):
            raise ConfigError(
                f"{folder}: checkpoint of a run with {saved['steps']} steps of {saved['batch_tokens']} tokens, "
                f"this config makes {plan.steps} of {plan.batch_tokens}; use --no-resume or another --out"
            )
        try:
            self._load_tensors(folder, state)
            self.stream.load_state_dict(state["stream"])
            ckpt.set_rng_state(state["rng"], self.device)
            self.progress = Progress(**state["progress"])
        except DamagedStateError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # a state.pt of another shape
            raise DamagedStateError(Path(folder) / "state.pt", f"damaged (does not fit this run: "
                                    f"{type(exc).__name__}: {ckpt._first_line(exc)})", RESTART) from None

    def _load_tensors(self, folder: Path, state: dict) -> None:
        """Model, optimiser and trunk from a checkpoint's `state` (full layout) or its shard files (sharded)."""
        if state["layout"] == "sharded":
            self._load_sharded(folder, state)
        else:
            trunk = state["trunk"]
            if trunk is not None and self.parallel.sharded_checkpoints:
                # a whole trunk (written by one process) is kept as this rank's shards, the way a branch sets it aside
                self.parallel.load_full(self.model, self.optimizer, trunk["model"], trunk["optimizer"])
                model_state, optimizer_state = self.parallel.state(self.model, self.optimizer)
                trunk = {**trunk, "model": _to_cpu(model_state), "optimizer": _to_cpu(optimizer_state)}
            self.parallel.load_full(self.model, self.optimizer, state["model"], state["optimizer"])
            self.trunk = trunk

    def _load_sharded(self, folder: Path, state: dict) -> None:
        """Model, optimiser and trunk from the shard files, into this process's parameters (sharded or whole)."""
        model_state, optimizer_state = self.parallel.named_state(self.model, self.optimizer)
        shards = {"model": model_state, "optimizer": optimizer_state["state"]}
        trunk = state["trunk"]
        if trunk is not None:  # filled into copies on the CPU, where a branch keeps the trunk
            shards |= {"trunk_model": _to_cpu(model_state), "trunk_optimizer": _to_cpu(optimizer_state["state"])}
        ckpt.load_shards(folder, shards)
        self.parallel.load_named(self.model, self.optimizer, shards["model"],
                                 {"state": shards["optimizer"], "param_groups": state["optimizer_param_groups"]})
        self.trunk = None if trunk is None else {
            "model": shards["trunk_model"], "stream": trunk["stream"], "progress": trunk["progress"],
            "optimizer": {"state": shards["trunk_optimizer"], "param_groups": trunk["optimizer_param_groups"]},
        }


_STATE_KEYS = {"plan": dict, "stream": dict, "rng": dict, "progress": dict}


def _check_state(path: Path, state: dict) -> None:
    """Refuse a `state.pt` that lacks what every checkpoint holds (a torch file, but not a run's checkpoint)."""
    needed = dict(_STATE_KEYS)
    needed |= {"model": dict, "optimizer": dict} if state.get("layout") == "full" else {"optimizer_param_groups": list}
    for key, kind in needed.items():
        if not isinstance(state.get(key), kind):
            raise DamagedStateError(path, f"not a run's checkpoint (no {key!r} in it)", RESTART)
    plan = state["plan"]
    if not all(isinstance(plan.get(k), int) for k in ("steps", "batch_tokens")):
        raise DamagedStateError(path, "damaged (its plan has no steps and batch_tokens)", RESTART)


def _to_cpu(obj: Any) -> Any:
    """A deep copy of a (nested) state dict with every tensor copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return copy.deepcopy(obj)

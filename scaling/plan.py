"""The plan of a run: everything that follows from its config and the number of processes.

`make_plan` turns token counts into optimiser steps of `batch_tokens` (rounded to whole sequences per
process), micro-batches for gradient accumulation, the LR schedule over the run's own horizon, the
evaluation and checkpoint steps, and the WSD cool-down branches (`Branch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scaling import recipe
from scaling.config import RunConfig
from scaling.errors import ConfigError
from scaling.schedules import Schedule

_DEFAULT_CUDA_MICRO_TOKENS = 16384
ROUNDING_WARN = 0.05  # a count rounded by more than this share is said in a warning
ROUNDING_REFUSE = 2.0  # ... and one rounded by more than this factor is refused


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

    @property
    def total_steps(self) -> int:
        """Optimiser steps of the trunk and of every cool-down branch together."""
        return self.steps + sum(b.end_step - b.start_step for b in self.branches)

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


def rounding_note(what: str, asked: float, got: float, unit: str, hint: str) -> str | None:
    """Say how far rounding moved a count: None within `ROUNDING_WARN` (5%), a one-line warning beyond it, and
    a `ConfigError` past `ROUNDING_REFUSE` (2x) either way; `hint` says how to avoid it."""
    if asked <= 0 or got <= 0:
        return None
    ratio = got / asked
    if abs(ratio - 1.0) <= ROUNDING_WARN:
        return None
    text = f"{what}: {asked:,.0f} {unit} rounded to {got:,.0f} ({ratio:.3g}x)"
    if max(ratio, 1.0 / ratio) > ROUNDING_REFUSE:
        raise ConfigError(f"{text}, more than {ROUNDING_REFUSE:g}x off; {hint}")
    return text


def rounding_notes(cfg: RunConfig, plan: Plan) -> list[str]:
    """The warnings for the counts `make_plan` rounded beyond 5% (batch tokens to whole sequences per process,
    tokens and each cool-down's D_k to whole optimiser steps); a `ConfigError` for one rounded past 2x."""
    t, m = cfg.train, cfg.model
    checks = [
        ("train.batch_tokens", t.batch_tokens, plan.batch_tokens,
         f"give a multiple of context x processes ({m.context * plan.world_size:,} tokens)"),
        ("train.tokens", t.tokens, plan.tokens,
         f"give a multiple of the {plan.batch_tokens:,}-token batch, or a smaller train.batch_tokens"),
    ]
    checks += [(f"train.cooldowns {b.fraction:g}", b.fraction * t.tokens, b.end_step * plan.batch_tokens,
                "move the cool-down, or give more tokens or a smaller batch") for b in plan.branches]
    notes = [rounding_note(what, asked, got, "tokens", hint) for what, asked, got, hint in checks]
    return [n for n in notes if n]

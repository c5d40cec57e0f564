"""Learning-rate schedules as functions of tokens trained: the multiplier of the peak LR.

``t`` is the number of tokens trained once the current optimiser step is done (so the first step of a
run with batch B uses t = B, and the last step of a run of D tokens uses t = D). Horizons are token
counts, not steps, so changing the batch size does not change the shape of the schedule.

- **cosine** (Loshchilov & Hutter 2017; the Chinchilla recipe): linear warmup to the peak over
  ``warmup`` tokens, then half a cosine down to ``min_lr_ratio`` x peak at ``total`` tokens. The
  horizon is the run's own token budget: Hoffmann et al. 2022 (App. A, Fig. A1) show that a cosine
  cycle longer than the run by more than ~25% costs loss, so every D needs its own horizon.
- **constant**: linear warmup, then the peak until the end (no decay).
- **wsd** (warmup-stable-decay; Hägele et al. 2024, arXiv 2405.18392): warmup, the peak until
  ``decay_start``, then the (1 - sqrt) cool-down, which they found beats a linear one::

      lr(t) = min + (1 - min) * (1 - sqrt((t - decay_start) / (total - decay_start)))

  A cool-down *branch* of a WSD run is the same schedule with an earlier ``total``: the stable phase
  up to the branch point is shared, so one run can measure the loss at several D (see `train.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

ScheduleKind = Literal["cosine", "constant", "wsd"]


def warmup_multiplier(t: float, warmup: float) -> float:
    """Linear warmup: t / warmup while t < warmup, then 1."""
    return 1.0 if warmup <= 0 or t >= warmup else max(t, 0.0) / warmup


def cosine(t: float, *, total: float, warmup: float, min_lr_ratio: float) -> float:
    """Warmup, then cosine from 1 at `warmup` to `min_lr_ratio` at `total` (held there after)."""
    if t < warmup:
        return warmup_multiplier(t, warmup)
    progress = min(1.0, (t - warmup) / max(total - warmup, 1e-12))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def constant(t: float, *, warmup: float) -> float:
    """Warmup, then 1 forever."""
    return warmup_multiplier(t, warmup)


def wsd(t: float, *, total: float, warmup: float, decay_start: float, min_lr_ratio: float) -> float:
    """Warmup, stable at 1 until `decay_start`, then (1 - sqrt) down to `min_lr_ratio` at `total`."""
    if t <= decay_start:
        return warmup_multiplier(t, warmup)
    progress = min(1.0, (t - decay_start) / max(total - decay_start, 1e-12))
    return warmup_multiplier(t, warmup) * (min_lr_ratio + (1.0 - min_lr_ratio) * (1.0 - math.sqrt(progress)))


@dataclass(frozen=True)
class Schedule:
    """A peak LR and a shape over a token horizon; `lr(t)` is the LR for the step that ends at t tokens.

    `decay_start` is only used by `wsd` (defaults to `total * (1 - decay_fraction)` via `wsd_decay_start`).
    """

    kind: ScheduleKind
    peak_lr: float
    total: int
    warmup: int = 0
    min_lr_ratio: float = 0.1
    decay_start: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("cosine", "constant", "wsd"):
            raise ValueError(f"schedule: {self.kind!r} is not cosine, constant or wsd")
        if self.kind == "wsd" and self.decay_start is None:
            raise ValueError("schedule: wsd needs decay_start")

    def multiplier(self, t: float) -> float:
        if self.kind == "cosine":
            return cosine(t, total=self.total, warmup=self.warmup, min_lr_ratio=self.min_lr_ratio)
        if self.kind == "constant":
            return constant(t, warmup=self.warmup)
        return wsd(t, total=self.total, warmup=self.warmup, decay_start=self.decay_start, min_lr_ratio=self.min_lr_ratio)

    def lr(self, t: float) -> float:
        return self.peak_lr * self.multiplier(t)


def wsd_decay_start(total: float, decay_fraction: float) -> float:
    """Tokens at which a WSD run of `total` tokens starts its cool-down: total * (1 - decay_fraction)."""
    return total * (1.0 - decay_fraction)

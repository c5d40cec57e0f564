"""The parts of a sweep spec below the top level: count fields, shapes, the design options, the
schedule, LR and batch rules, resources; and `SpecError` with `show`, which every spec message uses.

`sweeps.spec.SweepSpec` puts them together and loads the file; import from there.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator

from contracts.counts import parse_count
from scaling.errors import ScalingError


class SpecError(ScalingError):
    """A sweep spec is invalid: ``spec.yaml: budgets[2]: -1e18 is not a positive FLOP count``."""


STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # every float finite


def show(value: Any) -> str:
    """A value as the user wrote it: strings verbatim, floats compact (-1e18, not -1e+18)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        text = f"{value:g}"
        return text.replace("e+", "e").replace("e0", "e").replace("e-0", "e-")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return repr(value) if not isinstance(value, (int, dict)) else str(value)


def _count(what: str, *, integer: bool = False, allow_zero: bool = False):
    """A BeforeValidator turning 3e11 / '3e11' / '20M' into a positive number, or failing with one line."""

    def parse(value: Any) -> float | int:
        try:
            number: float | None = parse_count(value) if isinstance(value, (int, float, str)) else None
        except ValueError:
            number = None
        ok = number is not None and math.isfinite(number) and (number > 0 or (allow_zero and number == 0))
        if not ok:
            raise ValueError(f"{show(value)} is not a positive {what}")
        if integer and int(round(number)) == 0 and not allow_zero:
            raise ValueError(f"{show(value)} rounds to 0; it is not a positive {what}")
        return int(round(number)) if integer else number

    return BeforeValidator(parse)


Flops = Annotated[float, _count("FLOP count")]
Params = Annotated[float, _count("parameter count")]
Tokens = Annotated[int, _count("token count", integer=True)]
Ratio = Annotated[float, _count("tokens-per-parameter ratio")]


class ShapeSpec(BaseModel):
    """An explicit model shape instead of a target size (context and vocab come from the spec)."""

    model_config = STRICT
    n_layer: int = Field(gt=0)
    d_model: int = Field(gt=0)
    n_head: int = Field(gt=0)
    d_ff: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "ShapeSpec":
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        return self


def _size_kind(value: Any) -> str:
    return "shape" if isinstance(value, dict) else "params"


Size = Annotated[
    Union[Annotated[ShapeSpec, Tag("shape")], Annotated[Params, Tag("params")]],
    Discriminator(_size_kind),
]


class IsoflopOptions(BaseModel):
    """How `design: isoflop` places sizes around each budget's expected optimum (when `sizes: auto`).

    For budget C the expected optimum is N* = sqrt(C / (6 r)) with r = `tokens_per_param` (so that
    D* = r N* and 6 N* D* = C; Chinchilla's r is about 20). Targets are N* x spread^t for `sizes_per_budget`
    values of t evenly spaced in [-1, 1]: the largest is `spread` times N*, the smallest N*/`spread`,
    so the optimum is bracketed on both sides of the parabola in log N (Chinchilla approach 2).
    """

    model_config = STRICT
    sizes_per_budget: int = Field(default=5, ge=3, le=25)
    spread: float = Field(default=4.0, gt=1, le=1000)
    tokens_per_param: Ratio = 20.0


class LadderOptions(BaseModel):
    """`design: ladder`: every size trained to multiples of a tokens-per-parameter base (OLMo's ladder:
    1, 2, 5, 10 x Chinchilla's 20 tokens per parameter)."""

    model_config = STRICT
    multiples: list[Ratio] = Field(default_factory=lambda: [1.0, 2.0, 5.0, 10.0], min_length=1)
    tokens_per_param: Ratio = 20.0


class ScheduleSpec(BaseModel):
    """Learning-rate schedule of every trial (see `scaling.schedules`).

    cosine: warmup then cosine to `min_lr_ratio` over the run's own horizon (what Chinchilla needs);
    wsd: warmup, stable, (1-sqrt) decay over the last `decay_fraction` of D; `cooldowns` add branch
    points (fractions of D) where a short decay is evaluated, giving extra (N, D) points per run.

    Warmup (linear, from 0 to the peak LR), one of:
    - neither set: `scaling.recipe.default_warmup_tokens`, N tokens (Porian et al. 2024, arXiv
      2406.19146, Sec. 3.2: a warmup as long as the model's parameter count in tokens) at most 25% of D;
    - `warmup_tokens`: that many tokens for every trial;
    - `warmup_fraction`: that fraction of the trial's shortest point, D for a plain run and the
      shortest cool-down branch's D_k for an `isoflop-branches` trial (whose branches share the
      trunk's warmup), so every point warms up over at most that share of its tokens.
    """

    model_config = STRICT
    kind: Literal["cosine", "wsd", "constant"] = "cosine"
    warmup_tokens: Annotated[int, _count("token count", integer=True, allow_zero=True)] | None = None
    warmup_fraction: float | None = Field(default=None, gt=0, le=0.5)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    decay_fraction: float = Field(default=0.2, gt=0, le=1)
    cooldowns: list[float] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> "ScheduleSpec":
        for i, f in enumerate(self.cooldowns):
            if not 0 < f < 1:
                raise FieldError(f"cooldowns[{i}]", f, "is not a fraction of D in (0, 1)")
        if self.cooldowns and self.kind != "wsd":
            raise FieldError("kind", self.kind, "has no cool-down branches; cooldowns need kind 'wsd'")
        if self.warmup_tokens is not None and self.warmup_fraction is not None:
            raise FieldError("warmup_fraction", self.warmup_fraction, "and warmup_tokens both set the warmup; keep one")
        return self

    def warmup_for(self, shortest_tokens: int, batch_tokens: int) -> int | None:
        """Warmup tokens of a trial whose shortest point is `shortest_tokens` (None: the size rule)."""
        if self.warmup_fraction is None:
            return self.warmup_tokens
        return max(batch_tokens, int(round(self.warmup_fraction * shortest_tokens)))


def check_multipliers(multipliers: list[float]) -> None:
    """FieldError unless every multiplier is a positive finite factor and none repeats."""
    for i, m in enumerate(multipliers):
        if not (math.isfinite(m) and m > 0):
            raise FieldError(f"multipliers[{i}]", m, "is not a positive factor")
    if len(set(multipliers)) != len(multipliers):
        raise FieldError("multipliers", multipliers, "has duplicates")


class LRRule(BaseModel):
    """Peak learning rate of each trial as a rule of its parameter count N.

    - `default`: `scaling`'s own width rule (TrainConfig.lr = None, so `scaling.recipe.default_lr`:
      0.5 / d_model, capped at 0.0125; calibrated on the CPU corpus, see `scaling.recipe.LR_SCAN`).
    - `fixed`: `value` for every size.
    - `power`: lr(N) = value * (N / reference_params) ** exponent, e.g. exponent -0.25 lowers the rate
      for bigger models (tuned rates fall with size; Porian et al. 2024, DeepSeek LLM 2024).
    `multipliers` turns every trial into a small LR sweep (one trial per multiplier), which small models
    need because tuning one size and reusing it at another is a known bias (Lourie et al. 2025).
    """

    model_config = STRICT
    rule: Literal["default", "fixed", "power"] = "default"
    value: float | None = Field(default=None, gt=0)
    reference_params: Params = 1e6
    exponent: float = Field(default=0.0, ge=-4, le=4, description="published fits lie in [-1, 0]")
    multipliers: list[float] = Field(default_factory=lambda: [1.0], min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "LRRule":
        if self.rule in ("fixed", "power") and self.value is None:
            raise FieldError("value", None, f"rule {self.rule!r} needs the peak learning rate")
        if self.rule == "default" and self.value is not None:
            raise FieldError("value", self.value, "is ignored by rule 'default'; use rule 'fixed'")
        check_multipliers(self.multipliers)
        return self

    def lr_for(self, params: float) -> float | None:
        if self.rule == "default":
            return None
        if self.rule == "fixed":
            return self.value
        return self.value * (params / self.reference_params) ** self.exponent


class BatchRule(BaseModel):
    """Tokens per optimiser step.

    - `fixed`: `tokens` for every trial.
    - `power`: tokens * (D / reference_tokens) ** exponent (the batch grows with the run's data; Power
      Lines, arXiv 2505.13738, fit B_opt ~ D^0.383).
    The result is rounded to a whole number of sequences (a multiple of `context`), at least one.
    `multipliers` turns every trial into a small batch sweep around the rule (one trial per multiplier,
    crossed with `lr.multipliers`): the grid `scaling hparams` fits B*(C) from (DeepSeek LLM 2024, §3.1).
    """

    model_config = STRICT
    rule: Literal["fixed", "power"] = "fixed"
    tokens: Tokens = 8192
    reference_tokens: Tokens = 100_000_000
    exponent: float = Field(default=0.0, ge=0, le=1)
    multipliers: list[float] = Field(default_factory=lambda: [1.0], min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "BatchRule":
        check_multipliers(self.multipliers)
        return self

    def tokens_for(self, data_tokens: float, context: int, multiplier: float = 1.0) -> int:
        raw = self.tokens if self.rule == "fixed" else self.tokens * (data_tokens / self.reference_tokens) ** self.exponent
        return max(1, int(round(raw * multiplier / context))) * context


class AdamRule(BaseModel):
    """AdamW's betas of every trial: beta1, and beta2 fixed or set by the trial's batch.

    - `beta2`: one value for every trial (TrainConfig's 0.95 when neither is given).
    - `beta2_half_life_tokens`: beta2 = 2 ** (-B / T) for a trial of B tokens per optimiser step, so the
      second-moment average forgets half its past every T tokens whatever the batch (the token half-life
      of Marek et al. 2025, arXiv 2507.07101, Sec. 4, who keep it fixed as the batch changes; Porian et al.
      2024, arXiv 2406.19146, Sec. 3.3, find beta2 0.95 too low at small batches and 0.99-0.999 needed).
      0.95 at GPT-3's 0.5M-token batch is T = 7.1M tokens; at the CPU demo's 1,024-token batch,
      T = 102k gives 0.993 and T = 1.02M gives 0.9993.
    """

    model_config = STRICT
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float | None = Field(default=None, ge=0, lt=1)
    beta2_half_life_tokens: Tokens | None = None

    @model_validator(mode="after")
    def _check(self) -> "AdamRule":
        if self.beta2 is not None and self.beta2_half_life_tokens is not None:
            raise FieldError("beta2", self.beta2, "and beta2_half_life_tokens both set the same beta2; keep one")
        return self

    def beta2_for(self, batch_tokens: int) -> float | None:
        """beta2 for a trial of `batch_tokens` per step (None: the config's default); FieldError if it rounds to 1."""
        if self.beta2_half_life_tokens is None:
            return self.beta2
        beta2 = 2.0 ** (-batch_tokens / self.beta2_half_life_tokens)
        if not beta2 < 1.0:
            raise FieldError("beta2_half_life_tokens", self.beta2_half_life_tokens,
                             f"gives beta2 = 1 to float precision at a batch of {batch_tokens} tokens "
                             f"(Adam would never forget); shorten it")
        return beta2


class Resources(BaseModel):
    """What one trial asks Ray for.

    - `cpus`: CPUs per training process (torch threads = floor of it); `gpus`: GPUs of a one-process trial, a
      fraction below 1 (trials share a GPU; each caps its memory at that fraction) or a whole number N, which
      is shorthand for `workers: N` with one GPU each on one node (`placement: pack`).
    - `workers`: data-parallel processes per trial. 1 (default) is a plain Tune function trial, the cheap
      path. More runs a Ray Train V2 `TorchTrainer` inside the trial (the Tune trial is its light driver):
      the same training loop on every worker, rank r reading block r of every batch, on one node or several;
      `cpus` and `gpus` are then per worker (gpus 0 or 1).
    - `strategy`: `ddp` replicates the model on every worker, `fsdp` shards parameters, gradients and AdamW
      state across them (`fully_shard`; for models that do not fit one device). See `scaling.parallel`.
    - `placement`: `pack` fills nodes first (fast interconnect), `spread` puts the workers on different
      nodes when it can (Ray's PACK / SPREAD placement strategies).
    """

    model_config = STRICT
    cpus: float = Field(default=1.0, gt=0)
    gpus: float = Field(default=0.0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = Field(default=1, ge=1, le=4096)
    strategy: Literal["ddp", "fsdp"] = "ddp"
    placement: Literal["pack", "spread"] = "pack"

    @model_validator(mode="after")
    def _check(self) -> "Resources":
        for name in ("cpus", "gpus"):
            if not math.isfinite(getattr(self, name)):
                raise FieldError(name, getattr(self, name), "is not a finite number")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise FieldError("gpus", self.gpus, "is neither a fraction below 1 nor a whole number of GPUs")
        if self.workers > 1 and self.gpus not in (0, 1):
            raise FieldError("gpus", self.gpus, f"GPUs per worker with workers {self.workers}: each worker process "
                                                f"drives 0 or 1 GPU (for N GPUs per trial write workers: N, gpus: 1)")
        if self.device == "cpu" and self.gpus > 0:
            raise FieldError("gpus", self.gpus, "GPUs asked for with device 'cpu'")
        if self.device == "cuda" and self.gpus == 0:
            raise FieldError("device", "cuda", "needs gpus > 0")
        if self.nproc == 1 and self.strategy != "ddp":
            raise FieldError("strategy", self.strategy, "shards a model across workers; set workers > 1")
        return self

    @property
    def resolved_device(self) -> str:
        return ("cuda" if self.gpus > 0 else "cpu") if self.device == "auto" else self.device

    @property
    def nproc(self) -> int:
        """Data-parallel processes per trial: `workers`, or one per whole GPU of `gpus: N`."""
        return self.workers if self.workers > 1 else (int(self.gpus) if self.gpus >= 1 else 1)

    @property
    def worker_cpus(self) -> float:
        """CPUs per process (`gpus: N` shorthand: the trial's `cpus` shared by its N processes)."""
        return self.cpus if self.workers > 1 else self.cpus / self.nproc

    @property
    def worker_gpus(self) -> float:
        """GPUs per process."""
        return self.gpus if self.workers > 1 or self.gpus <= 1 else 1.0

    @property
    def trial_cpus(self) -> float:
        return self.worker_cpus * self.nproc

    @property
    def trial_gpus(self) -> float:
        return self.worker_gpus * self.nproc

    @property
    def threads(self) -> int:
        return max(1, int(self.worker_cpus))


class NodeSpec(BaseModel):
    """Capacity of one node of the target cluster (checked against `resources` before anything runs)."""

    model_config = STRICT
    cpus: int | None = Field(default=None, gt=0)
    gpus: int | None = Field(default=None, ge=0)


class FieldError(ValueError):
    """A cross-field error that knows its own field path (formatted like pydantic's own)."""

    def __init__(self, path: str, value: Any, message: str):
        super().__init__(f"{path}: {'missing;' if value is None else show(value)} {message}")
        self.path, self.value, self.message = path, value, message

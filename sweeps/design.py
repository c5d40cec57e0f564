"""Designs: a validated `SweepSpec` -> the list of trials to run, each one `scaling` run with its FLOPs.

Three designs (N = parameters in the spec's `size_convention`, D = training tokens, C = 6 N D):

- `grid`: every size x every data size (`tokens`, or `tokens_per_param` ratios r with D = r N).
- `isoflop`: for each budget C, sizes spread in log N around the expected optimum
  N* = sqrt(C / (6 r)) (r = `isoflop.tokens_per_param`, Chinchilla's ~20), and D = C / (6 N), so each
  budget traces one IsoFLOP profile whose minimum approach 2 of Hoffmann et al. (2022) fits with a
  parabola in log N. With `sizes: auto` the sizes are N* x spread^t, t evenly spaced in [-1, 1]; the
  design refuses profiles that would not bracket N* on both sides or have fewer than 3 distinct shapes.
- `ladder`: every size x multiples of a tokens-per-parameter base (OLMo's ladder: 1, 2, 5, 10 x 20).
- `isoflop-branches`: the IsoFLOP points from one WSD run per size, a cool-down branch at every budget's
  D below the largest (`sweeps.branches`); a trial carries its planned points in `extra["points"]`.

Target sizes become shapes through `scaling.shapes.shape_for_params`; N, N_embedding, N_nonembedding and
the detailed FLOPs per token (Chinchilla appendix F) come from `scaling.counting`. D is rounded to whole
optimiser steps, so `tokens` is exactly what the trial trains and `flops_6nd` = 6 N_total D exactly.
Guards against the pitfalls of tiny IsoFLOP studies: every trial gets at least `min_steps` optimiser
steps (a 100-step run says more about warmup than about N and D), and with `max_epochs` set no trial may
repeat the corpus more than that (checked by `check_epochs` once the corpus is tokenised).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from contracts.counts import format_count
from scaling.config import ModelConfig, RunConfig, TrainConfig
from scaling.errors import ConfigError
from scaling.counting import flops_per_token_detailed, param_counts
from scaling.shapes import shape_for_params
from scaling.plan import rounding_note
from scaling.recipe import default_lr
from sweeps.branches import DESIGN as DESIGN_BRANCHES, branch_trials
from sweeps.spec import ShapeSpec, SpecError, SweepSpec, format_error, show
from sweeps.spec_options import FieldError


@dataclass(frozen=True)
class Trial:
    """One planned run: its id, full `RunConfig`, size, data, FLOPs and resources."""

    run_id: str
    config: RunConfig
    design: str
    params: int
    params_embedding: int
    params_nonembedding: int
    tokens: int
    steps: int
    flops_6nd: float
    flops_detailed: float
    budget: float | None = None  # the IsoFLOP budget C this trial belongs to
    target_params: float | None = None  # what the spec asked for (None for an explicit shape)
    tokens_per_param: float = 0.0  # D / N in the spec's convention
    lr_multiplier: float = 1.0
    batch_multiplier: float = 1.0
    cpus: float = 1.0
    gpus: float = 0.0
    convention: str = "total"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """N in the spec's convention (what D = C / 6N and tokens_per_param use)."""
        return self.params_nonembedding if self.convention == "nonembedding" else self.params

    @property
    def planned_points(self) -> list[dict[str, Any]]:
        """The fit-ready points this trial yields: (budget, tokens, kind) per point; one `final` for a plain run."""
        return self.extra.get("points") or [{"budget": self.budget, "tokens": self.tokens, "kind": "final"}]

    @property
    def flops_total(self) -> float:
        """6 N x every token the trial trains: the trunk plus its cool-down branches (= flops_6nd without)."""
        return float(self.extra.get("flops_total", self.flops_6nd))

    @property
    def flops_one_run_per_point(self) -> float:
        """6 N D summed over the trial's points: their cost trained as separate runs (as `isoflop` does)."""
        return sum(6.0 * self.params * p["tokens"] for p in self.planned_points)

    @property
    def shape(self) -> str:
        m = self.config.model
        ff = "" if m.d_ff is None else f" ff{m.d_ff}"
        return f"L{m.n_layer} d{m.d_model} h{m.n_head}{ff}"

    def row(self) -> dict[str, Any]:
        """A flat dict for the plan table and the sweep manifest."""
        m, t = self.config.model, self.config.train
        return {
            "run_id": self.run_id,
            "design": self.design,
            "budget": self.budget,
            "n_layer": m.n_layer,
            "d_model": m.d_model,
            "n_head": m.n_head,
            "d_ff": m.ffw_size,
            "params": self.params,
            "params_embedding": self.params_embedding,
            "params_nonembedding": self.params_nonembedding,
            "tokens": self.tokens,
            "tokens_per_param": self.tokens_per_param,
            "steps": self.steps,
            "batch_tokens": t.batch_tokens,
            "lr": t.lr,
            "lr_multiplier": self.lr_multiplier,
            "batch_multiplier": self.batch_multiplier,
            "seed": t.seed,
            "flops_6nd": self.flops_6nd,
            "flops_detailed": self.flops_detailed,
            "flops_total": self.flops_total,
            "flops_one_run_per_point": self.flops_one_run_per_point,
            "points": self.planned_points,
            "cpus": self.cpus,
            "gpus": self.gpus,
        }


def expand(spec: SweepSpec, source: str = "spec") -> list[Trial]:
    """All trials of a spec, in design order (budget or data, then size, then LR multiplier, then seed).

    Raises `SpecError` (one line, naming the field) for designs that cannot be run well: too few
    steps, an unbracketed IsoFLOP optimum, two sizes that map to one shape.
    """
    if spec.design == DESIGN_BRANCHES:
        if len(spec.batch.multipliers) > 1:
            raise SpecError(f"{source}: batch.multipliers: {show(spec.batch.multipliers)} is not supported by design "
                            f"{DESIGN_BRANCHES} (its branch points are whole steps of one batch); use design isoflop or grid")
        return branch_trials(spec, source, sys.modules[__name__])
    points = _points(spec, source)  # (model, D target, budget, target_params, field path of the D choice)
    trials: list[Trial] = []
    seen: set[str] = set()
    for model, d_target, budget, target, where in points:
        for mult in spec.lr.multipliers:
            for bmult in spec.batch.multipliers:
                for seed in spec.seeds:
                    trial = _make_trial(spec, source, model, d_target, budget, target, where, mult, seed,
                                        batch_mult=bmult)
                    if trial.run_id in seen:  # two budgets/ratios giving one run: keep the first
                        continue
                    seen.add(trial.run_id)
                    trials.append(trial)
    return trials


def _points(spec: SweepSpec, source: str) -> list[tuple[ModelConfig, float, float | None, float | None, str]]:
    out = []
    if spec.design == "isoflop":
        for i, C in enumerate(spec.budgets):
            models = _isoflop_models(spec, source, i, C)
            for model, target in models:
                n = _n(spec, model)
                out.append((model, C / (6.0 * n), C, target, f"budgets[{i}]"))
        return out
    models = _explicit_models(spec, source)
    if spec.design == "grid":
        for model, target in models:
            n = _n(spec, model)
            if spec.tokens:
                for j, D in enumerate(spec.tokens):
                    out.append((model, float(D), None, target, f"tokens[{j}]"))
            else:
                for j, r in enumerate(spec.tokens_per_param):
                    out.append((model, r * n, None, target, f"tokens_per_param[{j}]"))
    else:  # ladder
        base = spec.ladder.tokens_per_param
        for model, target in models:
            n = _n(spec, model)
            for j, mult in enumerate(spec.ladder.multiples):
                out.append((model, mult * base * n, None, target, f"ladder.multiples[{j}]"))
    return out


def _n(spec: SweepSpec, model: ModelConfig) -> int:
    counts = param_counts(model)
    return counts["params_nonembedding"] if spec.size_convention == "nonembedding" else counts["params"]


def _model_kwargs(spec: SweepSpec) -> dict[str, Any]:
    return {"context": spec.context, "vocab_size": spec.vocab_size, **spec.model}


def _shape(spec: SweepSpec, source: str, where: str, size: Any) -> ModelConfig:
    """A ModelConfig from a target size (via the shape picker) or an explicit shape."""
    try:
        if isinstance(size, ShapeSpec):
            return ModelConfig(**size.model_dump(), **_model_kwargs(spec))
        extra = {k: v for k, v in spec.model.items()}
        return shape_for_params(
            float(size), vocab_size=spec.vocab_size, context=spec.context, convention=spec.size_convention, **extra
        )
    except ValidationError as exc:
        raise SpecError(format_error(exc, source, prefix=where)) from None
    except (ConfigError, ValueError) as exc:  # the shape picker refusing a size
        msg = str(exc).splitlines()[0].removeprefix("params: ")
        raise SpecError(f"{source}: {where}: {msg}") from None


def _explicit_models(spec: SweepSpec, source: str) -> list[tuple[ModelConfig, float | None]]:
    models: list[tuple[ModelConfig, float | None]] = []
    shapes: dict[tuple, int] = {}
    for i, size in enumerate(spec.sizes):
        model = _shape(spec, source, f"sizes[{i}]", size)
        key = (model.n_layer, model.d_model, model.n_head, model.ffw_size)
        if key in shapes:
            raise SpecError(
                f"{source}: sizes[{i}]: {_size_text(size)} gives the same shape as sizes[{shapes[key]}] "
                f"(L{model.n_layer} d{model.d_model} h{model.n_head}); drop one or space the sizes further apart"
            )
        shapes[key] = i
        models.append((model, None if isinstance(size, ShapeSpec) else float(size)))
    return models


def _size_text(size: Any) -> str:
    if isinstance(size, ShapeSpec):
        return f"shape L{size.n_layer} d{size.d_model} h{size.n_head}"
    return format_count(float(size))


def expected_optimum(spec: SweepSpec, C: float) -> float:
    """N* = sqrt(C / (6 r)): the size whose compute-optimal D = r N spends exactly C = 6 N D."""
    return math.sqrt(C / (6.0 * spec.isoflop.tokens_per_param))


def distinct_shapes(spec: SweepSpec, source: str, where: str,
                    targets: list[float]) -> tuple[list[tuple[ModelConfig, float]], list[SpecError]]:
    """The picker's shape for each target size, each distinct shape once (with the first target that
    reached it), and the refusals of targets beyond the picker's range (the caller explains them)."""
    models: list[tuple[ModelConfig, float]] = []
    keys: set[tuple] = set()
    refused: list[SpecError] = []
    for target in targets:
        try:
            model = _shape(spec, source, where, target)
        except SpecError as exc:
            refused.append(exc)
            continue
        key = (model.n_layer, model.d_model, model.n_head, model.ffw_size)
        if key not in keys:
            keys.add(key)
            models.append((model, target))
    return models, refused


def _isoflop_models(spec: SweepSpec, source: str, i: int, C: float) -> list[tuple[ModelConfig, float | None]]:
    where = f"budgets[{i}]"
    n_star = expected_optimum(spec, C)
    if spec.sizes != "auto":
        models = _explicit_models(spec, source)
    else:
        k, spread = spec.isoflop.sizes_per_budget, spec.isoflop.spread
        targets = [n_star * spread ** (-1 + 2 * j / (k - 1)) for j in range(k)]
        models, refused = distinct_shapes(spec, source, where, targets)
        if not models:  # name the budget the user wrote, not the derived size the picker refused
            why = str(refused[0]).split(f"{where}: ", 1)[-1]
            raise SpecError(f"{source}: {where}: {show(C)} FLOPs: no model fits this budget; its sizes around "
                            f"N* = {format_count(n_star)} params are refused ({why})")
    ns = sorted(_n(spec, m) for m, _ in models)
    if not ns[0] < n_star < ns[-1]:
        side = "left (smaller)" if ns[0] >= n_star else "right (larger)"
        raise SpecError(
            f"{source}: {where}: {show(C)} FLOPs: sizes {format_count(ns[0])}..{format_count(ns[-1])} do not bracket the expected "
            f"optimum N*={format_count(n_star)} (no {side} side of the IsoFLOP profile); "
            f"{'raise the budget or lower' if ns[0] >= n_star else 'lower the budget or raise'} isoflop.tokens_per_param, "
            f"or give sizes that straddle N*"
        )
    if len(models) < 3:
        raise SpecError(
            f"{source}: {where}: {show(C)} FLOPs: only {len(models)} distinct shapes between "
            f"{format_count(ns[0])} and {format_count(ns[-1])} params; raise isoflop.spread or the budget"
        )
    return models


def _check_rounding(where: str, d_target: float, tokens: int, batch: int) -> None:
    """A trial's D rounded to whole steps of `batch`: a warning line beyond 5%, a `SpecError` past 2x."""
    try:
        note = rounding_note(f"{where}: D", d_target, tokens, "tokens",
                             f"lower batch.tokens (now {batch:,}) or raise D or C")
    except ConfigError as exc:
        raise SpecError(str(exc)) from None
    if note:
        print(f"warning: {note} (whole steps of {batch:,} tokens)", file=sys.stderr)


def _make_trial(spec: SweepSpec, source: str, model: ModelConfig, d_target: float, budget: float | None,
                target: float | None, where: str, mult: float, seed: int, shortest: int | None = None,
                batch_mult: float = 1.0) -> Trial:
    """One trial of `d_target` tokens (rounded to whole steps); `shortest` is the D of its shortest point
    (an `isoflop-branches` trial's shortest cool-down branch), which `schedule.warmup_fraction` scales to."""
    counts = param_counts(model)
    n = counts["params_nonembedding"] if spec.size_convention == "nonembedding" else counts["params"]
    batch = spec.batch.tokens_for(d_target, spec.context, batch_mult)
    steps = max(1, int(round(d_target / batch)))
    tokens = steps * batch
    _check_rounding(f"{source}: {where}", d_target, tokens, batch)
    shape = f"L{model.n_layer} d{model.d_model}"
    if steps < spec.min_steps:
        raise SpecError(
            f"{source}: {where}: the {format_count(n)}-param model ({shape}) gets {format_count(tokens)} tokens = {steps} steps of "
            f"{batch} tokens, below min_steps {spec.min_steps}; lower batch.tokens, raise D or C, or drop the size"
        )
    lr = spec.lr.lr_for(n)
    if lr is None and mult != 1.0:  # rule default: the multiplier scales scaling.recipe's width rule
        lr = default_lr(model)
    if lr is not None:
        lr *= mult
    res = spec.resources
    sched = spec.schedule
    try:
        beta2 = spec.adam.beta2_for(batch)
    except FieldError as exc:
        raise SpecError(f"{source}: adam.{exc.path}: {show(exc.value)} {exc.message}") from None
    adam = {"beta1": spec.adam.beta1, **({} if beta2 is None else {"beta2": beta2})}
    train_kwargs: dict[str, Any] = dict(
        tokens=tokens,
        batch_tokens=batch,
        lr=lr,
        schedule=sched.kind,
        min_lr_ratio=sched.min_lr_ratio,
        decay_fraction=sched.decay_fraction,
        cooldowns=tuple(sched.cooldowns),
        warmup_tokens=sched.warmup_for(min(tokens, shortest or tokens), batch),
        **adam,
        seed=seed,
        device=res.resolved_device,
        threads=res.threads,
        nproc=res.nproc,
        parallel=res.strategy,
        eval_interval=spec.eval_interval,
        checkpoint_interval=spec.checkpoint_interval,
        **spec.train,
    )
    run_id = _run_id(spec, model, tokens, budget, mult, seed, batch_mult)
    try:
        train = TrainConfig(**train_kwargs)
        config = RunConfig(model=model, data=spec.data_config(), train=train, run_id=run_id, sweep=spec.sweep_name())
    except ValidationError as exc:
        raise SpecError(format_error(exc, source, prefix=f"{where} ({run_id})")) from None
    return Trial(
        run_id=run_id,
        config=config,
        design=spec.design,
        params=counts["params"],
        params_embedding=counts["params_embedding"],
        params_nonembedding=counts["params_nonembedding"],
        tokens=tokens,
        steps=steps,
        flops_6nd=6.0 * counts["params"] * tokens,
        flops_detailed=float(flops_per_token_detailed(model)) * tokens,
        budget=budget,
        target_params=target,
        tokens_per_param=tokens / n,
        lr_multiplier=mult,
        batch_multiplier=batch_mult,
        cpus=res.trial_cpus,
        gpus=res.trial_gpus,
        convention=spec.size_convention,
    )


def _run_id(spec: SweepSpec, model: ModelConfig, tokens: int, budget: float | None, mult: float, seed: int,
            batch_mult: float = 1.0) -> str:
    """Readable, unique, filesystem-safe: `C1e12-L2d64h2-s0`, `L4d128h4-D20M-s0`, `L2d64h2-D2M-lrx2-s1`."""
    shape = f"L{model.n_layer}d{model.d_model}h{model.n_head}"
    if model.d_ff is not None:
        shape += f"f{model.d_ff}"
    parts = [f"C{short(budget)}"] if budget is not None else []
    parts.append(shape)
    if budget is None:
        parts.append(f"D{format_count(tokens)}")
    if len(spec.lr.multipliers) > 1:
        parts.append(f"lrx{short(mult)}")
    if len(spec.batch.multipliers) > 1:
        parts.append(f"bx{short(batch_mult)}")
    parts.append(f"s{seed}")
    return "-".join(parts)


def short(x: float) -> str:
    """3e11 -> '3e11', 1e12 -> '1e12', 2.5 -> '2.5', 1e4 -> '1e4' (compact, filesystem-safe)."""
    if x == int(x) and abs(x) < 1000:
        return str(int(x))
    text = f"{x:.3g}".replace("e+", "e").replace("e0", "e").replace("e-0", "e-")
    return text.replace(".", "p") if "e" not in text else text.replace(".", "p")


def check_epochs(spec: SweepSpec, trials: list[Trial], n_train_tokens: int, source: str = "spec") -> None:
    """Refuse trials that would repeat the corpus more than `max_epochs` times (no-op when unset)."""
    if spec.max_epochs is None:
        return
    for t in trials:
        epochs = t.tokens / n_train_tokens
        if epochs > spec.max_epochs:
            raise SpecError(
                f"{source}: max_epochs: {show(spec.max_epochs)}: trial {t.run_id} needs {format_count(t.tokens)} tokens = "
                f"{epochs:.1f} epochs of the {format_count(n_train_tokens)}-token corpus; use a bigger corpus or smaller D/C"
            )


def totals(trials: list[Trial]) -> dict[str, float]:
    """Sums over the trials. `flops_total` (= `flops_6nd`): 6 N x every token trained, cool-down branches
    included; `flops_one_run_per_point`: the same points trained one run each; `flops_saving`: 1 - their
    ratio (0 for the one-run-per-point designs); `flops_detailed` and `tokens` are of the trunks."""
    total = sum(t.flops_total for t in trials)
    one_each = sum(t.flops_one_run_per_point for t in trials)
    return {
        "trials": len(trials),
        "points": sum(len(t.planned_points) for t in trials),
        "flops_6nd": total,
        "flops_total": total,
        "flops_one_run_per_point": one_each,
        "flops_saving": 1.0 - total / one_each if one_each else 0.0,
        "flops_detailed": sum(t.flops_detailed for t in trials),
        "tokens": sum(t.tokens for t in trials),
        **_grid_cost(trials),
    }


def _grid_cost(trials: list[Trial]) -> dict[str, float]:
    """What a hyper-parameter grid (lr/batch multipliers) costs: `settings_per_point` (the trials of the
    commonest (shape, D) point), `flops_one_setting` (6ND of one trial per point, the multiplier-1 one
    when there is one) and `grid_cost_ratio` (flops_total / flops_one_setting)."""
    by_shape: dict[tuple, list[Trial]] = {}
    for t in trials:
        by_shape.setdefault((t.shape, t.budget, t.config.train.seed), []).append(t)
    groups: list[list[Trial]] = []
    for same in by_shape.values():   # one point: D within 2% (whole steps of each batch multiplier)
        same.sort(key=lambda t: t.tokens)
        for t in same:
            if groups and groups[-1][0] in same and t.tokens <= groups[-1][0].tokens * 1.02:
                groups[-1].append(t)
            else:
                groups.append([t])
    one = sum(min(g, key=lambda t: (abs(math.log(t.lr_multiplier)) + abs(math.log(t.batch_multiplier)))).flops_total
              for g in groups)
    total = sum(t.flops_total for t in trials)
    return {"settings_per_point": max((len(g) for g in groups), default=1), "flops_one_setting": one,
            "grid_cost_ratio": total / one if one else 1.0}

"""The `isoflop-branches` design: an IsoFLOP study from one warmup-stable-decay run per model size.

An IsoFLOP study (Hoffmann et al. 2022, approach 2) needs, for every budget C and every size N in its
window, the loss of a run of D = C / (6 N) tokens. Trained one run per point (`design: isoflop`), each
size is retrained from scratch at every budget. With a warmup-stable-decay (WSD) schedule one run per
size serves every budget: the trunk trains at the stable LR to the largest D any budget needs of that
size, and at every smaller D_k a short cool-down branch is forked (the LR decays (1 - sqrt) to
`schedule.min_lr_ratio` over the last `schedule.decay_fraction` of D_k), evaluated, and dropped; the
trunk goes on as if it had not run (`scaling.run_state`). Hägele et al. 2024 ("Scaling Laws and
Compute-Optimal Training Beyond Fixed Training Durations", arXiv 2405.18392, Sec. 3-4) find a (1 - sqrt)
cool-down over ~20% of the tokens matches a cosine run of the same length, and that this saves most of
the Chinchilla grid's compute; Marin forks cool-downs off its IsoFLOP runs the same way.

Sizes (one ladder of shapes shared by all budgets):

- `sizes: auto`: target sizes N_j = N*_min / s * g^j, g = s^(2 / (k - 1)), from N*_min / s up to
  N*_max * s, where N*(C) = sqrt(C / (6 r)) (r = `isoflop.tokens_per_param`, s = `isoflop.spread`,
  k = `isoflop.sizes_per_budget`) -- the log-spacing `isoflop` uses within one budget, continued
  across all of them. Each target becomes a shape (`scaling.shapes.shape_for_params`); two targets
  giving one shape keep one.
- a list of sizes: that ladder as given.

Each budget C takes the k shapes of the ladder nearest N*(C) in log N (k = `isoflop.sizes_per_budget`)
and needs them to bracket N*(C); its point for size N is D = C / (6 N), rounded to whole optimiser
steps of the size's batch (`batch` rule at the largest D of the size). One trial per size (and LR
multiplier and seed) trains to the largest of its D and sets `train.cooldowns` = D_k / D_max for the
others, so every point is a fit-ready row of `points`: `final` for the largest D, `cooldown` for the
rest (stable-phase evaluations are curves only, never points). Each trial's planned points (budget,
tokens, kind) are in the sweep manifest; `sweeps.store.collect` puts the budget on every point.

Warmup: the branches share the trunk's, so `scaling.recipe`'s size rule (N tokens, at most 25% of D)
is applied to the trunk's D and can exceed 25% of a short first branch (the quick demo's largest size:
57.5k tokens of warmup before a 58k-token branch). Capping it at 25% of the shortest branch instead was
measured on `scaling demo --quick`: the first branches gained 0.01-0.03 nats/token, the same size's
later points lost 0.02-0.08 (a short warmup at its peak LR), and the forecast 10x out moved from
+4.52% to +4.90%; so the trunk's rule is kept (`schedule.warmup_fraction` sets it per shortest point).

Compute (6 N D, C = 6ND with N all parameters): a trial trains 6 N (D_max + sum_k decay_fraction D_k)
(`flops_total`, cool-downs included); the same points trained one run each cost 6 N sum_k D_k
(`flops_one_run_per_point`). With budgets spaced r apart the latter is ~ C_max r / (r - 1) per size
against ~ C_max (1 + decay_fraction / (r - 1)), so denser budgets save more.
"""

from __future__ import annotations

import dataclasses
import math
from types import ModuleType
from typing import Any

from contracts.counts import format_count
from scaling.config import ModelConfig
from scaling.plan import make_plan
from sweeps.spec import SpecError, SweepSpec, show

DESIGN = "isoflop-branches"


def branch_trials(spec: SweepSpec, source: str, design: ModuleType) -> list:
    """The trials of an `isoflop-branches` spec: one per (size, LR multiplier, seed), with their points.

    `design` is `sweeps.design`, whose shape picker and trial builder this design shares; it is passed in
    by `sweeps.design.expand` so the two modules do not import each other.
    """
    ladder = _ladder(spec, source, design)
    per_size: dict[int, list[tuple[float, float, str]]] = {i: [] for i in range(len(ladder))}
    for b, C in enumerate(spec.budgets):
        where = f"budgets[{b}]"
        n_star = design.expected_optimum(spec, C)
        chosen = _nearest(ladder, n_star, spec.isoflop.sizes_per_budget)
        ns = sorted(ladder[i][2] for i in chosen)
        if len(chosen) < 3 or not ns[0] < n_star < ns[-1]:
            raise SpecError(
                f"{source}: {where}: {show(C)} FLOPs: the ladder's sizes nearest N*={format_count(n_star)} "
                f"({', '.join(format_count(n) for n in ns)}) do not bracket it with >= 3 sizes; "
                f"widen isoflop.spread or the sizes, or move the budget"
            )
        for i in chosen:
            per_size[i].append((C, C / (6.0 * ladder[i][2]), where))
    trials = []
    for i, (model, target, n) in enumerate(ladder):
        pts = sorted(per_size[i], key=lambda p: p[1])
        if not pts:
            continue  # a ladder size no budget needs
        trials.extend(_size_trials(spec, source, design, model, target, n, pts))
    return trials


def _ladder(spec: SweepSpec, source: str, design: ModuleType) -> list[tuple[ModelConfig, float | None, int]]:
    """(model, target size, N in the spec's convention) for every shape of the ladder, smallest first."""
    if spec.sizes != "auto":
        models = design._explicit_models(spec, source)
    else:
        k, s = spec.isoflop.sizes_per_budget, spec.isoflop.spread
        g = s ** (2.0 / (k - 1))
        lo = design.expected_optimum(spec, min(spec.budgets)) / s
        hi = design.expected_optimum(spec, max(spec.budgets)) * s
        count = int(math.floor(math.log(hi / lo) / math.log(g) + 1e-9)) + 1
        models, refused = design.distinct_shapes(spec, source, "sizes (auto ladder)",
                                                 [lo * g**j for j in range(count)])
        if not models:
            raise refused[0]
    out = [(m, t, design._n(spec, m)) for m, t in models]
    return sorted(out, key=lambda x: x[2])


def _nearest(ladder: list[tuple[Any, Any, int]], n_star: float, k: int) -> list[int]:
    """Indices of the k ladder sizes nearest n_star in log N (a contiguous run of the sorted ladder)."""
    order = sorted(range(len(ladder)), key=lambda i: abs(math.log(ladder[i][2] / n_star)))
    return sorted(order[:k])


def _size_trials(spec: SweepSpec, source: str, design: ModuleType, model: ModelConfig, target: float | None, n: int,
                 pts: list[tuple[float, float, str]]) -> list:
    """One trial per LR multiplier and seed for one size: trunk to the largest D, a branch at each other."""
    d_max = pts[-1][1]
    batch = spec.batch.tokens_for(d_max, spec.context)
    steps = [max(1, int(round(d / batch))) for _, d, _ in pts]
    for (C, _, where), st in zip(pts, steps):
        if st < spec.min_steps:
            raise SpecError(
                f"{source}: {where}: the {format_count(n)}-param model (L{model.n_layer} d{model.d_model}) gets "
                f"{format_count(st * batch)} tokens = {st} steps of {batch} tokens at {show(C)} FLOPs, below "
                f"min_steps {spec.min_steps}; lower batch.tokens, raise the budget, or narrow isoflop.spread"
            )
    if len(set(steps)) != len(steps):
        raise SpecError(f"{source}: budgets: two budgets give the {format_count(n)}-param model the same "
                        f"{format_count(steps[0] * batch)} tokens; space the budgets further apart")
    total = steps[-1] * batch
    cooldowns = [st * batch / total for st in steps[:-1]]
    schedule = spec.schedule.model_copy(update={"cooldowns": cooldowns})
    sized = spec.model_copy(update={"schedule": schedule})
    points = [{"budget": C, "tokens": st * batch, "kind": "cooldown" if j < len(pts) - 1 else "final"}
              for j, ((C, _, _), st) in enumerate(zip(pts, steps))]
    out = []
    for mult in spec.lr.multipliers:
        for seed in spec.seeds:
            trial = design._make_trial(sized, source, model, float(total), None, target, pts[-1][2], mult, seed,
                                       shortest=steps[0] * batch)
            plan = make_plan(trial.config, world_size=trial.config.train.nproc,
                             device_type=trial.config.train.device)
            if [b.end_step * plan.batch_tokens for b in plan.branches] != [p["tokens"] for p in points[:-1]]:
                raise SpecError(f"{source}: {trial.run_id}: the run's branches do not end at the planned D "
                                f"(batch {plan.batch_tokens} tokens); use a batch of whole sequences per process")
            trained = plan.total_steps * plan.batch_tokens
            extra = {"points": points, "tokens_trained": trained, "flops_total": 6.0 * trial.params * trained}
            out.append(dataclasses.replace(trial, design=DESIGN, extra=extra))
    return out

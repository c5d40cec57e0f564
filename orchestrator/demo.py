"""`scaling demo`: the whole product on a laptop CPU, ending in a forecast it checks against reality.

1. prepare the default corpus (the Python standard library) and its tokenizer (cached);
2. launch an IsoFLOP sweep on local Ray (`sweeps/examples/demo-cpu.yaml`), or resume it: one run per
   (N, D) point, each with its own cosine. The branch design (`sweeps.branches`: one warmup-stable-decay
   run per size, a cool-down branch per budget) was measured as the demo's sweep and forecast worse
   (+5.90% against -1.20% at 10x, 6.82e12 vs 7e12 FLOPs; the spec file gives the numbers), so the
   demo keeps one run per point;
3. fit Chinchilla's approach 3 (with bootstrap intervals), approach 2 and Kaplan's L(N, D) for the
   report, and the forecaster (`analysis.forecast`), exactly as `scaling plan SWEEP --budget C` fits it:
   every candidate law (approach 3, Kaplan's, Kaplan's bounded by ln V of the sweep's recorded
   vocabulary, ...) weighed by how well it forecasts the sweep's larger budgets from its smaller ones;
4. plan the compute-optimal run for a budget `heldout_factor` x the sweep's largest with the forecaster
   (`Planner.from_fit`, the plan `scaling plan` prints: the same forecast, law and interval), train
   it with the sweep's own recipe, and set the loss it reached beside the forecast and its interval.
   The held-out run is an independent run from scratch, never a branch of a sweep run, trained with
   the sweep's own recipe (schedule, LR and batch rules, AdamW betas, warmup rule): a forecast is only
   tested on the recipe whose points made it;
5. write an HTML report that tells the same story (the forecaster's law and interval).

Built only from the packages' public functions, so the demo is the product's integration test. Every
step is resumable: run it again with the same `--out` after a Ctrl-C and finished work is kept.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from analysis.backtest import fit_approach
from analysis.errors import InputError
from analysis.fit import ChinchillaFit, IsoFLOPFit, KaplanFit
from analysis.fitjson import write_fit
from analysis.forecast import DEFAULT_BOOTSTRAP, describe_forecast
from analysis.io import FitWarning, load_points
from analysis.plan import Planner
from analysis.report import build_report
from contracts.jsonio import write_json
from scaling.counting import param_counts
from scaling.errors import ConfigError
from scaling.shapes import shape_for_params
from scaling.train import train
from sweeps import store
from sweeps.design import expand, totals
from sweeps.launch import launch, resume
from sweeps.spec import load_spec, show, validate_spec

DEMO_SPEC = Path(__file__).resolve().parents[1] / "sweeps" / "examples" / "demo-cpu.yaml"

QUICK_OVERRIDES = (
    # A reduced demo for the end-to-end test: a 10 MB slice of the corpus (4.4M training tokens, enough
    # for the held-out run without repeating data), 10x smaller budgets, 4 sizes each.
    "data.max_bytes=10000000",
    "budgets=[2e10,6e10,2e11]",
    "isoflop.sizes_per_budget=4",
    "min_steps=60",
    "train.eval_tokens=16384",
)


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs. The sweep itself is the spec file plus `overrides` (`--set key=value`)."""

    out: Path = Path("demo-out")
    spec: Path = DEMO_SPEC
    overrides: tuple[str, ...] = ()
    heldout_factor: float = 10.0
    heldout_cpus: int = 2
    bootstrap: int = 1000
    level: float = 0.95
    seed: int = 0
    progress: bool = True
    verbose: bool = False

    @classmethod
    def quick(cls, **kw: Any) -> "DemoSettings":
        kw.setdefault("bootstrap", 200)
        kw["overrides"] = QUICK_OVERRIDES + tuple(kw.get("overrides", ()))
        return cls(**kw)


@dataclass
class DemoResult:
    budget: float
    N_opt: float
    D_opt: float
    predicted_loss: float
    interval: list[float]
    actual_loss: float
    error_pct: float
    a: float
    b: float
    a_interval: list[float] | None
    wall_s: float
    report: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        keys = ("budget", "N_opt", "D_opt", "predicted_loss", "interval", "actual_loss", "error_pct", "a", "b",
                "wall_s", "report")
        return {**{k: getattr(self, k) for k in keys}, "a_interval": self.a_interval, **self.details}


def run_demo(settings: DemoSettings, echo: Callable[[str], None] = print) -> DemoResult:
    """Run (or resume) the whole demo in `settings.out`; see the module docstring."""
    t0 = time.monotonic()
    out = settings.out.expanduser().absolute()
    # 1-2. the sweep (launch prepares the corpus and tokenizer before starting Ray); the spec is
    # checked before anything is written
    spec = load_spec(settings.spec, overrides=settings.overrides)
    out.mkdir(parents=True, exist_ok=True)
    sweep_dir = out / "sweep"
    cost = totals(expand(spec, str(settings.spec)))  # FLOPs of 6ND, cool-down branches included
    if (sweep_dir / store.MANIFEST).exists():
        echo(f"[1/5] resuming the sweep in {sweep_dir}")
        status = resume(sweep_dir, progress=settings.progress, verbose=settings.verbose)
    else:
        runs = "WSD runs (one per size, a cool-down branch per budget)" if spec.design == "isoflop-branches" else "runs"
        echo(f"[1/5] IsoFLOP sweep: {cost['trials']} {runs}, {cost['points']} points at {len(spec.budgets)} budgets "
             f"{show(min(spec.budgets))}..{show(max(spec.budgets))} FLOPs ({cost['flops_total']:.2e} FLOPs in all; "
             f"{cost['flops_one_run_per_point']:.2e} as one run per point) -> {sweep_dir}")
        status = launch(spec, sweep_dir, source=str(settings.spec), progress=settings.progress,
                        verbose=settings.verbose)
    counts = status["counts"]
    unfinished = sum(counts.get(k, 0) for k in ("pending", "running", "stopped"))
    if unfinished:  # Ctrl-C reached Tune, which stopped the trials and saved the experiment
        echo(f"      interrupted with {unfinished} trials unfinished; run the demo again with the same --out "
             "to resume")
        raise KeyboardInterrupt
    if counts.get("failed", 0) or counts.get("diverged", 0):
        echo(f"      {counts.get('failed', 0)} failed and {counts.get('diverged', 0)} diverged trials are left out "
             "of the fits (see `scaling sweep status`)")

    # 3. the laws
    echo("[2/5] fitting approach 3 (bootstrap), approach 2, Kaplan's L(N, D) and the forecaster")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        points = load_points(sweep_dir, budget_col="budget")  # the budget each IsoFLOP run belongs to
        fit3 = ChinchillaFit(bootstrap=settings.bootstrap, interval_level=settings.level,
                             random_state=settings.seed).fit(points)
        try:
            fit2 = IsoFLOPFit(bootstrap=settings.bootstrap, random_state=settings.seed).fit(points)
        except InputError as exc:   # a tiny sweep may bracket fewer than 2 minima: keep them, and say so
            echo(f"      approach 2: {exc}; refitting with the unbracketed budgets kept (biased a, b)")
            fit2 = IsoFLOPFit(bootstrap=settings.bootstrap, random_state=settings.seed,
                              keep_unbracketed=True).fit(points)
        kaplan = KaplanFit(form="nd", bootstrap=settings.bootstrap, interval_level=settings.level,
                           random_state=settings.seed).fit(points)
    for w in caught:
        if issubclass(w.category, FitWarning):  # numpy's RuntimeWarnings from degenerate resamples are noise
            echo(f"      warning: {w.message}")
    for name, est in (("fit-approach3.json", fit3), ("fit-approach2.json", fit2), ("fit-kaplan.json", kaplan)):
        write_fit(est, out / name)

    # the forecast: what `scaling plan SWEEP --budget C` fits and plans (same points, settings and seed)
    C = settings.heldout_factor * max(spec.budgets)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        forecaster = fit_approach(load_points(sweep_dir), "auto", bootstrap=DEFAULT_BOOTSTRAP, random_state=settings.seed,
                                  axis="budget").estimator
    for w in caught:
        if issubclass(w.category, FitWarning):
            echo(f"      warning: {w.message}")
    write_fit(forecaster, out / "fit-forecast.json")
    echo("      " + describe_forecast(forecaster).replace("\n", "\n      "))

    # 4. plan the held-out compute-optimal run and train it with the sweep's recipe
    plan = Planner.from_fit(forecaster).budget(C)
    model = shape_for_params(plan.N, vocab_size=spec.vocab_size, context=spec.context, **spec.model)
    n_actual = param_counts(model)["params"]
    heldout_spec = _heldout_spec(spec, model, C / (6 * n_actual), settings.heldout_cpus)
    trial = expand(heldout_spec, "held-out run")[0]
    run_dir = out / "heldout"
    echo(f"[3/5] held-out run at {C:.2e} FLOPs: the plan says N = {plan.N:,.0f}, D = {plan.D:,.0f} tokens, loss "
         f"{plan.loss:.4f}; training L{model.n_layer} d{model.d_model} ({n_actual:,} params) on {trial.tokens:,} "
         f"tokens -> {run_dir}")
    try:
        result = train(trial.config, run_dir, resume=True, progress=settings.progress)
    except ConfigError as exc:   # a held-out run of another plan (another version, factor or --set)
        held = str(exc).split("; use --no-resume")[0]
        raise ConfigError(f"{held}: it is the held-out run of another plan; the demo trains the run its law plans "
                          f"now: delete {run_dir} (the sweep is kept) or give another --out") from None
    if result.trial["status"] == "running":  # SIGTERM: the run saved a checkpoint and stopped
        echo("      the held-out run was interrupted; run the demo again with the same --out to resume it")
        raise KeyboardInterrupt
    if result.trial["status"] != "completed":
        raise RuntimeError(f"{run_dir}: the held-out run ended {result.trial['status']}"
                           f" ({result.trial.get('diverge_reason') or 'interrupted'})")

    # the forecast is the plan's: its loss and calibrated interval at C; beside it, the forecast for the
    # run actually trained (its N, D after rounding to a shape) and each candidate law's
    actual = float(result.trial["final_loss"])
    pred = float(plan.loss)
    lower, upper = (float(x) for x in plan.intervals["loss"])
    D_run = float(trial.tokens)
    at_run = [float(np.asarray(x)[0]) for x in forecaster.predict([n_actual], [D_run], interval=settings.level)]
    candidates = {name: float(np.asarray(est.predict([n_actual], [D_run]))[0])
                  for name, est in forecaster.candidates_.items() if name != "chinchilla_nonembedding"}
    forecast = {"budget": C, "plan": plan.to_dict(), "heldout": {"run_id": trial.run_id, "N": int(n_actual), "D": D_run,
                                                                  "loss": actual},
                "forecast_at_run": {"predicted": at_run[0], "interval": at_run[1:]},
                "candidates_at_run": {k: {"predicted": v, "error_pct": 100 * (v - actual) / actual}
                                      for k, v in candidates.items()}}
    write_json(out / "forecast.json", forecast)

    # 5. the report: the forecaster's law and interval, the held-out run against them
    echo("[4/5] writing the report")
    shown = {"approach": "auto", "holdout": None, "interval_kind": "prediction",
             "interval_level": settings.level, "n_inside": int(lower <= actual <= upper),
             "rows": [{"run_id": trial.run_id, "N": float(n_actual), "D": D_run, "C": float(6 * n_actual * D_run),
                       "loss": actual, "predicted": pred, "interval": [lower, upper],
                       "rel_error": (pred - actual) / actual, "abs_rel_error": abs(pred - actual) / actual,
                       "in_interval": bool(lower <= actual <= upper), "target": True}],
             "fit": forecaster.to_dict()}
    shown.update(mean_abs_rel_error=shown["rows"][0]["abs_rel_error"], max_abs_rel_error=shown["rows"][0]["abs_rel_error"],
                 coverage=float(shown["n_inside"]), n_train=int(forecaster.n_points_), n_holdout=1)
    report = build_report(sweep_dir, out / "report.html", fit=fit3, backtest_json=shown, forecast=forecaster,
                          bootstrap=min(settings.bootstrap, 200),
                          notes=["The demo forecast its held-out run with the forecaster (the Forecast section), "
                                 "exactly as `scaling plan` does; the Backtest section shows that forecast and its "
                                 "interval against the loss the run reached."],
                          title="scaling demo: IsoFLOP sweep of tiny GPTs on the Python standard library")

    a_iv = fit3.intervals_.get("a") if getattr(fit3, "intervals_", None) else None
    a2_iv = fit2.intervals_.get("a") if getattr(fit2, "intervals_", None) else None
    res = DemoResult(
        budget=C, N_opt=float(plan.N), D_opt=float(plan.D), predicted_loss=pred,
        interval=[lower, upper], actual_loss=actual,
        error_pct=100 * (pred - actual) / actual, a=float(fit3.a_), b=float(fit3.b_),
        a_interval=None if a_iv is None else [float(a_iv[0]), float(a_iv[1])],
        wall_s=time.monotonic() - t0, report=str(report),
        details={
            "law": forecaster.chosen_, "weights": dict(forecaster.weights_),
            "selection": forecaster.selection_, "interval_scale": forecaster.interval_scale_,
            "bend": forecaster.bend_,
            "heldout": {"run_id": trial.run_id, "N": int(n_actual), "D": int(trial.tokens),
                        "shape": f"L{model.n_layer} d{model.d_model} h{model.n_head}",
                        "wall_s": result.trial.get("wall_s")},
            "inside_interval": bool(lower <= actual <= upper),
            "forecast_at_run": {"predicted": at_run[0], "interval": at_run[1:],
                                "error_pct": 100 * (at_run[0] - actual) / actual},
            "candidates_at_run": forecast["candidates_at_run"],
            "approach2_a": float(fit2.a_),
            "approach2_a_interval": None if a2_iv is None else [float(a2_iv[0]), float(a2_iv[1])],
            "kaplan": {k: float(getattr(kaplan, k + "_")) for k in ("alpha_N", "N_c", "alpha_D", "D_c")},
            "fit": {k: float(getattr(fit3, k + "_")) for k in ("E", "A", "B", "alpha", "beta")},
            "sweep": str(sweep_dir), "n_points": int(fit3.n_points_),
            "sweep_design": spec.design, "sweep_budgets": [float(c) for c in spec.budgets],
            "sweep_trials": int(cost["trials"]), "sweep_flops": float(cost["flops_total"]),
            "sweep_flops_one_run_per_point": float(cost["flops_one_run_per_point"]),
            # the recipe the held-out run trained with, as its trial.json records it (the sweep's own)
            "recipe": {k: result.trial.get(k) for k in ("schedule", "decay_fraction", "lr", "batch_tokens",
                                                        "warmup_tokens", "beta1", "beta2", "weight_decay",
                                                        "min_lr_ratio")},
            "units": {"budget": "FLOPs (6ND)", "sweep_flops": "FLOPs (6ND, cool-down branches included)",
                      "N_opt": "parameters (total)", "D_opt": "tokens",
                      "predicted_loss": "nats/token (validation)", "wall_s": "seconds"},
        },
    )
    write_json(out / "demo.json", res.to_dict())
    echo(f"[5/5] done: {out / 'demo.json'}")
    return res


def _heldout_spec(spec, model, tokens: float, cpus: int):
    """The sweep's spec turned into a one-run grid: same corpus, recipe (LR and batch rules, schedule,
    evaluation) and seed, the planned shape and D, and all the machine's threads."""
    d = spec.model_dump(mode="json")
    d.update(design="grid", budgets=[], sizes=[{"n_layer": model.n_layer, "d_model": model.d_model,
                                                "n_head": model.n_head}],
             tokens=[int(tokens)], tokens_per_param=[], seeds=[spec.seeds[0]],
             resources={**d["resources"], "cpus": cpus}, max_concurrent_trials=1)
    d["lr"] = {**d["lr"], "multipliers": [1.0]}
    return validate_spec(d, "held-out run")

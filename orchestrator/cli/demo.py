"""`scaling demo`: sweep, fit, plan, and check the forecast against a real held-out run.

    scaling demo                       the full demo into demo-out/ (about 15 minutes on 2 CPU cores)
    scaling demo --json                the same, ending in one JSON object
    scaling demo --out my-demo         keep everything elsewhere; rerun with the same --out to resume
    scaling demo --quick               a reduced demo (10 MB of the corpus, 10x smaller budgets): ~4 minutes
    scaling demo --set budgets=[1e11,3e11,1e12]     change the sweep (any field of demo-cpu.yaml)

The output folder is a real sweep folder (`<out>/sweep`) that `scaling sweep status`, `scaling fit`
and `scaling report` read, plus the held-out run (`<out>/heldout`), the fits and `report.html`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.cli.common import (
    add_command, add_progress_arg, add_verbose_arg, nonneg_int, positive_float, print_json, seed_arg,
)


def register(subparsers) -> None:
    p = add_command(subparsers, "demo", __doc__,
                    "the whole path on the default corpus: sweep, fit, plan, and check the forecast")
    p.add_argument("--out", default="demo-out", help="output folder (default demo-out); rerun to resume")
    p.add_argument("--quick", action="store_true", help="a reduced demo for a first look or a test (~4 minutes)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the demo's sweep spec (repeatable), e.g. isoflop.sizes_per_budget=4")
    p.add_argument("--heldout-factor", type=positive_float, default=10.0,
                   help="the held-out run's budget as a multiple of the sweep's largest (default 10)")
    p.add_argument("--bootstrap", type=nonneg_int, help="bootstrap resamples for the intervals (default 1000; 200 quick)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the bootstrap")
    add_progress_arg(p)
    add_verbose_arg(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from orchestrator.cli.common import check_out_path
    from orchestrator.demo import DemoSettings, run_demo

    check_out_path(args.out, "--out")

    kw = dict(out=Path(args.out), overrides=tuple(args.overrides), heldout_factor=args.heldout_factor,
              seed=args.seed, progress=not args.no_progress, verbose=args.verbose)
    if args.bootstrap is not None:
        kw["bootstrap"] = args.bootstrap
    settings = DemoSettings.quick(**kw) if args.quick else DemoSettings(**kw)
    echo = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    result = run_demo(settings, echo=echo)
    if args.json:
        print_json(result.to_dict())
        return 0
    lo, hi = result.interval
    inside = "inside" if lo <= result.actual_loss <= hi else "OUTSIDE"
    a_iv = f" ({result.a_interval[0]:.3f}-{result.a_interval[1]:.3f})" if result.a_interval else ""
    held, d = result.details["heldout"], result.details
    others = ", ".join(f"{k} {v['predicted']:.4f} ({v['error_pct']:+.2f}%)" for k, v in d["candidates_at_run"].items())
    members = ", ".join(f"{k} {100 * w:.0f}%" for k, w in d["weights"].items())
    seed = f" --seed {settings.seed}" if settings.seed else ""
    print(f"""
sweep        {len(d['sweep_budgets'])} budgets, {d['n_points']} points from {d['sweep_trials']} runs ({d['sweep_design']}): \
{d['sweep_flops']:.3g} FLOPs ({d['sweep_flops_one_run_per_point']:.3g} as one run per point)
held-out compute-optimal run at C = {result.budget:.3g} FLOPs ({settings.heldout_factor:g}x the sweep's largest budget)
  planned      N_opt = {result.N_opt:,.0f} params, D_opt = {result.D_opt:,.0f} tokens
  trained      {held['shape']}: N = {held['N']:,} params, D = {held['D']:,} tokens
  law          {members} (the forecaster: weighed by forecasting the sweep's larger budgets from its smaller)
  forecast     {result.predicted_loss:.4f} nats/token, 95% interval {lo:.4f} - {hi:.4f} (calibrated on the sweep's
               held-out budgets; the same as `scaling plan {d['sweep']} --budget {result.budget:.6g}{seed}`)
  actual       {result.actual_loss:.4f} nats/token  ->  error {result.error_pct:+.2f}%, {inside} the interval
  each law     at the run trained: {others}
fitted a (N_opt ~ C^a) = {result.a:.3f}{a_iv}, b = {result.b:.3f}   (Chinchilla: a ~ 0.50; Kaplan: 0.73)
report       {result.report}
wall time    {result.wall_s / 60:.1f} min""")
    return 0

"""`scaling sweep plan|launch|resume|status`: sweeps of real pretraining runs on Ray Tune.

    scaling sweep plan   sweeps/examples/isoflop-cpu.yaml              the trials, their FLOPs, est. time
    scaling sweep plan   sweeps/examples/isoflop-branches-cpu.yaml --json   flops_total vs flops_one_run_per_point
    scaling sweep launch sweeps/examples/isoflop-cpu.yaml --out sweeps-out/iso1           local Ray
    scaling sweep launch sweeps/examples/chinchilla-gpu.yaml --address auto --out /mnt/shared/chin1
    scaling sweep status sweeps-out/iso1 [--json]
    scaling sweep resume sweeps-out/iso1                                after a crash or Ctrl-C
    scaling sweep launch spec.yaml --log tensorboard --log mlflow     + Ray Tune's tracker callbacks
    scaling sweep plan spec.yaml --set budgets=[1e11,3e11] --set isoflop.spread=3   override fields

A spec error is one line naming the file, field and value, exit code 2, and nothing is started.
"""

from __future__ import annotations

import argparse
import math
import sys

from orchestrator.cli.common import (
    add_command, add_log_arg, add_progress_arg, add_verbose_arg, nonneg_int, positive_int, print_json,
)


def register(subparsers) -> None:
    p = add_command(subparsers, "sweep", __doc__,
                    "plan, launch, resume and watch sweeps of pretraining runs on Ray Tune")
    sub = p.add_subparsers(dest="sweep_command", metavar="ACTION", required=True)

    def spec_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("spec", help="sweep spec YAML (see sweeps/examples/)")
        q.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a spec field, YAML value, dotted key (repeatable): budgets=[1e11,3e11]")

    def ray_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--address", help="join a running Ray cluster ('auto' on its head node, or HOST:PORT); "
                                         "default: start a local Ray for this sweep")
        q.add_argument("--num-cpus", type=positive_int, help="CPUs of the local Ray (default: all)")
        q.add_argument("--num-gpus", type=nonneg_int, help="GPUs of the local Ray (default: all)")
        q.add_argument("--dashboard", action="store_true", help="start Ray's dashboard (local Ray only)")
        q.add_argument("--dashboard-host", default="127.0.0.1",
                       help="address the dashboard binds to (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
        q.add_argument("--insecure", action="store_true",
                       help="allow joining a non-loopback --address, or a non-loopback --dashboard-host, with "
                            "Ray's token authentication disabled (anyone who reaches it can run code)")
        add_progress_arg(q)
        add_verbose_arg(q)
        add_log_arg(q)
        q.add_argument("--json", action="store_true", help="print the final status as one JSON object")

    def action(name: str, help: str, examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog="examples:\n" + examples,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    q = action("plan", "print the trials, their N, D, FLOPs and the estimated wall time",
               "  scaling sweep plan sweeps/examples/isoflop-cpu.yaml\n"
               "  scaling sweep plan spec.yaml --set budgets=[1e11,3e11] --set isoflop.spread=3 --json\n"
               "  scaling sweep plan sweeps/examples/chinchilla-gpu.yaml --no-probe      assumed FLOP/s, no timing\n")
    spec_args(q)
    q.add_argument("--no-probe", action="store_true",
                   help="estimate time from an assumed FLOP/s instead of timing a few steps of each shape here")
    q.add_argument("--slots", type=positive_int, help="trials at once (default: max_concurrent_trials, or CPUs / cpus per trial)")
    add_progress_arg(q)
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=run_plan)

    q = action("launch", "run a sweep (local Ray by default, --address for a cluster)",
               "  scaling sweep launch sweeps/examples/isoflop-cpu.yaml --out sweeps-out/iso1\n"
               "  scaling sweep launch spec.yaml --out sweeps-out/s1 --log tensorboard --log wandb\n"
               "  scaling sweep launch sweeps/examples/chinchilla-gpu.yaml --address auto --out /mnt/shared/c1 \\\n"
               "      --storage s3://bucket/sweeps\n")
    spec_args(q)
    q.add_argument("--out", help="sweep folder (default sweeps-out/<name>); shared by all nodes on a cluster")
    q.add_argument("--storage", help="where Ray Tune keeps checkpoints and experiment state: a path or a URI "
                                     "(s3://bucket/prefix, gs://...); default <out>/ray")
    ray_args(q)
    q.set_defaults(func=run_launch)

    q = action("resume", "finish an interrupted sweep; completed trials are not rerun",
               "  scaling sweep resume sweeps-out/iso1\n"
               "  scaling sweep resume sweeps-out/iso1 --address auto --log mlflow --json\n")
    q.add_argument("out", help="the sweep folder")
    ray_args(q)
    q.set_defaults(func=run_resume)

    q = action("status", "trials done/running/failed, FLOPs done, tokens/s, ETA; refreshes the tables",
               "  scaling sweep status sweeps-out/iso1\n"
               "  scaling sweep status sweeps-out/iso1 --json\n")
    q.add_argument("out", help="the sweep folder")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=run_status)


# --- handlers --------------------------------------------------------------------------------------

def run_plan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from contracts.counts import format_count
    from sweeps.design import expand, totals
    from sweeps.estimate import default_slots, estimate
    from sweeps.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    source = Path(args.spec).name
    spec.check_corpus(source)
    trials = expand(spec, source)
    slots = args.slots or default_slots(trials, spec.max_concurrent_trials)
    est = estimate(trials, slots=slots, probe=not args.no_probe, progress=not args.no_progress and sys.stderr.isatty())
    tot = totals(trials)
    if args.json:
        rows = [{**t.row(), "est_s": est.per_trial_s[t.run_id], "est_tokens_per_s": est.tokens_per_s[t.run_id]}
                for t in trials]
        summary = {("n_trials" if k == "trials" else k): v for k, v in tot.items()}  # the list keeps "trials"
        print_json({"sweep": spec.sweep_name(), "design": spec.design, **summary, "trials": rows,
                    "est_wall_s": est.wall_s, "slots": est.slots, "estimate_source": est.source,
                    "estimate_note": est.note,
                    "units": {"params": "parameters", "tokens": "tokens", "flops_6nd": "FLOPs (6ND)",
                              "flops_total": "FLOPs (6ND)", "flops_one_run_per_point": "FLOPs (6ND)",
                              "est_wall_s": "seconds", "est_tokens_per_s": "tokens/s"}})
        return 0
    print(f"sweep {spec.sweep_name()}: {spec.design} design, {len(trials)} trials "
          f"(N = {spec.size_convention} parameters, C = 6ND)")
    header = f"{'run_id':<28} {'shape':<16} {'N':>7} {'N_nonemb':>8} {'D':>7} {'D/N':>6} {'C (6ND)':>9} " \
             f"{'points':>6} {'steps':>6} {'lr':>8} {'est.':>7}"
    print(header)
    print("-" * len(header))
    for t in trials:
        lr = f"{_lr(t):.2e}"
        print(f"{t.run_id:<28} {t.shape:<16} {format_count(t.params):>7} {format_count(t.params_nonembedding):>8} "
              f"{format_count(t.tokens):>7} {t.tokens_per_param:>6.1f} {t.flops_total:>9.3g} "
              f"{len(t.planned_points):>6} {t.steps:>6} {lr:>8} "
              f"{_duration(est.per_trial_s[t.run_id]):>7}")
    print(f"total: {tot['flops_total']:.3g} FLOPs (6ND, cool-down branches included), {tot['points']} fit-ready "
          f"points, {format_count(tot['tokens'])} tokens (trunks)")
    print(f"one run per point: {tot['flops_one_run_per_point']:.3g} FLOPs (6ND); this design saves "
          f"{100 * tot['flops_saving']:.0f}%")
    if tot["settings_per_point"] > 1:
        print(f"hyper-parameter grid: {len(spec.lr.multipliers)} LR x {len(spec.batch.multipliers)} batch settings "
              f"per point cost {tot['grid_cost_ratio']:.2f}x one setting per point ({tot['flops_one_setting']:.3g} "
              "FLOPs, 6ND); `scaling hparams` fits the optimum from them")
    print(f"estimated wall time: {_duration(est.wall_s)} ({est.source}: {est.note})")
    return 0


def _lr(trial) -> float:
    """The trial's peak LR; with `lr.rule: default` the size rule `train` will apply (scaling.recipe)."""
    if trial.config.train.lr is not None:
        return trial.config.train.lr
    from scaling.recipe import default_lr

    return default_lr(trial.config.model)


def run_launch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sweeps.launch import launch
    from sweeps.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    out = args.out or str(Path("sweeps-out") / spec.sweep_name())
    result = launch(spec, out, source=Path(args.spec).name, address=args.address, storage=args.storage,
                    progress=not args.no_progress, num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                    dashboard=args.dashboard, dashboard_host=args.dashboard_host, log=args.log,
                    insecure=args.insecure, verbose=args.verbose)
    return _report(result, args.json, out)


def run_resume(args: argparse.Namespace) -> int:
    from sweeps.launch import resume

    result = resume(args.out, address=args.address, progress=not args.no_progress, num_cpus=args.num_cpus,
                    num_gpus=args.num_gpus, dashboard=args.dashboard, dashboard_host=args.dashboard_host, log=args.log,
                    insecure=args.insecure, verbose=args.verbose)
    return _report(result, args.json, args.out)


def run_status(args: argparse.Namespace) -> int:
    from sweeps.store import status

    result = status(args.out)
    if args.json:
        print_json(result)
        return 0
    _print_status(result)
    return 0


# --- output ----------------------------------------------------------------------------------------

def _report(result: dict, as_json: bool, out: str) -> int:
    if as_json:
        print_json(result)
    else:
        _print_status(result)
    c = result["counts"]
    unfinished = c.get("running", 0) + c.get("pending", 0) + c.get("stopped", 0)
    if unfinished:
        print(f"{unfinished} trial(s) unfinished; continue with: scaling sweep resume {out}", file=sys.stderr)
        return 1
    return 0


def _print_status(s: dict) -> None:
    from contracts.counts import format_count

    c = s["counts"]
    print(f"sweep {s['sweep']} at {s['folder']} (driver {s['driver']})")
    print(f"trials: {c['completed']} completed, {c['running']} running, {c['stopped']} stopped, "
          f"{c['pending']} pending, {c['failed']} failed, {c['diverged']} diverged, of {s['n_trials']}")
    if "points_planned" in s:
        print(f"points: {s['points_done']} of {s['points_planned']} fit-ready (N, D) points measured")
    pct = 100.0 * s["flops_done"] / s["flops_total"] if s["flops_total"] else 100.0
    eta = f", ETA {_duration(s['eta_s'])}" if s.get("eta_s") else ""
    rate = f", {s['flops_per_s']:.3g} FLOP/s" if s.get("flops_per_s") else ""
    print(f"compute: {s['flops_done']:.3g} of {s['flops_total']:.3g} FLOPs (6ND, cool-downs included) done ({pct:.0f}%){rate}{eta}")
    print(f"{'run_id':<28} {'status':<10} {'N':>7} {'D':>7} {'done':>5} {'points':>6} {'val loss':>9} {'tok/s':>7}")
    for t in s["trials"]:
        loss = t.get("val_loss")
        loss_s = f"{loss:.4f}" if isinstance(loss, (int, float)) and math.isfinite(loss) else "-"
        tps = t.get("tokens_per_s")
        tps_s = format_count(tps) if isinstance(tps, (int, float)) and tps else "-"
        print(f"{t['run_id']:<28} {t['status']:<10} {format_count(t['params']):>7} {format_count(t['tokens']):>7} "
              f"{100 * t['progress']:>4.0f}% {t.get('points_done', 0):>2}/{t.get('points_planned', 1):<3} {loss_s:>9} "
              f"{tps_s:>7}")
        if t.get("error"):
            print(f"    error: {t['error']}")
    print(f"tables: {s['folder']}/trials.parquet, curves.parquet, points.parquet")


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"

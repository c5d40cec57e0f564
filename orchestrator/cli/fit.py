"""`scaling fit SOURCE`: fit Chinchilla (approaches 1, 2, 3) or Kaplan laws to a table of runs.

    scaling fit runs.csv --n-col "Model Size" --c-col "Training FLOP" --loss-col loss \\
        --approach 3 --drop-highest 5 --bootstrap 1000 --seed 0 --json --out fit.json
    scaling fit sweeps-out/iso1 --approach 2                 # a sweep folder: its points.parquet
    scaling fit isoflops.csv --approach 2 --budget-col budget --n-col params --d-col tokens
    scaling fit sweeps-out/iso1 --approach 1                 # training curves: curves + trials tables
    scaling fit runs.csv --approach kaplan --n-convention nonembedding
    scaling fit demo-out/sweep --approach kaplan --vocab-size 512   # Kaplan's law bounded by ln V
    scaling fit sweeps-out/iso1 --exclude "N < 1e7 or D / N > 200"   # leave rows out (the --holdout language)

SOURCE is a CSV or Parquet file, a sweep folder (points.parquet; for approach 1 curves.parquet and
trials.parquet) or a run folder (points.csv; curves.csv and trial.json). In folders the columns
default to params (params_nonembedding with --n-convention nonembedding), tokens, flops_6nd, loss,
and only rows with status completed are used. D = C / (6 N) when only a FLOPs column is given.
`--out` writes the fit JSON that `scaling plan` reads (`analysis.fitjson.write_fit`); `--json` prints
the same object.
"""

from __future__ import annotations

import argparse
import sys

from orchestrator.cli.common import (
    add_column_args, add_command, add_exclude_arg, add_progress_arg, kaplan_ceiling, level_arg, nonneg_int,
    positive_float, positive_int, seed_arg, vocab_size_arg,
)


def register(subparsers) -> None:
    p = add_command(subparsers, "fit", __doc__,
                    "fit Kaplan / Chinchilla (approach 1, 2, 3) scaling laws to a table of runs")
    p.add_argument("source", metavar="SOURCE", help="CSV/Parquet file, sweep folder or run folder")
    cols = add_column_args(p, loss_help="loss, nats/token (approach 1: default val_loss)")
    cols.add_argument("--budget-col", metavar="COL", help="approach 2: the IsoFLOP budget of each row")
    cols.add_argument("--u-col", metavar="COL",
                      help="unique tokens each run's data were drawn from (default unique_tokens when present): "
                           "D > U repeats data, and approach 3 fits the data-constrained law (Muennighoff et al. 2023)")
    cols.add_argument("--run-col", metavar="COL", help="approach 1: the run each curve row belongs to (default run_id)")
    p.add_argument("--approach", default="3", choices=["1", "2", "3", "kaplan", "data-constrained", "auto"],
                   help="1 envelope of curves, 2 IsoFLOP parabolas, 3 parametric L(N, D) (default; the "
                        "data-constrained L(N, D, U) when the table repeats data), kaplan, or auto (the "
                        "forecaster: every candidate law weighed by how well it forecasts the table's larger budgets "
                        "from its smaller ones, with the cut table and a calibrated interval; analysis.forecast)")
    p.add_argument("--kaplan-form", choices=["nd", "n", "d", "c"], default=None,
                   help="Kaplan law: L(N, D) eq. 1.5, L(N), L(D) or L(C) (default: nd when N and D both vary)")
    p.add_argument("--vocab-size", type=vocab_size_arg, default=None, metavar="V",
                   help="kaplan (form nd): bound the law by ln V, the loss of a uniform guess over V tokens: "
                        "L = ln V / (1 + 1/K), K Kaplan's power law (the frontier of tiny models steepens as "
                        "it leaves that plateau; Alabdulmohsin et al. 2022); auto: V of a table that does not "
                        "record it (a sweep or run folder does), for the bounded candidate and the ln V rule")
    p.add_argument("--keep-all", action="store_true",
                   help="auto: keep every row (no domain rules: rows at or above ln V, or beaten by a smaller run, "
                        "are otherwise set aside and named)")
    p.add_argument("--drop-highest", type=nonneg_int, default=0, metavar="K", help="leave out the K highest-loss points")
    p.add_argument("--bootstrap", type=nonneg_int, default=0, metavar="B", help="bootstrap resamples for intervals (e.g. 1000)")
    p.add_argument("--seed", type=seed_arg, default=0, metavar="S", help="seed of the bootstrap (default 0)")
    p.add_argument("--level", type=level_arg, default=0.95, metavar="P", help="interval level (default 0.95)")
    p.add_argument("--n-convention", choices=["total", "nonembedding", "all"], default=None,
                   help="which parameter count N is: total (params) or nonembedding (params_nonembedding, or "
                        "the --n-col column, declared non-embedding); all: one fit per convention the table has, "
                        "side by side")
    p.add_argument("--budget-rtol", type=positive_float, default=0.1, metavar="R",
                   help="approach 2 without --budget-col: points whose 6ND agree within this ratio share a budget")
    p.add_argument("--keep-unbracketed", action="store_true",
                   help="approach 2: keep budgets whose loss minimum the sizes run do not bracket (biases a, b)")
    p.add_argument("--window", type=positive_int, default=5, metavar="K",
                   help="approach 2: the parabola is fitted to the K points nearest each budget's lowest loss "
                        "in log N (default 5)")
    p.add_argument("--json", action="store_true",
                   help="print the fit as one JSON object (compact: intervals, not the bootstrap draws)")
    p.add_argument("--samples", action="store_true", help="with --json: include every bootstrap draw")
    p.add_argument("--out", metavar="PATH", help="write the fit JSON here (for `scaling plan`)")
    add_exclude_arg(p)
    add_progress_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analysis.errors import InputError
    from analysis.fitjson import fit_json, write_fit
    from orchestrator.cli.common import check_out_path, fit_warnings_to_stderr, print_json

    if args.out:
        check_out_path(args.out, "--out", file=True)

    if args.n_convention == "all":
        if args.out:
            raise InputError("--out writes one fit: give --n-convention total or nonembedding with it")
        with fit_warnings_to_stderr():
            fits, oos = _fit_all_conventions(args)
        if args.json:
            print_json({"n_conventions": {conv: est.to_dict() for conv, est in fits.items()},
                        "out_of_sample": oos})
        else:
            print(format_conventions(fits, oos))
        return 0
    with fit_warnings_to_stderr():
        est = _fit(args)
    if args.out:
        write_fit(est, args.out)
    if args.json:
        print_json(fit_json(est, samples=args.samples))
    else:
        print(format_fit(est))
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _fit(args: argparse.Namespace):
    from analysis.errors import InputError
    from analysis.fit import ChinchillaFit, EnvelopeFit, IsoFLOPFit, KaplanFit
    from analysis.curves import load_curves
    from analysis.io import load_points

    ceiling = kaplan_ceiling(args)
    progress = not args.no_progress and sys.stderr.isatty()   # a bar on a terminal, none in logs
    common = dict(bootstrap=args.bootstrap, interval_level=args.level, random_state=args.seed, progress=progress)
    if args.approach == "1":
        if args.exclude:
            raise InputError("--exclude applies to points (approaches 2, 3, kaplan), not to curves")
        if args.best_of:
            raise InputError("--best-of applies to points (approaches 2, 3, kaplan), not to curves")
        if args.drop_highest:
            raise InputError("--drop-highest applies to points (approaches 2, 3, kaplan), not to curves")
        curves = load_curves(args.source, run_col=args.run_col, n_col=args.n_col, d_col=args.d_col,
                             c_col=args.c_col, loss_col=args.loss_col, n_convention=args.n_convention)
        return EnvelopeFit(**common).fit(curves)
    if args.exclude:
        pts = _points_without(args)
    else:
        pts = load_points(args.source, n_col=args.n_col, d_col=args.d_col, c_col=args.c_col, loss_col=args.loss_col,
                          budget_col=args.budget_col, u_col=args.u_col, n_convention=args.n_convention,
                          drop_highest=args.drop_highest, best_of=args.best_of, allow_mixed=args.allow_mixed)
    from analysis.io import repeats_data, warn_repeated_data

    if args.approach == "auto":
        from analysis.forecast import Forecaster

        return Forecaster(bootstrap=args.bootstrap, interval_level=args.level, random_state=args.seed,
                          vocab_size=args.vocab_size, keep_all=args.keep_all).fit(pts)
    if args.keep_all:
        raise InputError("--keep-all applies to --approach auto (the forecaster's domain rules)")
    repeats = repeats_data(pts)
    if args.approach == "data-constrained" or (args.approach == "3" and repeats):
        from analysis.fit import DataConstrainedFit

        return DataConstrainedFit(bootstrap=args.bootstrap, interval_level=args.level,
                                  random_state=args.seed).fit(pts)
    if repeats:
        warn_repeated_data(pts, f"approach {args.approach}")
    if args.approach == "2":
        return IsoFLOPFit(budget_rtol=args.budget_rtol, window=args.window, keep_unbracketed=args.keep_unbracketed,
                          **common).fit(pts)
    if args.budget_col:
        raise InputError("--budget-col applies to approach 2 only")
    if args.keep_unbracketed:
        raise InputError("--keep-unbracketed applies to approach 2 only")
    if args.approach == "kaplan":
        return KaplanFit(form=args.kaplan_form, ceiling=ceiling, **common).fit(pts)
    return ChinchillaFit(**common).fit(pts)


def _points_without(args: argparse.Namespace):
    """The points of `args.source` less the rows `--exclude` matches (`analysis.holdout`), noted in the fit."""
    from dataclasses import replace

    from analysis.backtest import load_frame
    from analysis.errors import InputError
    from analysis.holdout import holdout_mask

    columns = {"n": args.n_col, "d": args.d_col, "c": args.c_col, "loss": args.loss_col, "budget": args.budget_col,
               "u": args.u_col}
    frame, pts = load_frame(args.source, columns, n_convention=args.n_convention, best_of=args.best_of,
                            allow_mixed=args.allow_mixed)
    excluded = holdout_mask(frame, args.exclude)
    if excluded.all():
        raise InputError(f"--exclude {args.exclude!r} matches all {len(frame)} rows: nothing left to fit")
    kept = pts.subset(~excluded)
    kept = replace(kept, notes=kept.notes + (f"{int(excluded.sum())} rows excluded by {args.exclude!r}",))
    return kept.drop_highest(args.drop_highest)


def _fit_all_conventions(args: argparse.Namespace) -> dict:
    """One fit per N convention the table has columns for (`analysis.io.conventions_in`)."""
    import copy
    import warnings

    from analysis.errors import InputError
    from analysis.io import conventions_in, load_points_frame

    if args.approach == "1":
        raise InputError("--n-convention all applies to points (approaches 2, 3, kaplan), not to curves")
    if args.n_col:
        raise InputError("--n-convention all reads params and params_nonembedding; --n-col names one column: "
                         "give --n-convention total or nonembedding with it")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows, _ = load_points_frame(args.source, {"d": args.d_col, "c": args.c_col, "loss": args.loss_col},
                                    allow_mixed=args.allow_mixed)
    found = conventions_in(rows)
    if not found:
        raise InputError(f"{args.source}: no parameter column for any N convention (params, N, params_nonembedding)")
    from analysis.forecast.forecaster import cut_errors
    from analysis.io import load_points

    candidate = {"3": "chinchilla", "kaplan": "kaplan_nd"}.get(args.approach)
    fits, oos = {}, {}
    for conv in found:
        one = copy.copy(args)
        one.n_convention = conv
        fits[conv] = _fit(one)
        if candidate is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pts = load_points(args.source, d_col=args.d_col, c_col=args.c_col, loss_col=args.loss_col,
                                  n_convention=conv, drop_highest=args.drop_highest, best_of=args.best_of,
                                  allow_mixed=args.allow_mixed)
            try:
                oos[conv] = cut_errors(pts, [candidate], "size")[0]
            except InputError:
                oos[conv] = None
    return fits, oos


def format_conventions(fits: dict, oos: dict | None = None) -> str:
    """The fits under each N convention side by side: every parameter the fits share, the error
    forecasting the larger sizes from the smaller (`analysis.forecast.forecaster.cut_errors`), then each table."""
    dicts = {conv: est.to_dict() for conv, est in fits.items()}
    keys = [k for k in ("E", "A", "B", "alpha", "beta", "a", "b", "G", "alpha_N", "N_c", "alpha_D", "D_c")
            if all(isinstance(d.get(k), (int, float)) for d in dicts.values())]
    lines = [f"the same runs under each N convention ({', '.join(dicts)}):",
             f"  {'':<9}" + "".join(f"{conv:>22}" for conv in dicts)]
    for k in keys:
        lines.append(f"  {k:<9}" + "".join(f"{_g(d[k]):>22}" for d in dicts.values()))
    lines.append(f"  {'N column':<9}" + "".join(f"{d['columns'].get('n', '?'):>22}" for d in dicts.values()))
    if oos and any(oos.values()):
        cells = [f"{oos[c]['mean_abs_rel_error_pct']:.2f}%" if oos.get(c) else "-" for c in dicts]
        lines.append(f"  {'OOS err':<9}" + "".join(f"{c:>22}" for c in cells)
                     + "   (mean |error| forecasting larger sizes from smaller)")
    return "\n".join(lines + [""] + [format_fit(est) for est in fits.values()])


# ------------------------------------------------------------------------------------------------ text output

def _g(v, digits: int = 5) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _row(name: str, value, interval, unit: str) -> str:
    iv = f"[{_g(interval[0])}, {_g(interval[1])}]" if interval else ""
    return f"  {name:<9}{_g(value):>12}  {iv:<26}{unit}"


def format_fit(fit) -> str:
    """A fitted estimator (`analysis.fit`) as a readable table with units."""
    if fit.approach == "auto":
        from analysis.forecast import describe_forecast

        return describe_forecast(fit) + "\n\n" + format_fit(fit.members_[fit.chosen_])
    d = fit.to_dict()
    approach = d["approach"]
    iv = d.get("intervals") or {}
    level = d.get("interval_level")
    head_iv = f"{level:.0%} interval" if iv else ""
    lines: list[str] = []
    if approach == 3:
        lines.append("Chinchilla approach 3: L(N, D) = E + A / N^alpha + B / D^beta")
    elif approach == 2:
        lines.append("Chinchilla approach 2: IsoFLOP parabolas, N_opt = k_N C^a, D_opt = k_D C^b")
    elif approach == "data_constrained":
        lines.append("Muennighoff et al. 2023 (eqs. 5-7): L(N, D, U) = E + A / N'^alpha + B / D'^beta, "
                     "D' = U + U R*_D (1 - e^(-R_D / R*_D)), N' likewise")
    elif approach == 1:
        lines.append("Chinchilla approach 1: lower envelope of training curves, N_opt = k_N C^a, D_opt = k_D C^b")
    else:
        lines.append(f"Kaplan et al. 2020, L({d['form'].upper()})")
        if d.get("ceiling") is not None:
            lines.append(f"bounded by ln V = {d['ceiling']:.4f} nats/token: L = ln V / (1 + 1/K), K the power law "
                         "(Alabdulmohsin et al. 2022, M4); every fitted loss lies below ln V")
    lines.append(f"source: {d.get('source', '')}")
    conv = d.get("n_convention")
    n_text = f"{conv} parameters" if conv in ("total", "nonembedding") else f"parameters from column {conv!r}"
    lines.append(f"N: {n_text}; C: {d.get('flops_convention')} FLOPs; loss in nats/token")
    lines.append(f"  {'':<9}{'value':>12}  {head_iv:<26}unit")
    if approach == 3:
        units = {"E": "nats/token", "A": "nats/token x params^alpha", "B": "nats/token x tokens^beta",
                 "alpha": "-", "beta": "-", "a": "- (N_opt ~ C^a)", "b": "- (D_opt ~ C^b)",
                 "G": "params / (FLOPs/6)^a"}
        for k, unit in units.items():
            lines.append(_row(k, d[k], iv.get(k), unit))
        lines.append(f"objective: {d['objective']:.9g} (sum of Huber, delta = {d['delta']:g}, on log loss); "
                     f"{d.get('n_starts_at_optimum', 0)} of {d.get('n_starts', 0)} starts reached it")
        if fit.data_range_:
            law = fit.law_
            C = fit.data_range_["C"][1]
            import numpy as np

            with np.errstate(all="ignore"):
                N, D = law.compute_optimal(C)
            if np.isfinite(N) and np.isfinite(D) and 0 < d["a"] < 1:
                lines.append(f"compute-optimal at the largest budget C = {C:.3g} FLOPs: N = {float(N):.3g} params, "
                             f"D = {float(D):.3g} tokens ({float(D / N):.1f} tokens/param), "
                             f"L = {float(law(N, D)):.4f} nats/token")
            else:
                lines.append(f"compute-optimal: none: the fit is degenerate (a = {d['a']:.3g} is not in (0, 1): all "
                             "compute would go to N or to D); the data do not pin this law, so nothing can be "
                             "planned from it (more model sizes and token counts are needed)")
    elif approach == "data_constrained":
        units = {"E": "nats/token", "A": "nats/token x params^alpha", "B": "nats/token x tokens^beta",
                 "alpha": "-", "beta": "-", "R_N": "repetitions (excess parameters)",
                 "R_D": "repetitions (repeated tokens)", "a": "- (N_opt ~ C^a, unrepeated data)",
                 "b": "- (D_opt ~ C^b, unrepeated data)"}
        for k, unit in units.items():
            lines.append(_row(k, d[k], iv.get(k), unit))
        lines.append(f"{d['n_single_epoch']} of {d['n_points']} rows single-epoch (D <= U); up to "
                     f"{d['max_epochs']:.3g} epochs; plan with `scaling plan FIT --unique-tokens U`")
    elif approach in (1, 2):
        for flag in d.get("flags") or []:
            lines.append(f"NOT A FRONTIER: {flag}")
        for k, unit in (("a", "- (N_opt ~ C^a)"), ("b", "- (D_opt ~ C^b)")):
            lines.append(_row(k, d[k], iv.get(k), unit))
        lines.append(_row("k_N", d["N_opt_law"]["k"], iv.get("k_N"), "params / FLOPs^a"))
        lines.append(_row("k_D", d["D_opt_law"]["k"], iv.get("k_D"), "tokens / FLOPs^b"))
        if approach == 2:
            lines.append("")
            lines.append(f"  {'C (FLOPs)':>11}{'N_opt (params)':>16}{'D_opt (tokens)':>16}{'loss_opt':>10}"
                         f"{'sizes':>7}  minimum")
            for b in d["budgets"]:
                pos = b["position"] or "skipped"
                if not b.get("bracketed", b["position"] == "inside") and b.get("reason"):
                    pos += f" ({'used' if b['used'] else 'not used'}: {b['reason']})"
                lines.append(f"  {b['C']:>11.3g}{_g(b['N_opt'], 4):>16}{_g(b['D_opt'], 4):>16}"
                             f"{_g(b['loss_opt'], 4):>10}{b['n_sizes']:>7}  {pos}")
        else:
            lines.append(f"{d.get('n_runs', 0)} curves; {len(d.get('envelope', []))} envelope points in the JSON")
    else:
        units = {"alpha_N": "-", "N_c": "params", "alpha_D": "-", "D_c": "tokens", "alpha_C": "-", "C_c": "FLOPs"}
        for k, unit in units.items():
            if k in d:
                lines.append(_row(k, d[k], iv.get(k), unit))
        lines.append(f"sum of squared log residuals: {d['rss']:.6g}")
    if iv:
        n_boot = len(next(iter(d.get("bootstrap", {}).values()), []))
        lines.append(f"intervals: percentile bootstrap, {n_boot} resamples")
    return "\n".join(lines)

"""`scaling backtest SOURCE --holdout EXPR`: fit on some runs, predict the others, score the predictions.

    scaling backtest runs.csv --holdout "N >= 2e9" --json         # auto: the form chosen out of sample
    scaling backtest runs.csv --holdout "N >= 2e9" --approach 3   # Chinchilla's approach 3
    scaling backtest sweeps-out/iso1 --holdout "largest N"
    scaling backtest sweeps-out/iso1 --holdout "largest C" --exclude "N < 1e5" --drop-highest 1
    scaling backtest ladder.csv --n-col N --d-col D --loss-col c4_loss --holdout "N >= 2B" \\
        --targets targets.csv --approach 3 --weights compute
    scaling backtest runs.csv --lobo                    # leave-one-budget-out forecasts

--holdout takes a condition over the columns (N, D, C, loss and the table's own), e.g. "N >= 2e9",
"C > 1e21 and loss < 3", "D / N > 100"; or "largest N", "largest C", "largest 2 N"; or "rows 3,5,8-10" (data rows, from 1).
--targets adds runs from another table (same column names) to predict, e.g. published large models.
With auto (the default) the forecaster of `analysis.forecast` weighs its candidate laws by forecasting
the fitted rows' own held-out parts along the axis this backtest extrapolates (budgets when the held-out
runs lie beyond the fitted budgets, else sizes, else tokens per parameter), after setting aside rows no
law describes (--keep-all keeps them).
The interval is a 95% prediction interval by default: with auto, the bootstrap spread, residual scatter
and the candidates' disagreement, scaled by the factor measured on those cuts; with approach 3 or
kaplan, the bootstrap fits + the fit's residual scatter.
"""

from __future__ import annotations

import argparse
import sys

from orchestrator.cli.common import (
    add_column_args, add_command, add_exclude_arg, add_progress_arg, kaplan_ceiling, level_arg, kept_rows,
    nonneg_int, positive_float, seed_arg, vocab_size_arg,
)


def register(subparsers) -> None:
    p = add_command(subparsers, "backtest", __doc__,
                    "hold out runs, fit the rest, predict the held-out losses and score them")
    p.add_argument("source", metavar="SOURCE", help="CSV/Parquet file, sweep folder or run folder")
    cols = add_column_args(p)
    cols.add_argument("--budget-col", metavar="COL", help="--lobo: the IsoFLOP budget of each row (default: "
                                                          "a `budget` column, else rows grouped by C)")
    p.add_argument("--n-convention", choices=["total", "nonembedding"], default=None,
                   help="which parameter count N is (folders: picks the column)")
    p.add_argument("--holdout", metavar="EXPR", help='rows to hold out, e.g. "N >= 2e9", "largest N", "rows 3,5"')
    p.add_argument("--targets", metavar="TABLE", help="extra runs to predict (same columns), e.g. published models")
    add_exclude_arg(p)
    p.add_argument("--drop-highest", type=nonneg_int, default=0, metavar="K",
                   help="leave out the K highest-loss rows before holding out (as `fit --drop-highest`)")
    p.add_argument("--approach", default=None, choices=["auto", "3", "kaplan"],
                   help="law to fit: auto (default: the forecaster, analysis.forecast), 3, or kaplan; "
                        "--lobo, and --weights without --approach, use approach 3")
    p.add_argument("--vocab-size", type=vocab_size_arg, default=None, metavar="V",
                   help="with --approach kaplan: bound the law by ln V, the loss of a uniform guess over V tokens "
                        "(as `fit --vocab-size`); with auto: V of a table that does not record it")
    p.add_argument("--keep-all", action="store_true",
                   help="auto: keep every row (no domain rules; see `scaling fit --help`)")
    p.add_argument("--weights", default="none", choices=["none", "compute", "size"],
                   help="sample weights of the fit: none, compute (1 + log C/C_min), size (equal per model size)")
    p.add_argument("--interval", default="prediction", choices=["prediction", "confidence", "none"],
                   help="prediction (bootstrap + residual scatter, default), confidence (bootstrap only), none")
    p.add_argument("--level", type=level_arg, default=0.95, metavar="P", help="interval level (default 0.95)")
    p.add_argument("--bootstrap", type=nonneg_int, default=200, metavar="B", help="bootstrap resamples (default 200)")
    p.add_argument("--seed", type=seed_arg, default=0, metavar="S", help="seed of the bootstrap (default 0)")
    p.add_argument("--lobo", action="store_true", help="leave-one-budget-out forecasts instead of a holdout")
    p.add_argument("--forecast-flops", type=positive_float, default=None, metavar="C",
                   help="--lobo: the budget to forecast at (default 100x the largest in the data)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", metavar="PATH", help="write the JSON result here (for `scaling report --backtest`)")
    add_progress_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analysis.backtest import backtest, leave_one_budget_out
    from analysis.errors import InputError
    from orchestrator.cli.common import check_out_path, fit_warnings_to_stderr, print_json, write_json

    if args.out:
        check_out_path(args.out, "--out", file=True)
    columns = {"n": args.n_col, "d": args.d_col, "c": args.c_col, "loss": args.loss_col}

    table_columns = columns
    if args.budget_col:
        if not args.lobo:
            raise InputError("--budget-col applies to --lobo (the budgets it leaves out one at a time)")
        columns = {**columns, "budget": args.budget_col}
    progress = not args.no_progress and sys.stderr.isatty()   # a bar on a terminal, none in logs
    if args.approach is None:   # auto compares unweighted fits; sample weights and --lobo are approach 3's
        args.approach = "3" if args.lobo or args.weights != "none" else "auto"
    ceiling = kaplan_ceiling(args)
    fit_kwargs = None if ceiling is None or args.approach == "auto" else {"ceiling": ceiling}
    if args.keep_all and args.approach != "auto":
        raise InputError("--keep-all applies to --approach auto (the forecaster's domain rules)")
    source, columns = kept_rows(args.source, columns, args.n_convention, exclude=args.exclude,
                                drop_highest=args.drop_highest)
    with fit_warnings_to_stderr():
        if args.lobo:
            if args.holdout:
                raise InputError("give --holdout or --lobo, not both")
            folds = leave_one_budget_out(source, target_C=args.forecast_flops,
                                         approach="3" if args.approach == "auto" else args.approach,
                                         columns=columns, n_convention=args.n_convention, best_of=args.best_of,
                                         progress=progress, fit_kwargs=fit_kwargs, allow_mixed=args.allow_mixed)
            out = {"kind": "leave_one_budget_out", "approach": "3" if args.approach == "auto" else args.approach, "target_C": float(folds["target_C"].iloc[0]),
                   "folds": folds.replace({float("nan"): None}).to_dict(orient="records"),
                   "N_opt_spread": [float(folds["N_opt_rel"].min()), float(folds["N_opt_rel"].max())],
                   "units": {"N_opt": "parameters", "D_opt": "tokens", "loss_opt": "nats/token", "target_C": "FLOPs"}}
            text = _format_lobo(folds)
        else:
            if not args.holdout:
                raise InputError('give --holdout EXPR (e.g. "N >= 2e9" or "largest N") or --lobo')
            result = backtest(source, args.holdout, approach=args.approach, columns=columns, targets=args.targets,
                              target_columns=table_columns,
                              n_convention=args.n_convention, interval=args.interval, level=args.level,
                              bootstrap=args.bootstrap, weights=None if args.weights == "none" else args.weights,
                              random_state=args.seed, best_of=args.best_of, progress=progress, fit_kwargs=fit_kwargs,
                              vocab_size=args.vocab_size if args.approach == "auto" else None, keep_all=args.keep_all,
                              allow_mixed=args.allow_mixed)
            out = result.to_dict()
            text = result.summary()
    if args.out:
        write_json(out, args.out)
    if args.json:
        print_json(out)
    else:
        print(text)
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _format_lobo(folds) -> str:
    from contracts.counts import format_count

    target = float(folds["target_C"].iloc[0])
    lines = [f"leave-one-budget-out: compute-optimal forecast at {target:.3g} FLOPs, refitted without each budget",
             f"{'left out (FLOPs)':>17}{'runs':>6}{'N_opt (params)':>16}{'D_opt (tokens)':>16}{'loss_opt':>10}{'N vs all':>10}"]
    for r in folds.itertuples():
        left = "none (all)" if r.left_out_C != r.left_out_C else f"{r.left_out_C:.3g}"
        lines.append(f"{left:>17}{r.n_left_out:>6}{format_count(r.N_opt):>16}{format_count(r.D_opt):>16}"
                     f"{r.loss_opt:>10.4f}{100 * r.N_opt_rel:>+9.1f}%")
    lines.append(f"spread of N_opt across folds: {100 * folds['N_opt_rel'].min():+.1f}% .. {100 * folds['N_opt_rel'].max():+.1f}%"
                 " (loss in nats/token)")
    return "\n".join(lines)

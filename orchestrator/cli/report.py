"""`scaling report SOURCE --out report.html`: one self-contained HTML page on a scaling study.

    scaling report sweeps-out/iso1 --out report.html           # a sweep folder: points, curves, trials
    scaling report runs.csv --n-col "Model Size" --c-col "Training FLOP" --drop-highest 5 --out r.html
    scaling report sweeps-out/iso1 --fit fit.json --holdout "largest N" --lobo --out report.html
    scaling report fit.json --out report.html                  # the law, frontier, contours and plans of a fit alone
    scaling report sweeps-out/iso1 --static svg figs/ --json   # + every figure as figs/NN-name.svg; JSON of what it wrote

The page holds Chinchilla's Fig. 3 row (IsoFLOP curves | N_opt(C) | D_opt(C) for every approach that
ran, extrapolated 100x with bootstrap bands), loss-vs-tokens curves per run, loss vs FLOPs with the
approach-1 envelope, IsoFLOP parabolas (approach 2), the approach-3 law's contours with every
approach's frontier beside Chinchilla's and Kaplan's, L_opt(C) with its band, the parameter table
with intervals and the bootstrap cloud of (alpha, beta), compute-optimal plans, predicted vs observed,
residuals against C, N and D/N, and the backtest when --holdout is given. plotly's JavaScript is
inlined: the file opens offline. `--static png|svg|pdf DIR` also writes each figure as a file for a
paper (plotly's static export, kaleido driving the system's headless Chromium; `pip install
"scaling-orchestrator[static]"`).
"""

from __future__ import annotations

import argparse
import sys

from orchestrator.cli.common import (
    add_column_args, add_command, add_exclude_arg, add_progress_arg, level_arg, nonneg_int, positive_float,
    seed_arg,
)


def register(subparsers) -> None:
    p = add_command(subparsers, "report", __doc__,
                    "write a self-contained HTML report (figures, fits, plans, backtest)")
    p.add_argument("source", metavar="SOURCE", help="sweep folder, run folder, CSV/Parquet table, or a fit JSON")
    p.add_argument("--out", metavar="PATH", default="report.html", help="HTML file to write (default report.html)")
    cols = add_column_args(p)
    cols.add_argument("--budget-col", metavar="COL", help="the IsoFLOP budget of each row (approach 2)")
    p.add_argument("--n-convention", choices=["total", "nonembedding"], default=None,
                   help="which parameter count N is (folders: picks the column)")
    p.add_argument("--fit", metavar="FIT.json", help="use this approach-3 fit instead of fitting")
    p.add_argument("--drop-highest", type=nonneg_int, default=0, metavar="K", help="leave out the K highest-loss points")
    add_exclude_arg(p)
    p.add_argument("--level", type=level_arg, default=0.95, metavar="P", help="level of every interval (default 0.95)")
    p.add_argument("--bootstrap", type=nonneg_int, default=200, metavar="B", help="bootstrap resamples for intervals (default 200)")
    p.add_argument("--seed", type=seed_arg, default=0, metavar="S", help="seed of the bootstrap (default 0)")
    p.add_argument("--budget-rtol", type=positive_float, default=0.1, metavar="R",
                   help="approach 2: points whose 6ND agree within this ratio share a budget (default 0.1)")
    p.add_argument("--holdout", metavar="EXPR", help='add a backtest holding out these rows, e.g. "largest N"')
    p.add_argument("--targets", metavar="TABLE", help="extra runs for the backtest to predict")
    p.add_argument("--backtest", metavar="BT.json", help="show a backtest written by `scaling backtest --out`")
    p.add_argument("--lobo", action="store_true", help="add leave-one-budget-out forecasts (one refit per budget)")
    p.add_argument("--forecast", metavar="FIT.json",
                   help="show this forecaster fit (`scaling fit --approach auto --out`) instead of fitting one "
                        "(the page always opens with the forecast every command uses)")
    p.add_argument("--hparams", metavar="HP.json",
                   help="draw these LR/batch laws (`scaling hparams --out`); a sweep folder with an LR grid gets "
                        "its laws fitted and drawn without it")
    p.add_argument("--title", help="page title")
    p.add_argument("--static", nargs=2, metavar=("FORMAT", "DIR"),
                   help="also write each figure to DIR as png, svg or pdf (needs kaleido and Chromium)")
    p.add_argument("--json", action="store_true", help="print one JSON object listing what was written")
    add_progress_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import warnings

    from analysis.errors import InputError
    from analysis.report import STATIC_FORMATS, prepare_report, render_report
    from orchestrator.cli.common import check_out_path, print_json

    if args.out:
        check_out_path(args.out, "--out", file=True)
    if args.static and args.static[0] not in STATIC_FORMATS:
        raise InputError(f"--static: {args.static[0]!r} is not one of {', '.join(STATIC_FORMATS)}")
    columns = {"n": args.n_col, "d": args.d_col, "c": args.c_col, "loss": args.loss_col, "budget": args.budget_col}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fit warnings are shown on the page
        data = prepare_report(args.source, fit=args.fit, columns=columns, n_convention=args.n_convention,
                              drop_highest=args.drop_highest, bootstrap=args.bootstrap, random_state=args.seed,
                              budget_rtol=args.budget_rtol, holdout=args.holdout, targets=args.targets,
                              lobo=args.lobo, title=args.title, backtest_json=args.backtest, best_of=args.best_of,
                              allow_mixed=args.allow_mixed, hparams=args.hparams,
                              level=args.level, exclude=args.exclude, forecast=args.forecast,
                              progress=not args.no_progress and sys.stderr.isatty())
        path = render_report(data, args.out, static=tuple(args.static) if args.static else None)
    size = path.stat().st_size
    if args.json:
        print_json({"report": str(path), "bytes": size, "figures": data.figures,
                    "static": None if not args.static else {"format": args.static[0], "files": data.static_files},
                    "fit_warnings": len(data.warnings), "notes": data.notes})
        return 0
    print(f"wrote {path} ({size / 1e6:.1f} MB; opens offline in any browser)", file=sys.stdout)
    for f in data.static_files:
        print(f"wrote {f}")
    return 0

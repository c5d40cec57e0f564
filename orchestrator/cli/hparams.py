"""`scaling hparams TABLE`: the optimal peak LR (and batch) of every (N, D) cell, and their laws.

    scaling hparams sweeps-out/hp                          # a sweep with lr.multipliers (and batch.multipliers)
    scaling hparams sweeps-out/hp --at 1B,20B --at 7B,140B # the predicted optimum at planned runs
    scaling hparams runs.csv --lr-col peak_lr --batch-col bs_tokens --json
    scaling hparams sweeps-out/hp --out hp.json            # for `scaling plan --hparams hp.json`

Each (N, D) cell with 3 or more settings gets its optimum from a quadratic in ln(setting) through the
best setting and its neighbours, or, when the curve is flat inside DeepSeek LLM's near-optimal band
(--band, default 0.25% of the best loss), from the geometric mean of the settings in the band; the
printout says which. Diverged settings are kept as the edge of the basin, never the best. A cell whose
best setting is the smallest or largest tried (its minimum not bracketed), whose settings all diverged,
or that has fewer than 3 finite settings is named and kept out.
The law ln s* = a + b ln N + c ln D or ln s* = a + b ln C is chosen by the forecaster's rule: both
forms forecast the larger cells from the smaller ones (analysis.forecast.cuts); with fewer than 2 cuts
the C-only form (DeepSeek's) is used unless the cut rejects it. Intervals: residual bootstrap (--level).
"""

from __future__ import annotations

import argparse

from orchestrator.cli.common import add_command, level_arg, nonneg_int, positive_count, seed_arg


def at_arg(text: str) -> tuple[float, float]:
    """argparse `type=`: 'N,D' as two positive counts ('1B,20B')."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not N,D (e.g. 1B,20B)")
    try:
        return positive_count(parts[0].strip()), positive_count(parts[1].strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def band_arg(text: str) -> float:
    """argparse `type=`: the near-optimal band, a fraction in [0, 1)."""
    from orchestrator.cli.common import finite_float

    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction in [0, 1) (0.0025 is 0.25%)")
    return value


def register(subparsers) -> None:
    p = add_command(subparsers, "hparams", __doc__,
                    "fit learning-rate and batch-size laws from a sweep's LR (and batch) grid")
    p.add_argument("source", metavar="TABLE", help="sweep folder, run folder, or CSV/Parquet file")
    cols = p.add_argument_group("columns (default: params, tokens, flops_6nd, loss, lr, batch_tokens)")
    cols.add_argument("--n-col", metavar="COL", help="model size N (parameters)")
    cols.add_argument("--d-col", metavar="COL", help="training tokens D")
    cols.add_argument("--c-col", metavar="COL", help="training FLOPs C (D = C / 6N when there is no --d-col)")
    cols.add_argument("--loss-col", metavar="COL", help="loss, nats/token (non-finite: a diverged setting)")
    cols.add_argument("--lr-col", metavar="COL", default="lr", help="peak learning rate (default lr)")
    cols.add_argument("--batch-col", metavar="COL", default="batch_tokens",
                      help="batch in tokens per step (default batch_tokens; a law only when it varies)")
    p.add_argument("--n-convention", choices=["total", "nonembedding"], default=None,
                   help="which parameter count N is (folders: picks the column)")
    p.add_argument("--at", type=at_arg, action="append", default=[], metavar="N,D",
                   help="predict the optimal LR (and batch) of a run of N parameters and D tokens (repeatable)")
    p.add_argument("--form", choices=["auto", "N,D", "C"], default="auto",
                   help="the law's form: auto (default: chosen on cuts), N,D or C")
    p.add_argument("--band", type=band_arg, default=0.0025, metavar="F",
                   help="near-optimal band, a fraction of the best loss (default 0.0025, DeepSeek LLM's 0.25%%)")
    p.add_argument("--level", type=level_arg, default=0.95, metavar="P", help="interval level (default 0.95)")
    p.add_argument("--bootstrap", type=nonneg_int, default=1000, metavar="B",
                   help="residual-bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=seed_arg, default=0, metavar="S", help="seed of the bootstrap (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", metavar="FILE", help="write the JSON with its bootstrap draws (for plan --hparams)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analysis.hparams import fit_hparams
    from orchestrator.cli.common import check_out_path, fit_warnings_to_stderr, print_json, write_json

    if args.out:
        check_out_path(args.out, "--out", file=True)
    columns = {"n": args.n_col, "d": args.d_col, "c": args.c_col, "loss": args.loss_col}
    with fit_warnings_to_stderr():
        result = fit_hparams(args.source, columns, lr_col=args.lr_col, batch_col=args.batch_col,
                             n_convention=args.n_convention, band=args.band, form=args.form,
                             bootstrap=args.bootstrap, level=args.level, random_state=args.seed)
    result.at(args.at)
    if args.out:
        write_json(result.to_dict(draws=True), args.out)
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
        if args.out:
            print(f"wrote {args.out}")
    return 0

"""`scaling compare BASE VARIANT`: the effective-compute multiplier of a change, its interval and its trend.

    scaling compare sweeps-out/learned sweeps-out/rotary                 # two sweep folders
    scaling compare base.csv variant.csv --n-col params --c-col flops --to 1e21 --json
    scaling compare sweeps-out/a sweeps-out/b --out compare.html --bootstrap 400 --seed 1
    scaling compare fit-a.json fit-b.json          # forecaster fits (`scaling fit --approach auto --out`)

Both are fitted by the forecaster (`analysis.forecast`, along the budget axis) with one form for both
unless the data reject it (then each keeps its own, and it is said). k(C) is the compute multiplier at
which the variant's compute-optimal loss at C equals the base's at k C (L_B,opt(C) = L_A,opt(k C)), at
every budget of the two sweeps and at --to (default 100x the largest), with a bootstrap interval that
resamples the two sweeps independently, widened where the forecasters' calibrated loss intervals are
wider; the trend d log k / d log C over the budgets says whether the gain grows or shrinks with scale.
BASE and VARIANT are sweep folders, run folders, CSV/Parquet tables (the column flags apply to both) or
forecaster fit JSONs. Rows whose eval data or tokenizer hashes differ are refused (--allow-mixed).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from orchestrator.cli.common import (
    add_column_args, add_command, count_arg, level_arg, nonneg_int, seed_arg,
)


def register(subparsers) -> None:
    p = add_command(subparsers, "compare", __doc__,
                    "the effective-compute multiplier of a change (two sweeps), its interval and its trend")
    p.add_argument("base", metavar="BASE", help="the baseline: sweep folder, run folder, table or forecaster fit JSON")
    p.add_argument("variant", metavar="VARIANT", help="the variant, the same kinds")
    cols = add_column_args(p)
    cols.add_argument("--budget-col", metavar="COL", help="the IsoFLOP budget of each row (default: budget when present)")
    p.add_argument("--n-convention", choices=["total", "nonembedding"], default=None,
                   help="which parameter count N is, for both (C = 6 N D with it)")
    p.add_argument("--to", type=count_arg, default=None, metavar="C",
                   help="also give k at this budget in FLOPs (default 100x the largest budget of the two)")
    p.add_argument("--bootstrap", type=nonneg_int, default=200, metavar="B",
                   help="bootstrap resamples of each sweep (default 200; 0: no interval)")
    p.add_argument("--seed", type=seed_arg, default=0, metavar="S",
                   help="seed of the base's bootstrap; the variant's is S + 1 (default 0)")
    p.add_argument("--level", type=level_arg, default=0.95, metavar="P", help="interval level (default 0.95)")
    p.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    p.add_argument("--out", metavar="PATH", help="also write an HTML report (both frontiers, k(C), the IsoFLOP families)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analysis.compare import Comparison
    from orchestrator.cli.common import check_out_path, fit_warnings_to_stderr, print_json

    if args.out:
        check_out_path(args.out, "--out", file=True)
    with fit_warnings_to_stderr():
        base, variant = (_side(args, s) for s in (args.base, args.variant))
        cmp = Comparison(to=args.to, bootstrap=args.bootstrap, interval_level=args.level,
                         random_state=args.seed, allow_mixed=args.allow_mixed).fit(base, variant)
    d = cmp.to_dict()
    if args.out:
        from analysis.report_compare import write_compare_report

        write_compare_report(cmp, args.out)
        d["report"] = str(args.out)
    if args.json:
        print_json(d)
    else:
        print(format_comparison(d))
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _side(args: argparse.Namespace, source: str):
    """A forecaster fit JSON as its `Forecaster`, anything else as the points `scaling fit` reads."""
    from analysis.errors import InputError
    from analysis.io import load_points

    if Path(source).suffix.lower() == ".json" and Path(source).is_file():
        from analysis.fitjson import read_fit

        est = read_fit(source)
        if est.approach != "auto":
            raise InputError(f"{source}: compare needs a forecaster fit (`scaling fit --approach auto --out`), "
                             f"not approach {est.approach}")
        return est
    return load_points(source, n_col=args.n_col, d_col=args.d_col, c_col=args.c_col, loss_col=args.loss_col,
                       budget_col=args.budget_col, n_convention=args.n_convention, best_of=args.best_of,
                       allow_mixed=args.allow_mixed)


def format_comparison(d: dict) -> str:
    """The comparison as text: the law, k per budget with its interval, the trend, the sentence."""
    b, v = d["base"], d["variant"]
    law = d["law"]
    lines = [f"base:    {b['source']}; forecaster: " + ", ".join(f"{n} {w:.0%}" for n, w in b["weights"].items()),
             f"variant: {v['source']}; forecaster: " + ", ".join(f"{n} {w:.0%}" for n, w in v["weights"].items()),
             f"law: {law['reason']}",
             f"k(C): L_variant,opt(C) = L_base,opt(k C); C = {law['flops_convention']} FLOPs with N "
             f"{law['n_convention']} parameters; {d['interval_level']:.0%} intervals from {d['n_bootstrap']} "
             "paired bootstrap draws (each sweep resampled on its own)", ""]
    lines.append(f"  {'C (FLOPs)':>11}  {'L_base,opt':>10}  {'L_var,opt':>10}  {'k':>8}  {'interval':<19} resolved")
    for r in d["multiplier"]:
        iv = r["interval"]
        ivs = f"{_g(iv[0])} - {_g(iv[1])}" if iv else "-"
        tag = "yes" if r["resolved"] else "no"
        if r["kind"] != "budget":
            tag += f" ({r['kind']})"
        lines.append(f"  {r['C']:>11.3g}  {_g(r['loss_base'], '.4f'):>10}  {_g(r['loss_variant'], '.4f'):>10}  "
                     f"{_g(r['k']):>8}  {ivs:<19} {tag}")
    t = d["trend"]
    ti = t["interval"]
    lines += ["", f"trend: d log10 k / d log10 C = {_g(t['per_decade'], '+.3f')} (interval "
              + (f"{ti[0]:+.3f} to {ti[1]:+.3f}" if ti else "-") + f") over {t['over'][0]:.3g}..{t['over'][1]:.3g} FLOPs",
              "", d["sentence"]]
    return "\n".join(lines)


def _g(x, fmt: str = ".3g") -> str:
    if x is None:
        return "inf"
    return format(x, fmt) if math.isfinite(x) else ("inf" if x > 0 else "-inf")


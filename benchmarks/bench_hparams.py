"""Accuracy of `scaling hparams` on a synthetic LR sweep with a known optimum eta*(N, D) = K N^B D^C.

Losses: a Chinchilla law x (1 + 0.02 (ln eta - ln eta*)^2) x lognormal noise (0.5%), 5 sizes 1M-100M x
3 tokens-per-parameter ratios (5, 20, 80) x 7 LR multipliers (factors of 2) around a rule that is wrong
in N and blind to D, plus one cell whose grid sits 30x above its optimum (its best LR at the edge).

Prints, per seed: the form chosen, the exponents b, c and their errors, the prediction error at 100x the
compute of the largest cells (N x10 and D x10 at each ratio), whether the 95% interval covers the truth,
and whether the edge cell was named and kept out. Then coverage over --coverage-seeds more seeds.

    python benchmarks/bench_hparams.py                      # 5 seeds, the issue's targets
    python benchmarks/bench_hparams.py --coverage-seeds 200 # interval coverage at 100x
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "analysis"))

from analysis.hparams import fit_hparams  # noqa: E402
from synthetic_hparams import RATIOS, B, C, SIZES, hparam_rows, true_lr  # noqa: E402

TARGETS = [(10 * SIZES[-1], 10 * r * SIZES[-1]) for r in RATIOS]


def one(seed: int, noise: float, bootstrap: int) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_hparams(hparam_rows(seed, noise), bootstrap=bootstrap, random_state=seed)
    law = res.lr.law
    errs, covered = [], []
    for N, D in TARGETS:
        pred, truth = float(law.predict(N, D)[0]), float(true_lr(N, D))
        lo, hi = (float(v[0]) for v in law.predict_interval(N, D))
        errs.append(pred / truth - 1)
        covered.append(lo <= truth <= hi)
    edge = [c for c in res.lr.cells if not c.kept]
    named = any("N=3e+06, D=3e+08" in str(w.message) for w in caught)
    return {"form": law.form_, "b": law.params_.get("b"), "c": law.params_.get("c"), "errs": errs,
            "covered": covered, "edge_out": len(edge) == 1 and edge[0].N == 3e6 and named,
            "quadratic": sum(c.method == "quadratic" for c in res.lr.cells)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--noise", type=float, default=0.005)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--coverage-seeds", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(f"true law: lr* = K N^{B} D^{C}; targets at 100x the largest cells' compute: "
          + ", ".join(f"N {N:.0e} D {D:.0e}" for N, D in TARGETS))
    print(f"{'seed':>4} {'form':>5} {'b':>8} {'|b-B|':>6} {'c':>8} {'|c-C|':>6} {'max |pred err| at 100x':>23} "
          f"{'95% covers':>10} {'edge cell out':>13}")
    worst_exp, worst_pred, ok = 0.0, 0.0, True
    for seed in range(args.seeds):
        r = one(seed, args.noise, args.bootstrap)
        db = abs(r["b"] - B)
        dc = abs(r["c"] - C) if r["c"] is not None else float("nan")
        err = max(abs(e) for e in r["errs"])
        worst_exp, worst_pred = max(worst_exp, db, dc if r["c"] is not None else 1.0), max(worst_pred, err)
        ok &= r["form"] == "N,D" and db <= 0.05 and dc <= 0.05 and err <= 0.10 and r["edge_out"]
        print(f"{seed:>4} {r['form']:>5} {r['b']:>8.4f} {db:>6.3f} {r['c'] if r['c'] is not None else float('nan'):>8.4f} "
              f"{dc:>6.3f} {100 * err:>22.1f}% {sum(r['covered']):>8}/3 {str(r['edge_out']):>13}")
    print(f"worst exponent error {worst_exp:.3f} (target 0.05), worst 100x prediction error {100 * worst_pred:.1f}% "
          f"(target 10%): {'PASS' if ok else 'FAIL'}")
    if args.coverage_seeds:
        cov = [one(1000 + s, args.noise, args.bootstrap)["covered"] for s in range(args.coverage_seeds)]
        print(f"95% interval coverage at 100x over {args.coverage_seeds} seeds: "
              f"{100 * np.mean(cov):.1f}% ({int(np.sum(cov))}/{np.size(cov)})")
    print(f"{time.perf_counter() - t0:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

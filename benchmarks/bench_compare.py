"""`scaling compare` against a known answer: the coverage of k's interval and the sign of its trend.

B's losses are A's law at (m N, m D), so B's frontier is A's at m^2 C and k = m^2 at every budget exactly
(L_B,opt(C) = min_{6ND=C} L_A(mN, mD) = L_A,opt(m^2 C)). For m in {1.2, 1.5, 2} and 5 seeds each (both
sweeps drawn with their own noise), the benchmark counts how often m^2 lies inside k's interval at each
budget and at the extrapolated budget, and how often the trend's interval contains 0. A B whose gain
shrinks with scale (m(N) = m0 (N / N_ref)^-0.15, so k falls with C) must get the trend's sign right.

    python benchmarks/bench_compare.py                  # 15 constant-gain cases + 5 shrinking-gain cases
    python benchmarks/bench_compare.py --seeds 2 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "analysis"))

from analysis.compare import Comparison, quantile_interval  # noqa: E402
from analysis.io import load_points_frame  # noqa: E402
from synthetic_sweep import SMALL_GRID, TRUE_LAW, isoflop_table  # noqa: E402

BUDGETS = (1e16, 3e16, 1e17, 3e17, 1e18)
NOISE = 0.01          # lognormal scatter of each run's loss (1%: a seed-to-seed spread of small runs)


def scaled(law, m):
    """L_B(N, D) = L_A(m N, m D): m a number, or a function of N."""
    return lambda N, D: law((m(N) if callable(m) else m) * N, (m(N) if callable(m) else m) * D)


def shrinking(m0: float = 2.0, p: float = 0.15, N_ref: float = 1e7):
    return lambda N: m0 * (np.asarray(N, dtype=float) / N_ref) ** -p


def case(m, seed: int, bootstrap: int) -> Comparison:
    a = isoflop_table(TRUE_LAW, BUDGETS, noise=NOISE, seed=2 * seed)
    b = isoflop_table(scaled(TRUE_LAW, m), BUDGETS, noise=NOISE, seed=2 * seed + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pa, pb = load_points_frame(a)[1], load_points_frame(b)[1]
        return Comparison(bootstrap=bootstrap, random_state=seed, fit_kwargs={"init_grid": SMALL_GRID}).fit(pa, pb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    for m in (1.2, 1.5, 2.0):
        for seed in range(args.seeds):
            c = case(m, seed, args.bootstrap)
            truth = m * m
            raw = [quantile_interval(col, c.interval_level) for col in c.raw_log10_k_draws_.T]   # percentile, unwidened
            for C, k, iv, kind, rv in zip(c.C_, c.k_, c.k_interval_, c.kind_, raw):
                rows.append({"m": m, "seed": seed, "C": float(C), "kind": kind, "k": float(k), "truth": truth,
                             "interval": iv, "inside": bool(iv and iv[0] <= truth <= iv[1]),
                             "inside_unwidened": bool(rv and 10 ** rv[0] <= truth <= 10 ** rv[1]),
                             "trend": c.trend_, "trend_interval": c.trend_interval_,
                             "trend_has_0": bool(c.trend_interval_ and c.trend_interval_[0] <= 0 <= c.trend_interval_[1])})
    shrink = []
    for seed in range(args.seeds):
        c = case(shrinking(), seed, args.bootstrap)
        shrink.append({"seed": seed, "trend": c.trend_, "interval": c.trend_interval_,
                       "k": [float(k) for k in c.k_]})
    budget_rows = [r for r in rows if r["kind"] == "budget"]
    extra_rows = [r for r in rows if r["kind"] == "extrapolated"]
    cases = {(r["m"], r["seed"]): r for r in rows}
    out = {
        "noise": NOISE, "budgets": list(BUDGETS), "bootstrap": args.bootstrap,
        "coverage_at_budgets": float(np.mean([r["inside"] for r in budget_rows])),
        "n_at_budgets": len(budget_rows),
        "coverage_at_budgets_unwidened": float(np.mean([r["inside_unwidened"] for r in budget_rows])),
        "coverage_extrapolated_unwidened": float(np.mean([r["inside_unwidened"] for r in extra_rows])),
        "coverage_extrapolated_100x": float(np.mean([r["inside"] for r in extra_rows])),
        "cases_all_budgets_inside": float(np.mean([all(r["inside"] for r in budget_rows if (r["m"], r["seed"]) == key)
                                                    for key in cases])),
        "trend_interval_contains_0": float(np.mean([r["trend_has_0"] for r in cases.values()])),
        "median_abs_log_error_k": float(np.median([abs(np.log(r["k"] / r["truth"])) for r in budget_rows])),
        "shrinking_trend_negative": float(np.mean([s["trend"] < 0 for s in shrink])),
        "shrinking_trend_interval_below_0": float(np.mean([bool(s["interval"]) and s["interval"][1] < 0 for s in shrink])),
        "shrinking": shrink, "wall_s": time.perf_counter() - t0,
    }
    if args.json:
        print(json.dumps(out, indent=1))
        return
    for m in (1.2, 1.5, 2.0):
        rs = [r for r in budget_rows if r["m"] == m]
        print(f"m = {m}: k = m^2 = {m * m:.2f}; inside at budgets {sum(r['inside'] for r in rs)}/{len(rs)}; "
              f"median k {np.median([r['k'] for r in rs]):.3f}")
    print(f"k inside its 95% interval at the budgets: {out['coverage_at_budgets']:.1%} of {out['n_at_budgets']} "
          f"(m, seed, C); at 100x the largest budget: {out['coverage_extrapolated_100x']:.1%}")
    print(f"the parameter bootstrap alone (unwidened): {out['coverage_at_budgets_unwidened']:.1%} at the budgets, "
          f"{out['coverage_extrapolated_unwidened']:.1%} at 100x")
    print(f"trend interval contains 0: {out['trend_interval_contains_0']:.1%} of {len(cases)} cases")
    print(f"shrinking gain: trend < 0 in {out['shrinking_trend_negative']:.0%}, interval below 0 in "
          f"{out['shrinking_trend_interval_below_0']:.0%} of {len(shrink)} cases "
          f"(trends {', '.join(format(s['trend'], '+.3f') for s in shrink)})")
    print(f"wall {out['wall_s']:.0f} s")


if __name__ == "__main__":
    main()

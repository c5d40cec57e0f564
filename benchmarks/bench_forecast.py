"""The forecaster on synthetic tables drawn from each candidate law: does it pick the true form, do its
95% intervals cover the held-out rows, and does 5% of damaged rows move it?

    python benchmarks/bench_forecast.py              # 5 seeds per case (about 10 minutes on 2 cores)
    python benchmarks/bench_forecast.py --seeds 2    # quicker

Cases: the true law is approach 3 (Hoffmann et al. 2022 eq. 2), Kaplan's L(N, D) (Kaplan et al. 2020
eq. 1.5) or Kaplan's law bounded by ln V (V = 512); layouts IsoFLOP (6 budgets x 6 sizes, the largest
budget held out) and grid (6 sizes x 5 tokens per parameter, the largest size held out); lognormal
noise 0.5% and 2%. For each: how often the heaviest member is the true form, and the share of held-out
rows inside the 95% interval. The reference in the same run is approach 3 alone with its bootstrap +
residual prediction interval (`analysis.backtest`, approach 3), on the same rows.

Then the damaged table: an IsoFLOP table of approach 3 with 2 of 40 rows (5%) diverged (loss above
ln V) or overfitting (50% above a smaller run): the forecast at 10x the largest budget with and without
them, and whether the set-aside rows are exactly the damaged ones.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "analysis"))

from analysis.backtest import backtest  # noqa: E402
from analysis.laws import ChinchillaLaw, KaplanLawND  # noqa: E402
from synthetic_sweep import isoflop_table  # noqa: E402

LAWS = {"chinchilla": ChinchillaLaw(E=1.8, A=400.0, B=1500.0, alpha=0.34, beta=0.36),
        "kaplan_nd": KaplanLawND(alpha_N=0.076, alpha_D=0.103, N_c=6.4e13, D_c=1.8e13),
        "kaplan_bounded": KaplanLawND(alpha_N=0.3, alpha_D=0.35, N_c=3e5, D_c=2e6, ceiling=math.log(512))}
BUDGETS = {"chinchilla": [1e18, 3e18, 1e19, 3e19, 1e20, 3e20], "kaplan_nd": [1e18, 3e18, 1e19, 3e19, 1e20, 3e20],
           "kaplan_bounded": [1e11, 3e11, 1e12, 3e12, 1e13, 3e13]}
SIZES = {"chinchilla": np.geomspace(2e7, 2e9, 6), "kaplan_nd": np.geomspace(2e7, 2e9, 6),
         "kaplan_bounded": np.geomspace(2e4, 2e6, 6)}


def grid(law, sizes, seed: int, noise: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N = np.repeat(sizes, 5)
    D = N * np.tile(np.geomspace(5, 80, 5), len(sizes))
    return pd.DataFrame({"params": N, "tokens": D, "loss": law(N, D) * np.exp(rng.normal(0, noise, N.size))})


def table(name: str, layout: str, seed: int, noise: float) -> tuple[pd.DataFrame, str]:
    law = LAWS[name]
    if layout == "isoflop":
        df = isoflop_table(law, BUDGETS[name], sizes=6, noise=noise, seed=seed).drop(columns="budget")
        return df, "largest C"
    return grid(law, SIZES[name], seed, noise), "largest N"


def run_cases(seeds: int) -> pd.DataFrame:
    rows = []
    for name in LAWS:
        for layout in ("isoflop", "grid"):
            for noise in (0.005, 0.02):
                t0 = time.monotonic()
                picks, inside, n, inside3, width, width3 = 0, 0, 0, 0, [], []
                for seed in range(seeds):
                    df, holdout = table(name, layout, seed, noise)
                    df["vocab_size"] = 512 if name == "kaplan_bounded" else np.nan
                    if name != "kaplan_bounded":
                        df = df.drop(columns="vocab_size")
                    bt = backtest(df, holdout, bootstrap=50, random_state=seed)
                    picks += bt.fit["chosen"] == name
                    inside += int(bt.rows["in_interval"].astype(bool).sum())
                    n += len(bt.rows)
                    width.extend(50 * (bt.rows["upper"] - bt.rows["lower"]) / bt.rows["predicted"])
                    ref = backtest(df, holdout, approach="3", bootstrap=50, random_state=seed)
                    inside3 += int(ref.rows["in_interval"].astype(bool).sum())
                    width3.extend(50 * (ref.rows["upper"] - ref.rows["lower"]) / ref.rows["predicted"])
                rows.append({"true law": name, "layout": layout, "noise": noise, "picked": f"{picks}/{seeds}",
                             "coverage": inside / n, "half-width %": float(np.mean(width)),
                             "approach 3 coverage": inside3 / n, "approach 3 half-width %": float(np.mean(width3)),
                             "s": round(time.monotonic() - t0, 1)})
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def damaged(seed: int = 3) -> dict:
    from analysis.forecast import Forecaster
    from analysis.io import points_from_frame

    df = isoflop_table(LAWS["chinchilla"], BUDGETS["chinchilla"][:5], sizes=8, noise=0.004, seed=seed)
    cols = {"n": "params", "d": "tokens", "loss": "loss"}
    bad = df.copy()
    bad.loc[5, "loss"] = 6.3
    bad.loc[20, "loss"] *= 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = Forecaster(bootstrap=0, vocab_size=512).fit(points_from_frame(df, cols))
        dirty = Forecaster(bootstrap=0, vocab_size=512).fit(points_from_frame(bad, cols))
        kept = Forecaster(bootstrap=0, vocab_size=512, keep_all=True).fit(points_from_frame(bad, cols))
    N, D = 3e9, 6e10
    c, d, k = (float(f.predict(N, D)[0]) for f in (clean, dirty, kept))
    return {"clean": c, "damaged, rules on": d, "damaged, --keep-all": k, "shift % (rules on)": 100 * (d / c - 1),
            "shift % (--keep-all)": 100 * (k / c - 1),
            "set aside": sorted(r["row"] for r in dirty.domain_["set_aside"]), "damaged rows": [5, 20]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    res = run_cases(args.seeds)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3g}".format):
        print(res.to_string(index=False))
    print(damaged())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The forecaster against finished `scaling demo` folders: each candidate's forecast of the held-out run,
the forecaster's weights, its forecast and interval, and the error.

    python benchmarks/bench_demo_laws.py demo-out [more demo folders ...]

For every folder (a `scaling demo --out` folder: sweep/ with its points and trials, heldout/ with the run
trained 10x beyond the sweep) it fits the forecaster on the sweep exactly as `scaling plan SWEEP --budget`
does (`analysis.backtest.fit_approach`, axis budget, 200 resamples, seed 0) and predicts the held-out run
at its own N and D. It also prints the loss of the plan at the held-out budget (the demo's headline) when
the run was trained on that plan. The reference in the same run is every single candidate law fitted on
all points: `best single` is the candidate that happened to forecast best (known only after the fact),
so `|forecast error| / |best single error|` near 1 means the forecaster lost little to hindsight.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.backtest import fit_approach  # noqa: E402
from analysis.forecast import DEFAULT_BOOTSTRAP  # noqa: E402
from analysis.io import load_points  # noqa: E402


def one_folder(folder: Path) -> dict:
    sweep = folder / "sweep"
    points = load_points(sweep)
    held = load_points(folder / "heldout")   # the run folder's finished point
    N, D, actual = float(held.N[-1]), float(held.D[-1]), float(held.loss[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = fit_approach(points, "auto", bootstrap=DEFAULT_BOOTSTRAP, random_state=0, axis="budget").estimator
    mid, lo, hi = (float(np.asarray(x)[0]) for x in fc.predict([N], [D], interval=0.95))
    singles = {k: 100 * (float(np.asarray(est.predict([N], [D]))[0]) / actual - 1)
               for k, est in fc.candidates_.items() if k != "chinchilla_nonembedding"}
    best = min(singles, key=lambda k: abs(singles[k]))
    err = 100 * (mid / actual - 1)
    return {"folder": folder.name, "budgets": len(np.unique(np.round(np.log10(points.C), 1))),
            "heldout_C": 6 * N * D, "actual": actual,
            "weights": ", ".join(f"{k} {100 * w:.0f}%" for k, w in fc.weights_.items()),
            **{f"err_{k}": v for k, v in singles.items()},
            "forecast": mid, "lo": lo, "hi": hi, "err": err, "inside": lo <= actual <= hi,
            "half_width_pct": 50 * (hi - lo) / mid, "s": fc.interval_scale_,
            "bend": bool(fc.bend_ and fc.bend_.get("steepens_beyond_law")),
            "best_single": best, "vs_best": abs(err) / max(abs(singles[best]), 1e-9)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path, help="scaling demo --out folders")
    args = p.parse_args()
    table = pd.DataFrame([one_folder(f) for f in args.folders])
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))
    errs = [c for c in table.columns if c.startswith("err_")]
    print(f"mean |error|: forecaster {table['err'].abs().mean():.2f}% ({int(table['inside'].sum())}/{len(table)} "
          "inside the 95% interval); " + ", ".join(f"{c[4:]} {table[c].abs().mean():.2f}%" for c in errs))


if __name__ == "__main__":
    main()

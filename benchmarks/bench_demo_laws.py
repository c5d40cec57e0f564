"""Each demo law's forecast of the held-out run, over finished `scaling demo` folders.

    python benchmarks/bench_demo_laws.py demo-out [more demo folders ...]

For every folder (a `scaling demo --out` folder: sweep/ with its spec and points, heldout/ with the run
trained 10x beyond the sweep), fits approach 3, Kaplan's L(N, D) and Kaplan's law bounded by ln V on all
the sweep's points, predicts the held-out run, and prints each law's error beside the law that
`analysis.selection.select_law` chooses from the sweep alone. The reference is Kaplan's unbounded law
(the demo's forecasting law before the bounded one existed): the last column is |bounded error| /
|Kaplan error|, below 1 where bounding helped.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.fit import ChinchillaFit, KaplanFit  # noqa: E402
from analysis.io import load_points  # noqa: E402
from analysis.kaplan import ceiling_for_vocab  # noqa: E402
from analysis.selection import LAW_NAMES, select_law  # noqa: E402
from sweeps.spec import load_spec  # noqa: E402


def one_folder(folder: Path) -> dict:
    sweep = folder / "sweep"
    ceiling = ceiling_for_vocab(load_spec(sweep / "spec.yaml").vocab_size)
    points = load_points(sweep, budget_col="budget")
    budgets = sorted(float(b) for b in np.unique(points.budget))
    held = load_points(folder / "heldout")   # the run folder's finished point
    run = {"params": float(held.N[-1]), "tokens": float(held.D[-1]), "loss": float(held.loss[-1])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = select_law(sweep, budgets, ceiling=ceiling)
        fits = {"chinchilla": ChinchillaFit().fit(points), "kaplan": KaplanFit(form="nd").fit(points),
                "kaplan_bounded": KaplanFit(form="nd", ceiling=ceiling).fit(points)}
    errors = {k: 100 * (float(f.predict([run["params"]], [run["tokens"]])[0]) / run["loss"] - 1)
              for k, f in fits.items()}
    return {"folder": str(folder), "budgets": f"{budgets[0]:.2g}..{budgets[-1]:.2g} ({len(budgets)})",
            "heldout_C": 6 * run["params"] * run["tokens"], "actual": run["loss"],
            "chosen": LAW_NAMES[sel["law"]], **{f"err_{k}": v for k, v in errors.items()},
            "chosen_err": errors[LAW_NAMES[sel["law"]]],
            "bounded_over_kaplan": abs(errors["kaplan_bounded"]) / abs(errors["kaplan"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path, help="scaling demo --out folders")
    args = p.parse_args()
    rows = [one_folder(f) for f in args.folders]
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3g}".format):
        print(table.to_string(index=False))
    print(f"mean |error|: chosen {table['chosen_err'].abs().mean():.2f}%, kaplan {table['err_kaplan'].abs().mean():.2f}%, "
          f"kaplan_bounded {table['err_kaplan_bounded'].abs().mean():.2f}%, "
          f"chinchilla {table['err_chinchilla'].abs().mean():.2f}%")


if __name__ == "__main__":
    main()

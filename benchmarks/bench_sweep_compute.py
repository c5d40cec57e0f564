"""Compute of the `isoflop-branches` design (one WSD run per size, a cool-down branch per budget) against
the same IsoFLOP points trained one run each (cosine, as `design: isoflop` trains them), in one run.

    python benchmarks/bench_sweep_compute.py                 7 budgets (6 per decade) x 5 sizes (~10 min on 2 idle cores)
    python benchmarks/bench_sweep_compute.py --smoke-test    3 budgets, short runs (checks it runs)
    python benchmarks/bench_sweep_compute.py --json out.json

Both designs come from one spec (`sweeps.design.expand` of `design: isoflop-branches`): the branch design
trains its trials; the reference trains every planned point (N, D) as its own `scaling.train.train` run
with a cosine schedule to 10% over D (Hoffmann et al. 2022), the same model, LR, batch, warmup rule and
data. Runs go two at a time in a plain process pool (spawn; one thread each) for both designs.

Printed: FLOPs (6ND, cool-downs included) and wall time of each design and their ratio (target: the
branch design >= 50% fewer FLOPs); then per design the approach-2 fit (`analysis.frontier.IsoFLOPFit`,
budgets from the points' budget column): the exponent a of N_opt = k C^a and the frontier loss (the
parabola's minimum) at the largest budget, each with a 90% interval from refitting on rows resampled
within each budget (`--boot` draws), and whether each design's value lies inside the other's interval;
and the cool-down check: each branch point's loss minus the dedicated cosine run's at the same (N, D).

The machine is shared by other work in development: compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPEC = """
name: bench-branches
vocab_size: 512
context: 64
data: {max_bytes: 3000000}
model: {tie_embeddings: false, positions: rotary}
design: isoflop-branches
budgets: [2e10, 2.94e10, 4.31e10, 6.32e10, 9.28e10, 1.36e11, 2e11]   # 6 per decade
isoflop: {sizes_per_budget: 5, spread: 2.5, tokens_per_param: 25}
min_steps: 20
batch: {rule: fixed, tokens: 2048}
lr: {rule: default}
schedule: {kind: wsd, decay_fraction: 0.2, min_lr_ratio: 0.1}
train: {eval_tokens: 16384}
eval_interval: 1000000          # evaluate only at the end of each run and of each cool-down branch
resources: {cpus: 1}
"""
SMOKE = ["budgets=[1e10,1.5e10,2.2e10]", "isoflop.tokens_per_param=10", "batch.tokens=256", "min_steps=20",
         "train.eval_tokens=2048"]


def _train(cfg_json: str, out: str) -> dict:
    """One run in a worker process: (run_id, wall seconds, points)."""
    import torch

    from scaling.config import RunConfig
    from scaling.data import prepare_data
    from scaling.train import train

    torch.set_num_threads(1)
    cfg = RunConfig.model_validate_json(cfg_json)
    data = prepare_data(cfg.data, progress=False)
    t0 = time.perf_counter()
    result = train(cfg, out, data=data, resume=False, progress=False)
    return {"run_id": cfg.run_id, "wall_s": time.perf_counter() - t0, "points": result.points,
            "status": result.trial["status"]}


def _run_all(jobs: list[tuple[str, str]], workers: int) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        results = list(pool.map(_train, *zip(*jobs)))
    return time.perf_counter() - t0, results


def _one_run_per_point(trial) -> list:
    """The trial's planned points as separate cosine runs (what `design: isoflop` trains)."""
    from scaling.config import RunConfig

    runs = []
    for p in trial.planned_points:
        d = trial.config.model_dump(mode="json")
        d["train"].update(tokens=p["tokens"], schedule="cosine", cooldowns=[])
        d["run_id"] = f"{trial.run_id}-D{p['tokens']}"
        runs.append((RunConfig.model_validate(d), p["budget"]))
    return runs


def _fit(points: pd.DataFrame, boot: int, seed: int = 0) -> dict:
    """Approach 2 on (params, tokens, loss, budget): a, frontier loss at the largest budget, 90% intervals."""
    from analysis.frontier import IsoFLOPFit

    def one(df: pd.DataFrame) -> tuple[float, float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = IsoFLOPFit().fit(df["params"].to_numpy(float), df["tokens"].to_numpy(float),
                                 df["loss"].to_numpy(float), budget=df["budget"].to_numpy(float))
        top = max((b for b in f.budgets_ if b.get("used", True)), key=lambda b: b["C"])
        return float(f.a_), float(top["loss_opt"])

    a, loss = one(points)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(boot):
        parts = [g.iloc[rng.integers(0, len(g), len(g))] for _, g in points.groupby("budget")]
        try:
            draws.append(one(pd.concat(parts)))
        except Exception:  # a resample with too few distinct sizes in a budget: skip the draw
            continue
    arr = np.array(draws) if draws else np.full((1, 2), np.nan)
    lo, hi = np.nanpercentile(arr, [5, 95], axis=0)
    return {"a": a, "a_interval": [float(lo[0]), float(hi[0])], "loss_opt_top": loss,
            "loss_opt_top_interval": [float(lo[1]), float(hi[1])], "boot_draws": len(draws)}


def cooldown_gap(branch_csv: Path, cosine_csv: Path) -> dict:
    """Loss of each branch point minus the dedicated cosine run's at the same (params, tokens): the check of
    the cool-down length (Hägele et al. 2024 find a 20% (1 - sqrt) cool-down matches cosine)."""
    a = pd.read_csv(branch_csv)[["params", "tokens", "loss", "kind"]]
    c = pd.read_csv(cosine_csv)[["params", "tokens", "loss"]]
    m = a.merge(c, on=["params", "tokens"], suffixes=("_branch", "_cosine"))
    d = m["loss_branch"] - m["loss_cosine"]
    cd = d[m["kind"] == "cooldown"]
    return {"points": len(m), "mean": float(d.mean()), "median": float(d.median()), "min": float(d.min()),
            "max": float(d.max()), "mean_rel": float((d / m["loss_cosine"]).mean()),
            "mean_cooldown_points": float(cd.mean()) if len(cd) else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke-test", action="store_true", help="3 budgets, short runs")
    ap.add_argument("--workers", type=int, default=2, help="runs at once (both designs)")
    ap.add_argument("--boot", type=int, default=200, help="bootstrap draws for the intervals")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="override a spec field")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    from scaling.data import prepare_data
    from sweeps.design import expand, totals
    from sweeps.spec import parse_yaml, apply_overrides, validate_spec

    raw = apply_overrides(parse_yaml(SPEC, "bench"), (SMOKE if args.smoke_test else []) + args.overrides, "bench")
    spec = validate_spec(raw, "bench")
    trials = expand(spec, "bench")
    prepare_data(trials[0].config.data, progress=False)  # tokenise once, before the clocks start
    tot = totals(trials)
    ref_runs = [r for t in trials for r in _one_run_per_point(t)]
    ref_flops = sum(6.0 * t.params * p["tokens"] for t in trials for p in t.planned_points)
    print(f"{len(spec.budgets)} budgets {spec.budgets[0]:.3g}..{spec.budgets[-1]:.3g} FLOPs, "
          f"{tot['points']} points from {len(trials)} WSD trials vs {len(ref_runs)} cosine runs", flush=True)

    root = Path(tempfile.mkdtemp(prefix="bench-branches-"))
    budget_of = {}
    branch_jobs = []
    for t in trials:
        branch_jobs.append((t.config.model_dump_json(), str(root / "branches" / t.run_id)))
        for p in t.planned_points:
            budget_of[(t.run_id, int(p["tokens"]))] = p["budget"]
    ref_jobs = []
    for cfg, budget in ref_runs:
        ref_jobs.append((cfg.model_dump_json(), str(root / "runs" / cfg.run_id)))
        budget_of[(cfg.run_id, int(cfg.train.tokens))] = budget

    results = {}
    for name, jobs in (("branches", branch_jobs), ("one_run_per_point", ref_jobs)):
        wall, rows = _run_all(jobs, args.workers)
        pts = pd.DataFrame([p for r in rows for p in r["points"]])
        pts = pts[pts["status"] == "completed"].copy()
        pts["budget"] = [budget_of[(r, int(d))] for r, d in zip(pts["run_id"], pts["tokens"])]
        flops = tot["flops_total"] if name == "branches" else ref_flops
        results[name] = {"flops_6nd": flops, "wall_s": wall, "runs": len(jobs), "points": len(pts),
                         "run_wall_s": sum(r["wall_s"] for r in rows), **_fit(pts, args.boot)}
        pts.to_csv(root / f"points-{name}.csv", index=False)
        print(f"{name}: {len(jobs)} runs, {len(pts)} points, {flops:.3g} FLOPs, {wall:.0f} s wall", flush=True)

    b, r = results["branches"], results["one_run_per_point"]
    diff = cooldown_gap(root / "points-branches.csv", root / "points-one_run_per_point.csv")
    inside = {k: (r[f"{k}_interval"][0] <= b[k] <= r[f"{k}_interval"][1],
                  b[f"{k}_interval"][0] <= r[k] <= b[f"{k}_interval"][1]) for k in ("a", "loss_opt_top")}
    summary = {"budgets": spec.budgets, "points": tot["points"], "flops_ratio": b["flops_6nd"] / r["flops_6nd"],
               "flops_saving": 1 - b["flops_6nd"] / r["flops_6nd"], "wall_ratio": b["wall_s"] / r["wall_s"],
               "inside_each_other": inside, "branch_minus_cosine_loss": diff, "designs": results,
               "folder": str(root)}
    print(f"FLOPs branches / one run per point: {summary['flops_ratio']:.3f} (saving {100 * summary['flops_saving']:.1f}%)")
    print(f"wall  branches / one run per point: {summary['wall_ratio']:.3f} ({b['wall_s']:.0f} s vs {r['wall_s']:.0f} s)")
    for k, label in (("a", "a (N_opt ~ C^a)"), ("loss_opt_top", f"frontier loss at {spec.budgets[-1]:.3g} FLOPs")):
        print(f"{label}: branches {b[k]:.4f} [{b[k + '_interval'][0]:.4f}, {b[k + '_interval'][1]:.4f}]  "
              f"one run per point {r[k]:.4f} [{r[k + '_interval'][0]:.4f}, {r[k + '_interval'][1]:.4f}]  "
              f"each inside the other's 90% interval: {inside[k][0]} / {inside[k][1]}")
    print(f"branch point - dedicated cosine run, same (N, D), {diff['points']} points: mean {diff['mean']:+.4f}, "
          f"median {diff['median']:+.4f}, min {diff['min']:+.4f}, max {diff['max']:+.4f} nats/token "
          f"(mean {100 * diff['mean_rel']:+.2f}%)")
    print(f"points tables: {root}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=float))


if __name__ == "__main__":
    main()

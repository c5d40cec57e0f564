"""Orchestration overhead of `scaling sweep` on Ray Tune against the same trials run without Ray, in one run.

    python benchmarks/bench_sweep.py                 12 trials of tiny GPTs, 2 at a time (~3-4 min on 2 cores)
    python benchmarks/bench_sweep.py --smoke-test    4 short trials (CI checks it runs)

The sweep: a 12-trial grid (4 sizes x 3 data sizes) on the default corpus, one CPU per trial, two at a
time, launched with `sweeps.launch.launch` on a local Ray (started by this script, timed separately).
The reference: the same 12 `scaling.train.train` calls, two at a time, in a plain two-process pool
(`concurrent.futures`, spawn), the same threads per run. Printed:

- fraction of trial wall time spent training = sum over trials of the time inside `train()` (less the
  time its reporter spent in `tune.report`, i.e. handing metrics and checkpoints to Tune) / sum of the
  trial's wall time as the Tune driver saw it (trial start -> trial complete: actor start, imports,
  scheduling, reporting). Target >= 0.90.
- Ray overhead per trial = (sum of trial wall times - sum of that training time) / trials. Target <= 1 s.
- sweep wall / reference wall: the whole sweep (without `ray.init`) against the plain pool. Target
  close to 1.0; `ray.init` itself is printed on its own line.

The machine this runs on is shared by other work in development: compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SPEC = """
name: bench
vocab_size: 512
context: 64
data: {{max_bytes: 3000000}}
design: grid
sizes: {sizes}
tokens: {tokens}
min_steps: 20
batch: {{rule: fixed, tokens: 2048}}
lr: {{rule: fixed, value: 3e-3}}
train: {{eval_tokens: 8192}}
resources: {{cpus: 1}}
max_concurrent_trials: 2
retries: 0
"""


def _plain_run(config: dict, out_dir: str) -> float:
    """One trial without Ray: seconds inside train() (module-level so the spawn pool can pickle it)."""
    from scaling.config import RunConfig
    from scaling.data import prepare_data
    from scaling.train import train

    cfg = RunConfig.model_validate(config)
    data = prepare_data(cfg.data, progress=False)
    t0 = time.perf_counter()
    train(cfg, out_dir, data=data, progress=False)
    return time.perf_counter() - t0


def _warm(_: int) -> None:
    import torch  # noqa: F401  (the pool's workers import torch once, as reused Ray actors do)

    from scaling.train import train  # noqa: F401


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke-test", action="store_true", help="4 short trials")
    ap.add_argument("--keep", help="keep the sweep folders here instead of a temporary folder")
    args = ap.parse_args()
    if args.smoke_test:
        sizes, tokens = "[16k, 24k]", "[100k, 200k]"
    else:
        sizes, tokens = "[16k, 24k, 32k, 40k]", "[400k, 800k, 1.2M]"

    from sweeps.design import expand
    from sweeps.spec import parse_yaml, validate_spec

    spec = validate_spec(parse_yaml(SPEC.format(sizes=sizes, tokens=tokens), "bench.yaml"), "bench.yaml")
    trials = expand(spec, "bench.yaml")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        from scaling.data import prepare_data

        prepare_data(spec.data_config(), progress=False)  # tokenise once, outside both timings
        print(f"bench_sweep: {len(trials)} trials, {spec.max_concurrent_trials} at a time, 1 CPU each")

        # --- reference: the same train() calls in a plain 2-process pool -------------------------
        ctx = mp.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
            list(pool.map(_warm, range(2)))
            t0 = time.perf_counter()
            futures = [pool.submit(_plain_run, t.config.model_dump(mode="json"), str(root / "plain" / t.run_id))
                       for t in sorted(trials, key=lambda t: -t.flops_detailed)]
            plain_train = [f.result() for f in futures]
            plain_wall = time.perf_counter() - t0

        # --- the sweep on a local Ray ------------------------------------------------------------
        import ray

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local benchmark cluster
        t0 = time.perf_counter()
        ray.init("local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2)
        init_s = time.perf_counter() - t0
        from sweeps.launch import launch

        try:
            t0 = time.perf_counter()
            result = launch(spec, root / "sweep", progress=False)
            sweep_wall = time.perf_counter() - t0
        finally:
            ray.shutdown()
        assert result["counts"]["completed"] == len(trials), result["counts"]

        state = json.loads((root / "sweep" / "state.json").read_text())
        trial_wall = [v["ended"] - v["attempt_started"] for v in state.values()]
        in_train = [v["train_call_s"] - v["report_s"] for v in state.values()]  # minus tune.report time
        fraction = sum(in_train) / sum(trial_wall)
        overhead = (sum(trial_wall) - sum(in_train)) / len(trials)

        print(f"reference (plain 2-process pool): {plain_wall:7.1f} s wall, "
              f"median {statistics.median(plain_train):.1f} s inside train() per trial")
        print(f"sweep on Ray Tune:                {sweep_wall:7.1f} s wall (ray.init {init_s:.1f} s on top), "
              f"median {statistics.median(in_train):.1f} s inside train() per trial")
        print(f"fraction of trial wall time spent training: {fraction:.3f}   (target >= 0.90)")
        print(f"Ray overhead per trial:                      {overhead:.2f} s   (target <= 1 s; "
              f"{overhead / statistics.median(in_train):.3f} of a median trial)")
        print(f"sweep wall / reference wall:                 {sweep_wall / plain_wall:.3f}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

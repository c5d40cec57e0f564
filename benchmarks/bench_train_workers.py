"""Start-up cost of a Ray Train worker-group trial (`resources.workers: 2`, `sweeps.train_group`) against the plain
Tune function trial (`workers: 1`, `sweeps.trainable`), both measured in this run on a local Ray.

    python benchmarks/bench_train_workers.py                 3 trials of each kind, one at a time (~3 min on 2 cores)
    python benchmarks/bench_train_workers.py --smoke-test    1 trial of each kind

Each sweep runs the same tiny GPTs one trial at a time (so start-ups never overlap) on a local Ray started by
this script with 2 logical CPUs (0.75 per training process, 0.25 for a group trial's driver). Per trial:
overhead = the trial's wall time as the Tune driver saw it (trial start -> trial complete) - the run's own
wall time (`trial.json` `wall_s`: from the first step's set-up to the last write). For the group trial it holds
the Train driver, the controller and placement group, the two worker processes, the gloo process group and the
per-worker imports and data loading; for the plain trial the Tune actor, imports and data loading. Printed:
the median overhead of each kind, their difference (the worker group's start-up per trial) and ratio.

The machine this runs on is shared by other work in development: compare the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SPEC = """
name: bench-{kind}
vocab_size: 512
context: 64
data: {{max_bytes: 3000000}}
design: grid
sizes: {sizes}
tokens: [60k]
min_steps: 20
batch: {{rule: fixed, tokens: 2048}}
lr: {{rule: fixed, value: 3e-3}}
train: {{eval_tokens: 4096}}
resources: {{cpus: 0.75, workers: {workers}}}
max_concurrent_trials: 1
retries: 0
"""


def overheads(out: Path) -> list[tuple[float, float]]:
    """(trial wall as Tune saw it, the run's own wall) per trial of a finished sweep folder."""
    from sweeps import store

    state = store.read_state(out)
    rows = []
    for run_id, v in state.items():
        trial = json.loads((store.run_dir(out, run_id) / "trial.json").read_text())
        rows.append((v["ended"] - v["attempt_started"], float(trial["wall_s"])))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke-test", action="store_true", help="1 trial of each kind")
    ap.add_argument("--keep", help="keep the sweep folders here instead of a temporary folder")
    args = ap.parse_args()
    sizes = "[16k]" if args.smoke_test else "[16k, 20k, 28k]"

    from scaling.data import prepare_data
    from sweeps.spec import parse_yaml, validate_spec

    specs = {kind: validate_spec(parse_yaml(SPEC.format(kind=kind, sizes=sizes, workers=w), "bench.yaml"), "bench.yaml")
             for kind, w in (("plain", 1), ("group", 2))}
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_train_workers_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        prepare_data(specs["plain"].data_config(), progress=False)  # tokenise once, outside the timings
        import ray

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local benchmark cluster
        ray.init("local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2)
        from sweeps.launch import launch

        results: dict[str, list[tuple[float, float]]] = {}
        walls: dict[str, float] = {}
        try:
            for kind in ("plain", "group"):
                t0 = time.perf_counter()
                status = launch(specs[kind], root / kind, progress=False, reuse_actors=False)
                walls[kind] = time.perf_counter() - t0
                assert status["counts"]["completed"] == sum(status["counts"].values()), status["counts"]
                results[kind] = overheads(root / kind)
        finally:
            ray.shutdown()
        med = {k: statistics.median(a - b for a, b in rows) for k, rows in results.items()}
        for kind in ("plain", "group"):
            rows = results[kind]
            print(f"{kind:5s} trial ({'2 workers, gloo DDP' if kind == 'group' else '1 process'}): "
                  f"{len(rows)} trials, sweep {walls[kind]:.1f} s; per trial median wall "
                  f"{statistics.median(a for a, _ in rows):.1f} s, run {statistics.median(b for _, b in rows):.1f} s, "
                  f"overhead {med[kind]:.1f} s")
        print(f"worker-group start-up per trial (group overhead - plain overhead): {med['group'] - med['plain']:.1f} s")
        print(f"group overhead / plain overhead: {med['group'] / med['plain']:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

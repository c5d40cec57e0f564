"""`isoflop-branches` sweeps on one local Ray (shared by this module): a driver killed mid-sweep, after
a trial finished a cool-down branch, is resumed; the finished branch is not trained again and every
planned point is measured once, on its budget.
Real CPU training of tiny GPTs on the first 3 MB of the default corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.cli import main
from sweeps import store
from sweeps.design import expand
from sweeps.spec import load_spec

pytestmark = pytest.mark.slow

SPEC = """
vocab_size: 512
context: 64
data: {max_bytes: 3000000}
design: isoflop-branches
sizes: [16k, 20k, 28k]          # one trunk each: 232, 169, 129 steps, branches at 105/158, 77/115, 59/88
budgets: [1e10, 1.5e10, 2.2e10]
isoflop: {sizes_per_budget: 3, tokens_per_param: 5}
min_steps: 50
batch: {tokens: 1024}
lr: {rule: fixed, value: 3e-3}
schedule: {kind: wsd, decay_fraction: 0.2}
train: {eval_tokens: 4096}
eval_interval: 10
resources: {cpus: 1}
max_concurrent_trials: 1        # one trial at a time: the kill finds the first mid-run, the others pending
retries: 1
"""


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init("local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2)
    yield ray
    ray.shutdown()


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the driver and every process of its session (its Ray workers), by pid."""
    import psutil

    sid = os.getsid(proc.pid)
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getsid(p.pid) == sid:
                p.kill()
        except (OSError, psutil.NoSuchProcess):
            pass
    proc.wait(timeout=30)


def _branch_rows(out: Path, run_id: str) -> pd.DataFrame:
    curves = pd.read_csv(store.run_dir(out, run_id) / "curves.csv")
    return curves[curves["branch"] != "trunk"].reset_index(drop=True)


def test_driver_killed_after_a_branch_resumes_without_redoing_it(ray_local, tmp_path):
    spec_path = tmp_path / "branches.yaml"
    spec_path.write_text(SPEC)
    planned = {t.run_id: t.planned_points for t in expand(load_spec(spec_path))}
    out = tmp_path / "sweep"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "sweep", "launch", str(spec_path), "--out", str(out),
         "--address", ray_local.get_runtime_context().gcs_address, "--no-progress",
         "--insecure"],  # this machine's own Ray, without token auth: insecure by intent
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    victim = None
    try:  # wait until a trial has measured a cool-down point and is back on its trunk, unfinished
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and victim is None:
            for run_id in planned:
                rec = store.trial_record(out, run_id)
                pts = store.run_dir(out, run_id) / "points.csv"
                if rec and not store.is_finished(rec) and pts.exists() and rec.get("tokens_seen") \
                        and len(pd.read_csv(pts)) >= 1:
                    victim = run_id
            time.sleep(0.1)
        assert victim, f"driver ended early ({proc.poll()}): {(tmp_path / 'driver.log').read_text()[-2000:]}"
    finally:
        _kill_group(proc)
        log.close()

    branch_before = _branch_rows(out, victim)
    done = set(pd.read_csv(store.run_dir(out, victim) / "points.csv")["tokens"])
    assert len(branch_before) and done
    status = store.status(out, write_tables=False)
    assert status["points_done"] == len(done) < status["points_planned"] == 9
    time.sleep(3)  # Ray notices the dead driver and releases its trials' resources

    assert main(["sweep", "resume", str(out), "--no-progress"]) == 0
    after = _branch_rows(out, victim)
    # the branches finished before the kill were not trained again: their evaluations are the same rows,
    # stamped with the same elapsed time (a redone branch would be evaluated anew, later)
    pd.testing.assert_frame_equal(after.iloc[: len(branch_before)], branch_before)
    attempts = [json.loads(x) for x in (store.run_dir(out, victim) / "attempts.jsonl").read_text().splitlines()]
    assert len(attempts) >= 2 and attempts[-1]["start_step"] > 0
    points = pd.read_parquet(out / "points.parquet")
    for run_id, pts in planned.items():
        got = points[points["run_id"] == run_id].sort_values("tokens")
        assert list(zip(got["kind"], got["tokens"], got["budget"])) == \
            [(p["kind"], p["tokens"], p["budget"]) for p in pts], run_id
    assert store.status(out)["points_done"] == 9

"""Real sweeps on one local Ray (shared by this module): the IsoFLOP example end to end, a diverging
trial, a killed driver resumed with Tuner.restore, and a resume that must fall back to the manifest.

Every trial is a real `scaling.train.train` run of a tiny GPT on the first 3 MB of the default corpus."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import ray_cluster
from orchestrator.cli import main
from sweeps import store
from sweeps.launch import launch, resume
from sweeps.spec import load_spec

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "sweeps" / "examples"
SMALL_DATA = "data.max_bytes=3000000"  # the first 3 MB of the stdlib: tokenised in seconds, ~1.4M tokens


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init("local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2)
    yield ray
    ray.shutdown()


def _spec_file(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _attempts(out: Path, run_id: str) -> list[dict]:
    path = store.run_dir(out, run_id) / "attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_isoflop_example_runs_every_trial_and_fits(ray_local, tmp_path, capsys, check_output):
    spec_path = EXAMPLES / "isoflop-cpu.yaml"
    overrides = [SMALL_DATA, "budgets=[3e10,9e10]", "isoflop.sizes_per_budget=4", "isoflop.spread=2",
                 "isoflop.tokens_per_param=5", "context=64", "min_steps=30", "batch.tokens=2048",
                 "train.eval_tokens=4096", "eval_interval=10"]
    out = tmp_path / "iso"
    args = ["sweep", "launch", str(spec_path), "--out", str(out), "--no-progress"]
    for o in overrides:
        args += ["--set", o]
    assert main(args) == 0

    manifest = store.read_manifest(out)
    planned = [t["run_id"] for t in manifest["trials"]]
    assert len(planned) >= 6 and len({t["budget"] for t in manifest["trials"]}) == 2
    trials = pd.read_parquet(out / "trials.parquet")
    points = pd.read_parquet(out / "points.parquet")
    curves = pd.read_parquet(out / "curves.parquet")
    assert sorted(trials["run_id"]) == sorted(planned)
    assert (trials["status"] == "completed").all(), trials[["run_id", "status"]]
    assert len(points) == len(planned) and sorted(points["run_id"]) == sorted(planned)  # one row per trial
    assert points["loss"].map(math.isfinite).all() and (points["loss"] > 0).all()
    assert (points["kind"] == "final").all() and (points["status"] == "completed").all()
    # each trial trained exactly its planned D, and C = 6 N D is the budget it belongs to (within rounding)
    by_id = {t["run_id"]: t for t in manifest["trials"]}
    for row in points.itertuples():
        assert row.tokens == by_id[row.run_id]["tokens"]
        assert abs(row.flops_6nd / row.budget - 1) < 0.02
    assert curves.groupby("run_id")["step"].apply(lambda s: s.is_monotonic_increasing and s.is_unique).all()
    # every trial ran once, with one thread (resources.cpus: 1)
    for run_id in planned:
        assert len(_attempts(out, run_id)) == 1
    assert set(trials["device"]) == {"cpu"}

    # collecting again changes nothing (deduplicated)
    again = store.collect(out)
    assert len(again.trials) == len(trials) and len(again.curves) == len(curves) and len(again.points) == len(points)

    capsys.readouterr()
    assert main(["sweep", "status", str(out), "--json"]) == 0
    status = check_output(json.loads(capsys.readouterr().out), "sweep_status")   # contracts/output.schema.json
    assert status["counts"]["completed"] == len(planned) and status["flops_done"] == pytest.approx(status["flops_total"])

    # `scaling fit` (the analysis part) reads the sweep folder's points table. Runs this tiny are too short
    # for a credible law (the fit may warn); what matters here is that every point is read and fitted.
    assert main(["fit", str(out), "--json"]) == 0
    fit = check_output(json.loads(capsys.readouterr().out), "fit")
    assert fit["approach"] == "3" and fit["n_points"] == len(planned)
    assert fit["data_range"]["N"] == [points["params"].min(), points["params"].max()]
    assert all(math.isfinite(fit[k]) for k in ("E", "A", "B", "alpha", "beta"))


def test_diverging_trial_is_recorded_and_the_sweep_goes_on(ray_local, tmp_path):
    spec = load_spec(_spec_file(tmp_path, """
vocab_size: 512
context: 64
data: {max_bytes: 3000000}
design: grid
sizes: [20k]
tokens: [150k]
min_steps: 50
batch: {tokens: 1024}
lr: {rule: fixed, value: 3e-3, multipliers: [1, 3000]}   # the second trial's LR is 9: it diverges
train: {eval_tokens: 4096, grad_clip: null}
eval_interval: 5
resources: {cpus: 1}
retries: 0
"""))
    out = tmp_path / "div"
    result = launch(spec, out, progress=False)
    assert result["counts"]["completed"] == 1 and result["counts"]["diverged"] == 1
    trials = pd.read_parquet(out / "trials.parquet").set_index("run_id")
    bad = trials[trials["lr_multiplier"] == 3000].iloc[0]
    good = trials[trials["lr_multiplier"] == 1].iloc[0]
    assert bad["lr"] == pytest.approx(9.0) and good["lr"] == pytest.approx(3e-3)
    assert bad["status"] == "diverged" and bad["diverge_reason"]
    assert good["status"] == "completed" and math.isfinite(good["final_loss"])
    points = pd.read_parquet(out / "points.parquet").set_index("run_id")
    assert points.loc[bad.name, "status"] == "diverged"  # kept in the table, marked for the fitters to skip
    assert points.loc[good.name, "status"] == "completed"


THREE_TRIALS = """
vocab_size: 512
context: 64
data: {max_bytes: 3000000}
design: grid
sizes: [16k, 20k, 28k]
tokens: [300k]
min_steps: 50
batch: {tokens: 1024}
lr: {rule: fixed, value: 3e-3}
train: {eval_tokens: 4096}
eval_interval: 10
resources: {cpus: 1}
max_concurrent_trials: 2
retries: 1
"""


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the driver and every process of its session (its Ray workers), by pid."""
    import psutil

    sid = os.getsid(proc.pid)
    victims = [p for p in psutil.process_iter(["pid"]) if _sid(p.pid) == sid]
    for p in victims:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=30)


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def test_driver_killed_mid_sweep_then_resume_finishes_without_rerunning(ray_local, tmp_path):
    spec_path = _spec_file(tmp_path, THREE_TRIALS, "three.yaml")
    out = tmp_path / "killed"
    address = ray_local.get_runtime_context().gcs_address
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "sweep", "launch", str(spec_path), "--out", str(out),
         "--address", address, "--insecure", "--no-progress"],  # the node's address need not be loopback
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        # wait until one trial is complete and another has checkpointed part of its run
        deadline = time.time() + 240
        completed, partial = [], []
        while time.time() < deadline and proc.poll() is None:
            if (out / store.MANIFEST).exists():
                ids = [t["run_id"] for t in store.read_manifest(out)["trials"]]
                records = {r: store.trial_record(out, r) for r in ids}
                completed = [r for r, rec in records.items() if store.is_finished(rec)]
                partial = [r for r, rec in records.items() if rec and not store.is_finished(rec) and rec["step"] >= 20]
                if completed and partial:
                    break
            time.sleep(0.2)
        assert completed and partial, f"driver ended early ({proc.poll()}): {(tmp_path / 'driver.log').read_text()[-2000:]}"
    finally:
        _kill_group(proc)
        # Ray ends a dead driver's trial workers only once it notices the driver is gone; a partial trial a
        # few steps from its end could finish in between (seen on a loaded CI machine). Its worker dies here
        # with the driver, as it would when the driver's machine is lost.
        for r in partial:
            for attempt in _attempts(out, r)[-1:]:
                try:
                    os.kill(int(attempt["pid"]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        log.close()

    assert store.driver_alive(out) is False  # its pid is gone, though driver.json is left behind
    done_before = {r: (store.run_dir(out, r) / "trial.json").read_text() for r in completed}
    time.sleep(3)  # Ray notices the dead driver and releases its trials' resources

    assert main(["sweep", "resume", str(out), "--no-progress"]) == 0
    trials = pd.read_parquet(out / "trials.parquet")
    assert (trials["status"] == "completed").all() and len(trials) == 3
    for r in completed:  # not rerun: same record, one attempt
        assert (store.run_dir(out, r) / "trial.json").read_text() == done_before[r]
        assert len(_attempts(out, r)) == 1
    for r in partial:  # continued from its last checkpoint, not from scratch
        attempts = _attempts(out, r)
        assert len(attempts) >= 2 and attempts[-1]["start_step"] >= 20
    curves = pd.read_parquet(out / "curves.parquet")
    for r, c in curves.groupby("run_id"):
        assert c["step"].is_unique and c["step"].is_monotonic_increasing
    assert len(store.read_manifest(out)["experiments"]) == 1  # resumed through Tuner.restore
    # the killed-and-resumed trial ends exactly where an uninterrupted run of its config ends (CPU)
    from scaling.config import RunConfig
    from scaling.train import train

    final = trials.set_index("run_id")["final_loss"]
    for r in partial:
        cfg = RunConfig.model_validate(json.loads((store.run_dir(out, r) / "config.json").read_text()))
        uninterrupted = train(cfg, tmp_path / f"uninterrupted-{r}", progress=False)
        assert final[r] == uninterrupted.trial["final_loss"], (r, final[r], uninterrupted.trial["final_loss"])


def test_interrupted_sweep_resumes_from_the_manifest_when_tune_state_is_lost(ray_local, tmp_path):
    """Ctrl-C (Tune stops gracefully) and then a truncated tuner.pkl (ray#58179): `resume` falls back to
    the sweep's own manifest, reruns nothing that finished and completes the rest."""
    from ray import tune

    class InterruptAfterFirstTrial(tune.Callback):  # what Ctrl-C does to a running sweep
        def on_trial_complete(self, iteration, trials, trial, **info):
            os.kill(os.getpid(), signal.SIGUSR1)  # Tune's stop signal (SIGINT would also reach pytest)

    text = THREE_TRIALS.replace("sizes: [16k, 20k, 28k]", "sizes: [16k, 20k]").replace("tokens: [300k]", "tokens: [150k]")
    spec = load_spec(_spec_file(tmp_path, text.replace("max_concurrent_trials: 2", "max_concurrent_trials: 1")))
    out = tmp_path / "interrupted"
    first = launch(spec, out, progress=False, callbacks=[InterruptAfterFirstTrial()])
    assert first["counts"]["completed"] == 1, first["counts"]
    ids = [t["run_id"] for t in store.read_manifest(out)["trials"]]
    finished = [r for r in ids if store.is_finished(store.trial_record(out, r))]
    assert len(finished) == 1
    pkl = Path(store.read_manifest(out)["experiments"][0]) / "tuner.pkl"
    pkl.write_bytes(pkl.read_bytes()[:40])  # truncated, as after a crash mid-write

    result = resume(out, progress=False)
    assert result["counts"]["completed"] == 2
    assert len(store.read_manifest(out)["experiments"]) == 2  # a new Tune experiment for the rest
    assert len(_attempts(out, finished[0])) == 1
    assert len(pd.read_parquet(out / "points.parquet")) == 2


def test_sigterm_to_a_trial_worker_checkpoints_at_the_next_step_and_the_retry_resumes_it(ray_local, tmp_path):
    """SIGTERM to the process of a running trial (as a preempted node or `kill <pid>` sends it): the run
    checkpoints at its next optimiser step, the trial ends as an error (not finished), Tune's retry resumes
    from that checkpoint in a new worker, and the final loss equals an uninterrupted run's exactly (CPU)."""
    from scaling.config import RunConfig
    from scaling.train import train

    text = THREE_TRIALS.replace("sizes: [16k, 20k, 28k]", "sizes: [16k]").replace("eval_interval: 10", "eval_interval: 20")
    spec = load_spec(_spec_file(tmp_path, text))
    out = tmp_path / "sigterm"
    killer = ray_cluster.SigtermOnce(at_step=20)
    result = launch(spec, out, progress=False, callbacks=[killer])
    assert result["counts"]["completed"] == 1, result["counts"]
    assert killer.signalled is not None and killer.stopped is not None
    assert killer.stopped["by"] == "SIGTERM"
    run_id = store.read_manifest(out)["trials"][0]["run_id"]
    attempts = _attempts(out, run_id)
    assert len(attempts) == 2 and attempts[0]["pid"] == killer.signalled["pid"] != attempts[1]["pid"]
    # the retry started at the step the signal stopped the run at (after the evaluation that triggered it)
    stop_step = killer.stopped["step"]
    assert attempts[1]["start_step"] == stop_step > killer.signalled["step"]
    # Tune stops the errored trial's actor: the signalled process exits
    ray_cluster.wait_until_dead(killer.signalled["pid"], timeout_s=30)

    trial = pd.read_parquet(out / "trials.parquet").set_index("run_id").loc[run_id]
    cfg = RunConfig.model_validate(json.loads((store.run_dir(out, run_id) / "config.json").read_text()))
    uninterrupted = train(cfg, tmp_path / "uninterrupted", progress=False)
    assert trial["final_loss"] == uninterrupted.trial["final_loss"]


def test_quiet_ray_sends_rays_lines_and_worker_output_to_the_log_then_gives_them_back(ray_local, tmp_path, capfd):
    """`sweeps.ray_logs.QuietRay` (what launch/resume wrap a sweep in unless --verbose): a "ray" logger record
    and a worker's forwarded stderr land in the sweep's log, not on the terminal; afterwards both reach the
    terminal again (the handlers are put back)."""
    import logging

    from sweeps.ray_logs import QuietRay

    @ray_local.remote
    def shout(word: str) -> int:
        print(word, file=sys.stderr, flush=True)
        return os.getpid()

    def wait_for(pred, what: str) -> None:
        deadline = time.monotonic() + 20
        while not pred():
            assert time.monotonic() < deadline, what
            time.sleep(0.2)

    log = tmp_path / "logs" / "ray.log"
    with QuietRay(log):
        logging.getLogger("ray.tune.tune").info("tune-line-while-quiet")
        pid = ray_local.get(shout.remote("worker-line-while-quiet"))
        wait_for(lambda: "worker-line-while-quiet" in log.read_text(), "the worker's line never reached the log")
    text = log.read_text()
    assert "tune-line-while-quiet" in text and f"pid={pid})" in text
    ray_local.get(shout.remote("worker-line-after"))
    seen = ""

    def terminal_has_it() -> bool:
        nonlocal seen
        seen += "".join(capfd.readouterr())
        return "worker-line-after" in seen

    wait_for(terminal_has_it, "after QuietRay the worker's output no longer reaches the terminal")
    assert "while-quiet" not in seen
    assert "worker-line-after" not in log.read_text()

"""Stop a run anywhere, resume it, and get exactly the run that was never stopped (CPU, bit for bit)."""

from __future__ import annotations

import torch

from scaling.checkpoint import find_checkpoint
from scaling.config import RunConfig
from scaling.train import train

MODEL = {"n_layer": 2, "d_model": 32, "n_head": 2, "context": 64, "vocab_size": 512}


def config(stdlib_data_config, **kw) -> RunConfig:
    train_cfg = {"tokens": 24 * 1024, "batch_tokens": 1024, "micro_batch_tokens": 512, "eval_tokens": 4096,
                 "threads": 1, "lr": 3e-3, "eval_interval": 5} | kw
    return RunConfig.model_validate({"model": MODEL, "data": stdlib_data_config.model_dump(), "train": train_cfg})


def final_state(out_dir) -> dict:
    return torch.load(find_checkpoint(out_dir) / "state.pt", weights_only=True)


def assert_same_run(a, b, dir_a, dir_b) -> None:
    assert a.trial["final_loss"] == b.trial["final_loss"]
    assert [(r["step"], r["branch"], r["val_loss"], r["train_loss"]) for r in a.curves] == \
           [(r["step"], r["branch"], r["val_loss"], r["train_loss"]) for r in b.curves]
    assert [(p["kind"], p["tokens"], p["loss"]) for p in a.points] == [(p["kind"], p["tokens"], p["loss"]) for p in b.points]
    sa, sb = final_state(dir_a), final_state(dir_b)
    assert sa["model"].keys() == sb["model"].keys()
    for name in sa["model"]:
        assert torch.equal(sa["model"][name], sb["model"][name]), name
    for pa, pb in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert torch.equal(pa["exp_avg"], pb["exp_avg"]) and torch.equal(pa["exp_avg_sq"], pb["exp_avg_sq"])
    assert sa["stream"] == sb["stream"]


def test_stopped_and_resumed_run_is_bit_identical(stdlib_data, stdlib_data_config, tmp_path):
    cfg = config(stdlib_data_config)
    full = train(cfg, tmp_path / "full", data=stdlib_data, progress=False)
    part = train(cfg, tmp_path / "part", data=stdlib_data, progress=False, stop_after_steps=7)
    assert part.trial["status"] == "running" and part.trial["step"] == 7
    assert [r["step"] for r in part.curves] == [5]
    resumed = train(cfg, tmp_path / "part", data=stdlib_data, progress=False)
    assert resumed.trial["status"] == "completed"
    assert_same_run(full, resumed, tmp_path / "full", tmp_path / "part")


def test_wsd_run_with_branches_resumes_bit_identically_from_anywhere(stdlib_data, stdlib_data_config, tmp_path):
    """Stopped every 4 steps, so several stops fall inside cool-down branches (trunk state in the checkpoint)."""
    cfg = config(stdlib_data_config, tokens=32 * 1024, schedule="wsd", cooldowns=(0.3, 0.6), decay_fraction=0.25)
    full = train(cfg, tmp_path / "full", data=stdlib_data, progress=False)
    calls, in_branch = 0, 0
    while True:
        result = train(cfg, tmp_path / "part", data=stdlib_data, progress=False, stop_after_steps=4)
        calls += 1
        in_branch += torch.load(find_checkpoint(tmp_path / "part") / "state.pt", weights_only=True)["trunk"] is not None
        if result.trial["status"] != "running":
            break
    assert calls >= 9 and in_branch >= 1
    assert [p["kind"] for p in result.points] == ["cooldown", "cooldown", "final"]
    assert_same_run(full, result, tmp_path / "full", tmp_path / "part")


# ------------------------------------------------------------------------------ preemption and crash windows

def test_sigterm_checkpoints_at_the_next_step_and_resumes_bit_identically(stdlib_data, stdlib_data_config, tmp_path):
    """`scaling train` receiving SIGTERM mid-run saves a checkpoint at the next step boundary and exits
    cleanly (exit 0, status `running`); resumed, the run equals an uninterrupted one bit for bit (CPU)."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    d = stdlib_data_config
    part = tmp_path / "part"
    argv = [sys.executable, "-m", "orchestrator", "train", "--n-layer", "2", "--d-model", "32", "--n-head", "2",
            "--context", "64", "--vocab-size", "512", "--tokens", str(200 * 1024), "--batch-tokens", "1024",
            "--micro-batch-tokens", "512", "--eval-tokens", "4096", "--eval-interval", "25", "--threads", "1",
            "--lr", "3e-3", "--device", "cpu", "--max-bytes", str(d.max_bytes), "--val-fraction", str(d.val_fraction),
            "--cache-dir", str(d.cache_dir), "--out", str(part), "--quiet"]
    proc = subprocess.Popen(argv, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (part / "checkpoint").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)                                   # the first checkpoint: training is under way
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err and "stopped by SIGTERM at step" in err, err[-2000:]
    trial = json.loads((part / "trial.json").read_text())
    assert trial["status"] == "running" and 25 <= trial["step"] < 200

    cfg = RunConfig.model_validate(json.loads((part / "config.json").read_text()))
    resumed = train(cfg, part, data=stdlib_data, progress=False)
    full = train(cfg, tmp_path / "full", data=stdlib_data, progress=False)
    assert resumed.trial["status"] == "completed" and resumed.trial["step"] == 200
    assert_same_run(full, resumed, tmp_path / "full", part)


def test_completed_checkpoint_with_stale_running_trial_json_is_repaired(stdlib_data, stdlib_data_config, tmp_path):
    """The crash window: the completed checkpoint is saved, then the process dies before `trial.json`
    says `completed`. Running again trains nothing and rewrites `trial.json` from the checkpoint, so
    the run is not marked `running` forever (and a sweep does not rerun it on every resume)."""
    import json

    from sweeps import store

    cfg = config(stdlib_data_config)
    out = tmp_path / "run"
    done = train(cfg, out, data=stdlib_data, progress=False)
    assert done.trial["status"] == "completed"
    stale = {**done.trial, "status": "running", "final_loss": None}
    (out / "trial.json").write_text(json.dumps(stale))        # what the crash left behind
    (out / "curves.csv").write_text("run_id,step\n")
    assert not store.is_finished(stale)
    checkpoint_before = (find_checkpoint(out) / "state.pt").stat().st_mtime_ns

    again = train(cfg, out, data=stdlib_data, progress=False)
    trial = json.loads((out / "trial.json").read_text())
    assert trial["status"] == "completed" and trial["final_loss"] == done.trial["final_loss"]
    assert store.is_finished(trial)
    assert again.curves == done.curves and (out / "curves.csv").read_text().count("\n") == len(done.curves) + 1
    assert (find_checkpoint(out) / "state.pt").stat().st_mtime_ns == checkpoint_before   # nothing retrained


LATCH_SCRIPT = """
import os, signal, sys, threading, time
from scaling.preemption import install_latch, stop_on_sigterm

assert install_latch() and install_latch()          # on the main thread; idempotent
seen = {}

def run():                                           # a run in another thread, as in a Ray Tune trial
    with stop_on_sigterm() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        while not stop:
            time.sleep(0.01)
        seen["flag"] = stop.name

t = threading.Thread(target=run)
t.start()
t.join(10)
print(seen.get("flag"), flush=True)
os.kill(os.getpid(), signal.SIGTERM)                 # no run in progress: the previous handler (default: exit)
time.sleep(5)
print("still alive", flush=True)
"""


def test_latch_raises_a_run_flag_in_any_thread_and_otherwise_keeps_the_process_killable(tmp_path):
    """The process-wide latch (`scaling.preemption`): a SIGTERM during a run registered from a worker thread
    raises that run's flag (the process lives on); with no run in progress the previous handler acts (here
    the default: the process is terminated by the signal)."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", LATCH_SCRIPT], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines() == ["SIGTERM"], (proc.stdout, proc.stderr)
    assert proc.returncode == -signal.SIGTERM


EXIT_SCRIPT = """
import atexit, os, signal, sys, time, weakref

def ray_like(signum, frame):                         # what Ray's worker handler does: raise SystemExit
    sys.exit(1)

signal.signal(signal.SIGTERM, ray_like)

class Thing:
    pass

def sigterm_inside_a_weakref_callback():             # a worker being shut down: SIGTERM lands in a finaliser
    things = weakref.WeakSet()
    thing = Thing()
    things.add(thing)
    def on_collect(ref):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
            pass
    ref = weakref.ref(thing, on_collect)
    del thing
    time.sleep(0.2)
    print("exited cleanly", flush=True)

atexit.register(sigterm_inside_a_weakref_callback)   # registered first: runs after the latch's own hook
from scaling.preemption import install_latch
assert install_latch()
"""


def test_sigterm_while_the_process_exits_prints_no_traceback(tmp_path):
    """A Ray worker being shut down gets SIGTERM while it runs its exit hooks; the latch must not chain it to
    Ray's handler there (its SystemExit would be raised inside a finaliser: `Exception ignored in ...`, a
    traceback on the sweep's console)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=60)
    assert proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines() == ["exited cleanly"] and proc.returncode == 0

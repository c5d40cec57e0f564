"""The Ray side of a sweep: the Tune function trainable (one trial = one `scaling.train.train` run) and
the driver callback that records trial states and feeds the progress view.

Resume order inside a trial: a run folder whose `trial.json` is already final (completed/diverged) is
never trained again (its stored result is reported); otherwise the newer of the run folder's own
checkpoint and Tune's (`tune.get_checkpoint()`, present on retries and `Tuner.restore`) is used, so a
trial resumes from its last checkpoint whether or not the run folder is on shared storage.
Each start of a trial appends one line to `<run>/attempts.jsonl` (node, pid, resumed-from step, source).

Preemption (`scaling.preemption`): Tune runs a function trainable in a thread of the trial's worker process,
where no signal handler can be installed, so the trainable is the class `SweepTrial`, whose `setup` runs on
the worker's main thread (the actor's creation task) and installs the process-wide SIGTERM latch there,
chained to the handler Ray installed (`Worker.main_loop`: exit the worker). A SIGTERM to the worker while
its run trains makes the run checkpoint at the next optimiser step; the trial then reports that checkpoint
to Tune and raises `Preempted`, so Tune records an *error*, not a finished trial: with `retries` left
(`FailureConfig(max_failures=retries)`) it starts the trial again in a new worker, which resumes from that
checkpoint (one step lost at most); with none left the trial is `failed` and `scaling sweep resume` continues
it from the same checkpoint. Tune stops the errored trial's actor, so the signalled process still exits.
A SIGTERM to an idle worker (between trials) goes straight to Ray's handler.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.trainable.function_trainable import wrap_function

from contracts.jsonio import read_json, write_json
from scaling.preemption import install_latch
from sweeps import store
from sweeps.progress import SweepProgress

FINAL_KEYS = ("status", "final_loss", "final_train_loss", "tokens_seen", "epochs", "wall_s", "tokens_per_s",
              "params", "flops_6nd", "diverge_reason", "val_bpb", "mfu")


# --- trial naming and resources (module-level so tuner.pkl pickles them by reference) --------------

def trial_name(trial) -> str:
    return trial.config["trial"]["run_id"]


def resources_for(config: dict) -> tune.PlacementGroupFactory:
    """One bundle per trial, so a multi-GPU trial's GPUs are on one node (DDP by local processes)."""
    t = config["trial"]
    bundle: dict[str, float] = {"CPU": float(t["cpus"])}
    if t.get("gpus"):
        bundle["GPU"] = float(t["gpus"])
    return tune.PlacementGroupFactory([bundle])


def make_trainable():
    """The one-process trial's trainable: `SweepTrial` (per-trial resources, the SIGTERM latch)."""
    return SweepTrial


class Preempted(RuntimeError):
    """A trial's run stopped on SIGTERM with a checkpoint; raised so that Tune retries it (not `finished`)."""


# --- the trainable ---------------------------------------------------------------------------------

def run_trial(config: dict) -> None:
    """Tune function trainable: run one pretraining run, forwarding every evaluation to Tune."""
    from scaling.config import RunConfig
    from scaling.train import train

    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one "Checkpoint created" line per eval is noise
    t = config["trial"]
    out = Path(t["run_dir"])
    out.mkdir(parents=True, exist_ok=True)
    record = read_json(out / "trial.json")
    if store.is_finished(record):  # finished before (e.g. by a driver that died before Tune heard)
        tune.report({**_final_metrics(record), "run_id": t["run_id"], "skipped": True})
        return
    cfg = RunConfig.model_validate(t["config"])
    source, start_step = _restore_checkpoint(out)
    node_id = ray.get_runtime_context().get_node_id()
    _append_attempt(out, node_id=node_id, source=source, start_step=start_step)
    _cap_gpu_memory(float(t.get("gpus") or 0.0))
    data = _load_data(t.get("data_root"), cfg)

    report_s = 0.0  # time spent handing results and checkpoints to Tune (Ray's share of the trial)
    sync_s = float(t.get("checkpoint_sync_s", 60.0))
    last_sync = -math.inf

    def reporter(metrics: dict, checkpoint_dir: Path | None) -> None:
        """Every evaluation goes to Tune; its checkpoint too when `sync_s` has passed since the last one
        (or the run just ended): the run folder holds the newest checkpoint anyway, so Tune's copy is the
        fallback for a run folder that is not on shared storage, and copying it at every evaluation
        would cost more than it saves."""
        nonlocal report_s, last_sync
        t0 = time.perf_counter()
        payload = {**_scalars(metrics), "run_id": t["run_id"], "node_id": node_id, "resumed_from_step": start_step}
        checkpoint = None
        now = time.monotonic()
        if checkpoint_dir and (now - last_sync >= sync_s or metrics.get("status") != "running"):
            checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir))
            last_sync = now
        tune.report(payload, checkpoint=checkpoint)
        report_s += time.perf_counter() - t0

    t0 = time.perf_counter()
    result = train(cfg, out, data=data, resume=True, reporter=reporter, progress=False)
    train_call_s = time.perf_counter() - t0
    if result.stopped_by:
        _hand_over_preempted(out, t["run_id"], result.trial, result.stopped_by, node_id=node_id, start_step=start_step)
    tune.report({**_final_metrics(result.trial), "run_id": t["run_id"], "node_id": node_id,
                 "resumed_from_step": start_step, "train_call_s": train_call_s, "report_s": report_s})


def _hand_over_preempted(out: Path, run_id: str, trial: dict, stopped_by: str, **fields: Any) -> None:
    """Give Tune the checkpoint the stop just wrote (a retry on another node finds it there), then raise
    `Preempted` so the trial ends as an error Tune retries, not as a finished trial."""
    from scaling.checkpoint import find_checkpoint

    step = trial.get("step")
    folder = find_checkpoint(out)
    checkpoint = tune.Checkpoint.from_directory(str(folder)) if folder is not None else None
    tune.report({"run_id": run_id, "step": step, "stopped_by": stopped_by, **fields}, checkpoint=checkpoint)
    raise Preempted(f"{run_id}: stopped by {stopped_by} at step {step} with a checkpoint; "
                    f"the next attempt resumes from it")


def _scalars(metrics: dict) -> dict:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or v is None or isinstance(v, str):
            out[k] = v
        elif isinstance(v, (int, float)):
            out[k] = v if isinstance(v, int) or math.isfinite(v) else str(v)
        elif hasattr(v, "item"):
            out[k] = v.item()
    return out


def _final_metrics(record: dict) -> dict:
    m = {k: record.get(k) for k in FINAL_KEYS if k in record}
    m["done"] = True
    m["tokens"] = record.get("tokens_seen")
    return _scalars(m)


def checkpoint_step(path: Path) -> int | None:
    """The optimiser step a checkpoint folder holds (from its meta.json), None if absent or incomplete."""
    meta = read_json(Path(path) / "meta.json")
    if not meta or not (Path(path) / "state.pt").exists():
        return None
    step = meta.get("step")
    return int(step) if isinstance(step, (int, float)) else None


def checkpoint_progress(path: Path) -> int | None:
    """How far a checkpoint is into its run, comparable between two checkpoints of one run: tokens
    trained including WSD cool-down branches when meta.json has them (a branch's step count restarts
    below the trunk's), else the step."""
    meta = read_json(Path(path) / "meta.json") or {}
    done = meta.get("tokens_processed")
    if isinstance(done, (int, float)) and (Path(path) / "state.pt").exists():
        return int(done)
    return checkpoint_step(path)


def _restore_checkpoint(out: Path) -> tuple[str, int]:
    """Put the newer of the run folder's and Tune's checkpoint at `<out>/checkpoint`; return (source, its step)."""
    return restore_newer(out, tune.get_checkpoint(), "tune")


def restore_newer(out: Path, ck: Any, label: str) -> tuple[str, int]:
    """Put the newer of the run folder's checkpoint and `ck` (a Ray `Checkpoint` or None) at `<out>/checkpoint`;
    return (source: `label`, `run_dir` or `none`, its step)."""
    from scaling.checkpoint import find_checkpoint

    local = out / "checkpoint"
    found = find_checkpoint(out)
    local_step = checkpoint_step(found) if found is not None else None
    local_progress = checkpoint_progress(found) if found is not None else None
    if ck is not None:
        with ck.as_directory() as d:
            tune_step = checkpoint_step(Path(d))
            tune_progress = checkpoint_progress(Path(d))
            if tune_progress is not None and (local_progress is None or tune_progress > local_progress):
                tmp = out / ".checkpoint.restoring"
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(d, tmp)
                for stale in ("checkpoint", "checkpoint.old", "checkpoint.tmp"):
                    shutil.rmtree(out / stale, ignore_errors=True)
                os.replace(tmp, local)
                return label, tune_step or 0
    if local_step is not None:
        return "run_dir", local_step
    return "none", 0


def _append_attempt(out: Path, **fields: Any) -> None:
    line = {"time": time.time(), "pid": os.getpid(), **fields}
    with open(out / "attempts.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def _cap_gpu_memory(gpus: float) -> None:
    """A trial holding a fraction of a GPU may use only that fraction of its memory (Ray does not enforce it)."""
    if 0 < gpus < 1:
        import torch

        if torch.cuda.is_available():
            torch.cuda.set_per_process_memory_fraction(gpus)


def _load_data(root: str | None, cfg):
    """The tokens the driver prepared; prepared here (file-locked, cached) when this node cannot see them."""
    from scaling.data import TokenData, prepare_data

    if root:
        try:
            return TokenData.load(root)
        except Exception:  # not on this node's filesystem
            pass
    return prepare_data(cfg.data, progress=False)


class SweepTrial(wrap_function(run_trial)):
    """`run_trial` as Tune's function trainable, with per-trial resources (`resources_for`) and the SIGTERM
    latch installed on the worker's main thread before the run's thread starts (module docstring)."""

    def setup(self, config: dict) -> None:
        install_latch()
        super().setup(config)

    @classmethod
    def default_resource_request(cls, config: dict) -> tune.PlacementGroupFactory:
        return resources_for(config)


# --- the driver callback ---------------------------------------------------------------------------

class SweepCallback(tune.Callback):
    """Driver-side: keeps `<out>/state.json` (status, attempts, errors, times, last metrics per trial) and
    the live progress view. Pickled into tuner.pkl, so it holds only paths and flags; it rebuilds its
    view from disk when an experiment (re)starts."""

    def __init__(self, out: str, *, progress: bool = True):
        self.out = str(out)
        self.show_progress = progress
        self._state: dict | None = None
        self._view: SweepProgress | None = None
        self._last_write = 0.0

    def __getstate__(self) -> dict:
        return {"out": self.out, "show_progress": self.show_progress, "_state": None, "_view": None,
                "_last_write": 0.0}

    # -- helpers -------------------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        if self._state is None:
            self._state = store.read_state(self.out)
        return self._state

    @property
    def view(self) -> SweepProgress:
        if self._view is None:
            manifest = store.read_manifest(self.out)
            plan = {t["run_id"]: t for t in manifest["trials"]}
            done = {}
            for run_id in plan:
                rec = store.trial_record(self.out, run_id)
                if store.is_finished(rec):
                    done[run_id] = rec["status"]
            self._view = SweepProgress(manifest["name"], plan, enabled=self.show_progress, done=done)
        return self._view

    def _entry(self, trial) -> tuple[str, dict]:
        run_id = trial.config["trial"]["run_id"]
        return run_id, self.state.setdefault(run_id, {"status": "pending", "attempts": 0})

    def _save(self, force: bool = True) -> None:
        now = time.time()
        if force or now - self._last_write > 1.0:
            write_json(Path(self.out) / store.STATE, self.state)
            self._last_write = now

    # -- Tune hooks ----------------------------------------------------------------------------------
    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info) -> None:
        self._state, self._view = None, None
        self.view  # build it now, from disk

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        run_id, e = self._entry(trial)
        now = time.time()
        e.update(status="running", attempts=int(e.get("attempts", 0)) + 1, attempt_started=now)
        e.setdefault("started", now)
        e.pop("error", None)
        self._save()
        self.view.started(run_id)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        run_id, e = self._entry(trial)
        for key in ("step", "tokens", "val_loss", "train_loss", "tokens_per_s", "node_id", "resumed_from_step",
                    "train_call_s", "report_s"):
            if key in result:
                e[key] = result[key]
        e["last_result"] = time.time()
        if result.get("done") and result.get("status") in store.FINAL_STATUSES:
            e["status"] = result["status"]
        self._save(force=False)
        self.view.result(run_id, result)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        run_id, e = self._entry(trial)
        last = trial.last_result or {}
        record = store.trial_record(self.out, run_id) or {}
        final = record.get("status") or last.get("status") or "completed"
        if final not in store.FINAL_STATUSES:
            final = "failed"
            e["error"] = f"trial ended with status {record.get('status')!r}"
        e.update(status=final, ended=time.time())
        self._save()
        loss = record.get("final_loss")
        detail = f"loss {loss:.4f}" if isinstance(loss, (int, float)) and math.isfinite(loss) else ""
        if final == "diverged":
            detail = str(record.get("diverge_reason") or "diverged")
        self.view.finished(run_id, final, detail)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        run_id, e = self._entry(trial)
        e.update(status="restarting", error=_error_text(trial))
        self._save()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        run_id, e = self._entry(trial)
        e.update(status="failed", error=_error_text(trial), ended=time.time())
        self._save()
        self.view.finished(run_id, "failed", e["error"][:200])

    def on_experiment_end(self, trials, **info) -> None:
        self._save()
        if self._view is not None:
            self._view.close()


def _error_text(trial) -> str:
    """The last line of the trial's error (Tune keeps the traceback in error.txt in the trial folder)."""
    try:
        path = getattr(trial, "error_file", None) or ""
        text = Path(path).read_text() if path and Path(path).exists() else ""
    except OSError:
        text = ""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else "trial failed (see the Ray trial folder's error.txt)"

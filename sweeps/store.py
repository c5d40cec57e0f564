"""The sweep folder on disk and the runs table collected from it (no Ray here).

    <out>/sweep.json        the manifest: spec, every planned trial (run_id, RunConfig, N, D, FLOPs),
                            Tune experiment path; written once before any trial starts, so a sweep can
                            be resumed (and its tables rebuilt) even when Tune's own state is lost
    <out>/spec.yaml         the spec as launched (overrides applied)
    <out>/state.json        trial states as the driver saw them (attempts, errors, times, last metrics)
    <out>/driver.json       pid and host of the driver while it runs
    <out>/runs/<run_id>/    one `scaling.train.train` out_dir: config.json, trial.json, curves.csv,
                            points.csv, checkpoint/, attempts.jsonl (one line per start of the trial)
    <out>/ray/<name>/       the Ray Tune experiment (unless --storage points elsewhere)
    <out>/trials.parquet    one row per trial    (`contracts.runs_table` columns + extras)
    <out>/curves.parquet    one row per evaluation
    <out>/points.parquet    one row per fit-ready (N, D, loss) point

`collect(out)` rebuilds the three Parquet tables from the run folders: rows are deduplicated (a
trial resumed from a checkpoint re-reports evaluations; the last copy wins), and every trial keeps its
status: completed, diverged (NaN or exploding loss; fits leave it out with a warning), failed (Ray gave
up after its retries), running. `status(out)` summarises progress for `scaling sweep status`.

Every file here is read back through `sweeps.folder_state`, which checks it: a damaged one is one error line
naming it and what to do; a damaged Parquet table is set aside as `<name>.parquet.damaged` and rebuilt.
"""

from __future__ import annotations

import io
import json
import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from contracts.jsonio import read_json, write_atomic, write_json
from contracts.runs_table import CURVE_COLUMNS, FINAL_STATUSES, POINT_COLUMNS, TRIAL_COLUMNS
from sweeps import folder_state
from sweeps.folder_state import MANIFEST, RUNS, STATE, SweepFolderError, run_dir  # noqa: F401 - store.* as before

DRIVER = "driver.json"


@dataclass(frozen=True)
class Tables:
    trials: pd.DataFrame
    curves: pd.DataFrame
    points: pd.DataFrame


# --- small file helpers ---------------------------------------------------------------------------

def read_manifest(out: str | Path) -> dict:
    """`<out>/sweep.json`, checked (`sweeps.folder_state`)."""
    return folder_state.read_manifest(out)


def read_state(out: str | Path) -> dict[str, dict]:
    """`<out>/state.json`, checked; {} before the driver wrote one."""
    return folder_state.read_state(out)


def trial_record(out: str | Path, run_id: str) -> dict | None:
    """The trial row `train()` last wrote for this run (None before its first evaluation), checked."""
    return folder_state.trial_record(out, run_id)


def is_finished(record: dict | None) -> bool:
    return bool(record) and record.get("status") in FINAL_STATUSES


def write_driver(out: Path) -> None:
    write_json(out / DRIVER, {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})


def clear_driver(out: Path) -> None:
    info = read_json(out / DRIVER)
    if info and info.get("pid") == os.getpid():
        (out / DRIVER).unlink(missing_ok=True)


def driver_alive(out: Path) -> bool | None:
    """True/False when the driver ran on this host; None when it runs elsewhere (cannot tell)."""
    info = read_json(Path(out) / DRIVER)
    if not info:
        return False
    if info.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- collecting the runs table --------------------------------------------------------------------

def collect(out: str | Path, *, write: bool = True) -> Tables:
    """Build trials/curves/points from `<out>/runs/*` (and the manifest/state), write them as Parquet.

    Safe to call while the sweep runs (for `status`) and again after it; the result is deduplicated
    and the files are replaced atomically.
    """
    out = Path(out)
    manifest = read_manifest(out)
    state = read_state(out)
    sweep = manifest.get("name")
    planned = {t["run_id"]: t for t in manifest.get("trials", [])}

    trial_rows, curve_frames, point_frames = [], [], []
    for run_id, plan in planned.items():
        record = trial_record(out, run_id)
        st = state.get(run_id, {})
        if record is None and st.get("status") != "failed":
            continue  # not started (or started but no evaluation yet)
        row = _plan_row(plan, sweep, manifest.get("n_train_tokens")) if record is None else dict(record)
        row.setdefault("run_id", run_id)
        row.setdefault("sweep", sweep)
        row["status"] = _status(row.get("status"), st)
        if row["status"] == "failed" and st.get("error"):
            row["error"] = str(st["error"])[:500]
        row["attempts"] = int(st.get("attempts", 1) or 1)
        if plan.get("budget") is not None:
            row["budget"] = plan["budget"]
        row["lr_multiplier"] = plan.get("lr_multiplier", 1.0)
        row["batch_multiplier"] = plan.get("batch_multiplier", 1.0)
        trial_rows.append(row)
        curves = folder_state.read_run_csv(out, run_id, "curves.csv")
        if curves is not None and len(curves):
            curves["run_id"] = run_id
            curve_frames.append(curves)
        points = folder_state.read_run_csv(out, run_id, "points.csv")
        if points is not None and len(points):
            points["run_id"] = run_id
            points["sweep"] = sweep
            points["status"] = row["status"]
            budgets = point_budgets(plan, points["tokens"])
            if budgets is not None:
                points["budget"] = budgets
            points["lr_multiplier"] = plan.get("lr_multiplier", 1.0)
            points["batch_multiplier"] = plan.get("batch_multiplier", 1.0)
            points["seed"] = plan.get("config", {}).get("train", {}).get("seed", 0)
            point_frames.append(points)

    trials = _frame(trial_rows, TRIAL_COLUMNS)
    trials = trials.drop_duplicates("run_id", keep="last").reset_index(drop=True)
    curves = _concat(curve_frames, CURVE_COLUMNS)
    curve_key = ["run_id", "step"] + (["branch"] if "branch" in curves.columns else [])
    if len(curves):
        curves = curves.drop_duplicates(curve_key, keep="last").sort_values(curve_key, kind="stable")
        curves = curves.reset_index(drop=True)
    points = _concat(point_frames, POINT_COLUMNS)
    if len(points):
        points = points.drop_duplicates(["run_id", "kind", "tokens"], keep="last").reset_index(drop=True)
    tables = Tables(trials, curves, points)
    if write:  # only once every run folder read back whole: a damaged table is set aside, then rebuilt
        folder_state.set_aside_damaged_tables(out, ("trials", "curves", "points"))
        for name, frame in (("trials", trials), ("curves", curves), ("points", points)):
            _write_parquet(frame, out / f"{name}.parquet")
    return tables


def point_budgets(plan: dict, tokens: pd.Series) -> list[float | None] | None:
    """The IsoFLOP budget of each of a trial's points: the trial's own (`isoflop`), or, for a trial with
    cool-down branches (`isoflop-branches`), the planned point with those tokens; a point the plan does
    not list (none should be) gets the planned budget nearest its C = 6 N D in log C. None: no budgets."""
    if plan.get("budget") is not None:
        return [plan["budget"]] * len(tokens)
    planned = [p for p in plan.get("points") or [] if p.get("budget") is not None]
    if not planned:
        return None
    by_tokens = {int(p["tokens"]): float(p["budget"]) for p in planned}
    params = float(plan.get("params") or 0.0)
    out: list[float | None] = []
    for d in list(tokens.tolist() if hasattr(tokens, "tolist") else tokens):
        if not isinstance(d, (int, float)) or not math.isfinite(d):
            out.append(None)
        elif int(d) in by_tokens:
            out.append(by_tokens[int(d)])
        else:
            c = 6.0 * params * float(d)
            out.append(min(by_tokens.values(), key=lambda b: abs(math.log(b / c))) if c > 0 else None)
    return out


def _status(recorded: str | None, st: dict) -> str:
    """Trial status from train()'s record, corrected by what Ray saw (a crashed trial stays 'running' in
    its own record; Ray marks it failed once retries are spent)."""
    if recorded in FINAL_STATUSES:
        return recorded
    if st.get("status") == "failed":
        return "failed"
    return recorded or "running"


def _plan_row(plan: dict, sweep: str | None, unique_tokens: int | None = None) -> dict:
    """A trials row for a trial that failed before writing one: planned N, D, FLOPs, the corpus's train
    tokens U (the manifest's `n_train_tokens`), no loss."""
    row = {k: plan.get(k) for k in (
        "run_id", "n_layer", "d_model", "n_head", "d_ff", "params", "params_embedding", "params_nonembedding",
        "tokens", "flops_6nd", "flops_detailed", "lr", "batch_tokens", "seed")}
    cfg = plan.get("config", {})
    row.update(sweep=sweep, context=cfg.get("model", {}).get("context"), vocab_size=cfg.get("model", {}).get("vocab_size"),
               schedule=cfg.get("train", {}).get("schedule"), tokens_seen=0, final_loss=math.nan,
               final_train_loss=math.nan, epochs=0.0, wall_s=0.0, tokens_per_s=math.nan, mfu=math.nan,
               device=cfg.get("train", {}).get("device"), unique_tokens=unique_tokens)
    return row


def _frame(rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    columns = list(columns)
    frame = pd.DataFrame(rows)
    for c in columns:
        if c not in frame.columns:
            frame[c] = pd.Series(dtype="float64")
    rest = [c for c in frame.columns if c not in columns]
    return frame[columns + rest]


def _concat(frames: list[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    columns = list(columns)
    if not frames:
        return _frame([], columns)
    frame = pd.concat(frames, ignore_index=True)
    return _frame(frame.to_dict("records"), columns) if set(columns) - set(frame.columns) else frame[
        columns + [c for c in frame.columns if c not in columns]]


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame = frame.copy()
    for c in frame.columns:  # mixed object columns (e.g. None + str) must be one type for Arrow
        if frame[c].dtype == object:
            frame[c] = frame[c].map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v, default=str))
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    write_atomic(path, buf.getvalue())  # temp file in the folder, fsync, rename; no temp left on failure


def read_tables(out: str | Path) -> Tables:
    out = Path(out)
    return Tables(*(pd.read_parquet(out / f"{n}.parquet") for n in ("trials", "curves", "points")))


# --- status ---------------------------------------------------------------------------------------

def _live_status(record: dict, st: dict, alive: bool | None) -> str:
    """completed/diverged/failed as recorded; running while a live driver has it; `stopped` when it was
    started but its driver is gone (Ctrl-C, a crash: `scaling sweep resume` continues it); else pending."""
    if record.get("status") in FINAL_STATUSES:
        return record["status"]
    if st.get("status") == "failed":
        return "failed"
    started = bool(record) or st.get("status") in ("running", "restarting")
    if not started:
        return "pending"
    return "stopped" if alive is False else "running"


def _points_done(out: Path, run_id: str) -> int:
    """Fit-ready points a run has measured so far: distinct (kind, tokens) rows of its points.csv with a
    finite loss (a WSD trial gains one at every cool-down branch's end, before the trial completes)."""
    points = folder_state.read_run_csv(out, run_id, "points.csv")
    if points is None or not len(points):
        return 0
    ok = points[pd.to_numeric(points["loss"], errors="coerce").notna()]
    return int(len(ok.drop_duplicates(["kind", "tokens"])))


def status(out: str | Path, *, write_tables: bool = True) -> dict:
    """Progress of a sweep: counts by status, fit-ready points measured of those planned (a trial with
    cool-down branches plans one per branch plus its final point), FLOPs done (cool-downs included),
    aggregate tokens/s, ETA, one line per trial.

    Trial statuses: completed, diverged, failed, running, pending, and `stopped` (started, but the
    driver is no longer running: resume the sweep to finish it)."""
    out = Path(out)
    manifest = read_manifest(out)
    state = read_state(out)
    folder_state.check_spec_copy(out)
    if write_tables:
        collect(out)
    trials = []
    counts = {"completed": 0, "running": 0, "stopped": 0, "failed": 0, "diverged": 0, "pending": 0}
    flops_total = flops_done = 0.0
    points_done = points_planned = 0
    rate = 0.0
    alive = driver_alive(out)
    for plan in manifest.get("trials", []):
        run_id = plan["run_id"]
        record = trial_record(out, run_id) or {}
        st = state.get(run_id, {})
        status_ = _live_status(record, st, alive)
        counts[status_] = counts.get(status_, 0) + 1
        planned = float(plan.get("flops_total") or plan.get("flops_6nd") or 0.0)
        flops_total += planned
        to_train = float(planned / (6.0 * float(plan["params"]))) if plan.get("params") else float(plan["tokens"])
        seen = float(record.get("tokens_processed") or record.get("tokens_seen") or st.get("tokens") or 0.0)
        frac = 1.0 if status_ in FINAL_STATUSES else min(1.0, seen / max(1.0, to_train))
        n_planned = len(plan.get("points") or [None])
        n_done = _points_done(out, run_id)
        points_planned += n_planned
        points_done += n_done
        flops_done += planned * frac
        tps = record.get("tokens_per_s") or st.get("tokens_per_s")
        if status_ == "running" and alive is not False and tps and st.get("status") == "running":
            rate += float(tps) * 6.0 * float(plan["params"])
        trials.append({
            "run_id": run_id,
            "status": status_,
            "params": plan.get("params"),
            "tokens": plan.get("tokens"),
            "tokens_seen": int(seen),
            "progress": frac,
            "val_loss": record.get("final_loss"),
            "tokens_per_s": tps,
            "points_done": n_done,
            "points_planned": n_planned,
            "attempts": int(st.get("attempts", 0) or 0),
            "error": st.get("error") if status_ == "failed" else None,
        })
    remaining = max(0.0, flops_total - flops_done)
    eta = remaining / rate if rate > 0 else None
    return {
        "sweep": manifest.get("name"),
        "folder": str(out),
        "driver": {True: "running", False: "not running", None: "on another host"}[alive],
        "n_trials": len(trials),
        "counts": counts,
        "points_done": points_done,
        "points_planned": points_planned,
        "flops_total": flops_total,
        "flops_done": flops_done,
        "flops_per_s": rate,
        "eta_s": eta,
        "trials": trials,
    }

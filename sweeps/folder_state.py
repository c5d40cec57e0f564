"""A sweep folder read back, checked: every file the sweep wrote and reads again is validated where it is
read, and a damaged one is one line naming it (`scaling.damage.DamagedStateError`, exit 2) that says what
to do, never a silent default that would throw progress away.

    sweep.json            the plan: cannot be rebuilt (restore it, or launch spec.yaml into a new folder)
    state.json            the driver's view: delete it and `scaling sweep resume` starts it again
    spec.yaml             a copy of sweep.json's spec for reading: delete it, `resume` writes it again
    runs/<id>/trial.json, curves.csv, points.csv, config.json
                          a run's rows: `scaling sweep resume` writes them again from the run's checkpoint
                          (`repair_runs`, the damaged file set aside as `<name>.damaged`)
    runs/<id>/checkpoint  a run's progress: delete it to restart that trial from step 0
    *.parquet             derived tables: rebuilt from the run folders (`set_aside_damaged_tables`, a warning)
    logs/ray.log          Ray's own output during launch/resume (`sweeps.ray_logs`): appended, never read back
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from contracts.jsonio import write_atomic
from contracts.runs_table import FINAL_STATUSES
from scaling.damage import RESTART, DamagedStateError, check_fields, read_state_csv, read_state_json, set_aside
from scaling.errors import ScalingError

MANIFEST = "sweep.json"
STATE = "state.json"
SPEC_COPY = "spec.yaml"
RUNS = "runs"
ROW_FILES = {"trial.json": (), "curves.csv": ("step", "tokens", "val_loss"),
             "points.csv": ("kind", "tokens", "loss"), "config.json": ()}
"""A run folder's files that `scaling.train` rewrites from the run's checkpoint (CSV: the columns read back)."""


class SweepFolderError(ScalingError):
    """The folder is not a sweep (``runs/x: no sweep.json here; was it made by scaling sweep launch?``)."""


def run_dir(out: str | Path, run_id: str) -> Path:
    return Path(out) / RUNS / run_id


def _resume_remedy(out: Path) -> str:
    return f"`scaling sweep resume {out}` writes it again from the run's checkpoint (the damaged file kept beside)"


def read_manifest(out: str | Path) -> dict:
    """`<out>/sweep.json`, checked: a name and a list of planned trials, each with a run_id."""
    out = Path(out)
    path = out / MANIFEST
    if not path.exists() and not path.is_symlink():
        if not out.exists():
            raise SweepFolderError(f"{out}: no such sweep folder")
        raise SweepFolderError(f"{out}: no {MANIFEST} here; is this a folder made by `scaling sweep launch`?")
    remedy = (f"it is the sweep's plan and cannot be rebuilt: restore it from a backup, or launch "
              f"{out / SPEC_COPY} into a new folder (the run folders here are untouched)")
    manifest = read_state_json(path, remedy, kind="sweep manifest")
    check_fields(path, manifest, {"name": str, "trials": list}, remedy)
    for i, trial in enumerate(manifest["trials"]):
        if not isinstance(trial, dict) or not isinstance(trial.get("run_id"), str) or not trial["run_id"]:
            raise DamagedStateError(path, f"damaged (trials[{i}] has no run_id)", remedy)
    return manifest


def read_state(out: str | Path) -> dict[str, dict]:
    """`<out>/state.json` (the driver's view of each trial), {} before the driver wrote one."""
    path = Path(out) / STATE
    if not path.exists() and not path.is_symlink():
        return {}
    remedy = (f"delete it and `scaling sweep resume {Path(out)}` starts it again from the run folders "
              f"(failed trials' attempt counts and errors are lost)")
    state = read_state_json(path, remedy, kind="sweep state")
    for run_id, entry in state.items():
        if not isinstance(entry, dict):
            raise DamagedStateError(path, f"damaged (the entry of {run_id!r} is not an object)", remedy)
    return state


def check_spec_copy(out: str | Path) -> None:
    """`<out>/spec.yaml`, when there, must be the YAML mapping `launch` wrote."""
    path = Path(out) / SPEC_COPY
    if not path.exists() and not path.is_symlink():
        return
    remedy = f"it is a copy of the spec in {MANIFEST}: delete it and `scaling sweep resume {Path(out)}` writes it again"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DamagedStateError(path, "damaged (not UTF-8 text)", remedy) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise DamagedStateError(path, f"damaged (not YAML: {str(exc).splitlines()[0]})", remedy) from None
    except OSError as exc:
        raise DamagedStateError(path, f"unreadable ({exc.strerror or exc})", remedy) from None
    if not isinstance(doc, dict):
        raise DamagedStateError(path, f"damaged (a {type(doc).__name__}, not a spec mapping)", remedy)


def write_spec_copy(out: Path, spec: dict) -> None:
    """Write `<out>/spec.yaml` again when it is missing (`resume`, after the user deleted a damaged one)."""
    if not (out / SPEC_COPY).exists():
        write_atomic(out / SPEC_COPY, yaml.safe_dump(spec, sort_keys=False))


def trial_record(out: str | Path, run_id: str) -> dict | None:
    """The trial row `train()` last wrote for this run (None before its first evaluation)."""
    path = run_dir(out, run_id) / "trial.json"
    if not path.exists() and not path.is_symlink():
        return None
    record = read_state_json(path, _resume_remedy(Path(out)), kind="trial")
    check_fields(path, record, {"status": str}, _resume_remedy(Path(out)))
    return record


def read_run_csv(out: str | Path, run_id: str, name: str) -> pd.DataFrame | None:
    """A run's curves.csv or points.csv as a frame (None when absent or without rows), checked first."""
    path = run_dir(out, run_id) / name
    rows = read_state_csv(path, ROW_FILES[name], _resume_remedy(Path(out)))
    if not rows:
        return None
    return pd.read_csv(path)


def check_run(out: Path, run_id: str) -> list[DamagedStateError]:
    """The damage in one run folder's row files (trial.json, curves.csv, points.csv, config.json)."""
    found = []
    checks = {
        "trial.json": lambda: trial_record(out, run_id),
        "curves.csv": lambda: read_run_csv(out, run_id, "curves.csv"),
        "points.csv": lambda: read_run_csv(out, run_id, "points.csv"),
        "config.json": lambda: _check_config(run_dir(out, run_id) / "config.json", _resume_remedy(out)),
    }
    for check in checks.values():
        try:
            check()
        except DamagedStateError as exc:
            found.append(exc)
    return found


def _check_config(path: Path, remedy: str) -> None:
    if path.exists() or path.is_symlink():
        check_fields(path, read_state_json(path, remedy, kind="run config"),
                     {"model": dict, "data": dict, "train": dict}, remedy)


def check_checkpoint(out: Path, run_id: str) -> dict | None:
    """The meta of a run's checkpoint (None: it has none), or a `DamagedStateError` saying how to restart it."""
    from scaling import checkpoint as ckpt

    try:
        folder = ckpt.find_checkpoint(run_dir(out, run_id))
        return None if folder is None else ckpt.check_folder(folder)
    except DamagedStateError as exc:
        if exc.remedy != RESTART:  # e.g. a meta.json written again from state.pt: no need to restart
            raise
        raise exc.with_remedy(f"delete {run_dir(out, run_id) / ckpt.DIR_NAME} to restart trial {run_id} from "
                              f"step 0, then `scaling sweep resume {out}`") from None


def repair_runs(out: Path, manifest: dict) -> list[str]:
    """Before `resume`: every run folder checked, and the checkpoint of every unfinished run. A damaged row file (trial.json, curves.csv, points.csv,
    config.json) of a run with an intact checkpoint is set aside as `<name>.damaged` and written again from
    the checkpoint (a finished run here, at once; an unfinished one by its trial); a damaged checkpoint, or
    damaged rows without one, is a `DamagedStateError`. Returns the warnings, one line each."""
    warnings = []
    for plan in manifest["trials"]:
        run_id = plan["run_id"]
        if not run_dir(out, run_id).exists():
            continue
        damaged = check_run(out, run_id)
        if not damaged and _finished(trial_record(out, run_id)):
            continue  # its checkpoint is not read again
        meta = check_checkpoint(out, run_id)
        if not damaged:
            continue
        if meta is None:
            first = damaged[0]
            raise first.with_remedy(f"trial {run_id} has no checkpoint to rebuild it from: restore it, or delete "
                                    f"{run_dir(out, run_id)} to train the trial again")
        for exc in damaged:
            kept = set_aside(exc.path)
            warnings.append(f"{exc.path}: {exc.problem}; kept as {kept.name}, written again from the checkpoint")
        if meta.get("status") in FINAL_STATUSES:
            _rewrite_rows(plan, run_dir(out, run_id))
    return warnings


def _finished(record: dict | None) -> bool:
    return bool(record) and record.get("status") in FINAL_STATUSES


def _rewrite_rows(plan: dict, rdir: Path) -> None:
    """A finished run's trial.json, curves.csv, points.csv and config.json, written again from its checkpoint
    (`scaling.train.train` on a finished checkpoint trains nothing and writes its rows)."""
    from scaling.config import RunConfig
    from scaling.train import train

    train(RunConfig.model_validate(plan["config"]), rdir, resume=True, progress=False)


def set_aside_damaged_tables(out: Path, names: tuple[str, ...]) -> None:
    """Before the tables are written again: each existing `<name>.parquet` Arrow cannot read is renamed to
    `<name>.parquet.damaged` (never overwritten unread), with one warning line on stderr."""
    for name in names:
        path = out / f"{name}.parquet"
        if not path.exists() and not path.is_symlink():
            continue
        problem = _parquet_problem(path)
        if problem:
            kept = set_aside(path)
            print(f"warning: {path}: damaged ({problem}); rebuilt from the run folders, the damaged file kept as "
                  f"{kept.name}", file=sys.stderr)


def _parquet_problem(path: Path) -> str | None:
    """Why Arrow cannot read a Parquet file, in a few words; None when it can."""
    import pyarrow.parquet as pq

    try:
        pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - Arrow reports damage as ArrowInvalid, OSError, ...
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return text[:120]
    return None


def problems(out: Path, manifest: dict[str, Any]) -> None:
    """Raise the first damage of a sweep folder's own files (state.json, spec.yaml, run folders' rows), for
    `status` (which reads them and must not report a damaged trial as not started)."""
    read_state(out)
    check_spec_copy(out)
    for plan in manifest["trials"]:
        found = check_run(out, plan["run_id"])
        if found:
            raise found[0]

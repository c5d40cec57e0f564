"""Read training curves (approach 1): one row per evaluation of a run, `run_id, tokens, val_loss`, plus
each run's N (from `trials` in a sweep folder, or a column of the same table).

The column roles, the validation and the one-line `InputError`s are those of `analysis.io` (points);
this module adds the run column and, in a sweep or run folder, joins N from the trials and makes each
WSD cool-down branch its own curve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.io import (CURVE_COLUMNS, _auto, _convention, _convention_column, _flat, _keep_completed, _list,
                         _numeric, _tokens_and_flops)
from analysis.tables import folder_table, read_table
from contracts.conventions import FLOPS_6ND, N_CONVENTION_COLUMNS
from contracts.jsonio import read_json_object
from contracts.runs_table import run_table_file, sweep_table_file


@dataclass(frozen=True)
class Curves:
    """Validated training curves: one row per evaluation, with the curve (run) it belongs to and its N."""

    run: np.ndarray
    N: np.ndarray
    D: np.ndarray
    C: np.ndarray
    loss: np.ndarray
    source: str = "arrays"
    columns: dict[str, str] = field(default_factory=dict)
    n_convention: str = "total"
    flops_convention: str = FLOPS_6ND

    def __len__(self) -> int:
        return int(self.N.shape[0])


def load_curves(source: str | Path, *, run_col: str | None = None, n_col: str | None = None,
                d_col: str | None = None, c_col: str | None = None, loss_col: str | None = None,
                n_convention: str | None = None) -> Curves:
    """Training curves from a sweep folder (`curves.parquet` + `trials.parquet`), a run folder
    (`curves.csv` + `trial.json`) or one CSV/Parquet file with a run column, tokens, loss and N.

    In a folder N comes from the trials (params, or params_nonembedding by `n_convention`), only
    completed runs are kept, and a `branch` column (WSD cool-down branches) makes each branch its
    own curve. The loss defaults to `val_loss`.
    """
    path = Path(source)
    conv_col = _convention_column(n_convention, str(path)) if n_convention else None
    if path.is_dir():
        df, name, kind = folder_table(path, "curves")
        df = df.copy()
        table_file = sweep_table_file if kind == "sweep" else run_table_file
        trials_path = path / table_file("trials")
        if not trials_path.exists():
            raise InputError(f"{path}: {kind} folder has {table_file('curves')} but no {table_file('trials')} "
                             "(needed for N)")
        if kind == "sweep":
            trials = _keep_completed(read_table(trials_path), str(trials_path))
        else:
            trial = read_json_object(trials_path, "trial", error=InputError)
            trials = _keep_completed(pd.DataFrame([trial]), str(trials_path))
        ncol = n_col or conv_col or N_CONVENTION_COLUMNS["total"]
        for col in (CURVE_COLUMNS["run"], ncol):
            if col not in trials.columns:
                raise InputError(f"{path}: trials have no column {col!r}")
        run_id = CURVE_COLUMNS["run"]
        df = df[df[run_id].isin(set(trials[run_id]))]
        df = df.merge(trials[[run_id, ncol]].rename(columns={ncol: "__N"}), on=run_id, how="left")
        if "branch" in df.columns:
            branch = df["branch"].astype("string").fillna("")
            df["__curve"] = df[run_id].astype(str) + np.where(branch != "", "/" + branch, "")
            run = "__curve"
        else:
            run = run_id
        columns = {"run": run, "n": "__N", "d": d_col or CURVE_COLUMNS["d"], "c": c_col,
                   "loss": loss_col or CURVE_COLUMNS["loss"]}
        curves = curves_from_frame(df, columns, source=name, n_convention=_convention(n_convention, ncol, name))
        return replace(curves, columns={**curves.columns, "run": CURVE_COLUMNS["run"], "n": ncol})
    df, name = read_table(path), str(path)
    df = _keep_completed(df, name)
    columns = {"run": run_col or CURVE_COLUMNS["run"], "n": n_col or conv_col, "d": d_col, "c": c_col,
               "loss": loss_col}
    if columns["n"] is None:
        columns["n"] = _auto(df, "n", name)
    if columns["d"] is None and columns["c"] is None:
        columns["d"] = _auto(df, "d", name)
    if columns["loss"] is None:
        columns["loss"] = CURVE_COLUMNS["loss"] if CURVE_COLUMNS["loss"] in df.columns else _auto(df, "loss", name)
    return curves_from_frame(df, columns, source=name, n_convention=n_convention)


def curves_from_frame(df: pd.DataFrame, columns: Mapping[str, str | None], *, source: str = "DataFrame",
                      n_convention: str | None = None) -> Curves:
    """Curves from a DataFrame and a column map with roles run, n, loss, and d or c."""
    columns = {k: v for k, v in dict(columns).items() if v is not None}
    for role in ("run", "n", "loss"):
        if role not in columns:
            raise InputError(f"{source}: no column given for {role!r} (columns: {_list(df)})")
    if "d" not in columns and "c" not in columns:
        raise InputError(f"{source}: need a tokens column (d) or a FLOPs column (c) (columns: {_list(df)})")
    if columns["run"] not in df.columns:
        raise InputError(f"{source}: column {columns['run']!r} not found (columns: {_list(df)})")
    N = _numeric(df, columns["n"], source)
    loss = _numeric(df, columns["loss"], source)
    D, C, flops, used = _tokens_and_flops(df, columns, N, source)
    if len(N) == 0:
        raise InputError(f"{source}: no rows to fit")
    return Curves(run=df[columns["run"]].astype(str).to_numpy(), N=N, D=D, C=C, loss=loss, source=source,
                  columns=used, n_convention=_convention(n_convention, columns["n"], source),
                  flops_convention=flops)


def curves_from_arrays(run: Any, N: Any, D: Any, loss: Any, *, source: str = "arrays",
                       n_convention: str = "total") -> Curves:
    """Curves from arrays: run ids, N, tokens D and loss, one entry per evaluation."""
    frame = pd.DataFrame({"run": np.asarray(run).ravel(), "N": _flat(N, "N", source),
                          "D": _flat(D, "D", source), "loss": _flat(loss, "loss", source)})
    return curves_from_frame(frame, {"run": "run", "n": "N", "d": "D", "loss": "loss"}, source=source,
                             n_convention=n_convention)

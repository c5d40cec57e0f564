"""`scaling hparams`: the optimal peak LR (and batch) of every (N, D) cell of a sweep, and their laws.

    fit_hparams(table)  -> HparamsResult: cells, the LR law, the batch law (when the table varies the
                           batch), predictions at (N, D) points
    HparamsResult.to_dict() / read_hparams(path)   the one JSON contract (`contracts/output.schema.json`
                           "hparams"); the file written by `--out` carries the bootstrap draws, so a plan
                           can put an interval on the LR of any run (`analysis.hparams.plan_settings`)

Rows: a sweep folder's `points` (with `lr` and `batch_tokens` from its `trials` table), a run folder, or
a CSV/Parquet file with one row per (N, D, setting) run. Rows whose status is `diverged` or whose loss
is not finite are diverged settings (kept as the edge of a cell's basin, `analysis.hparams.cells`);
`failed`/`running` rows are left out with a warning. When the table varies both LR and batch, each
setting's optimum is taken on the profile: for every (N, D, lr) the best loss over batches, and for
every (N, D, batch) the best loss over LRs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.hparams.cells import DEFAULT_BAND, CellOptimum, cell_optimum
from analysis.hparams.law import HparamLaw, law_text
from analysis.io import FitWarning, points_from_frame
from analysis.tables import folder_table, read_table
from contracts import jsonio
from contracts.outputs import UNITS, stamp

SETTINGS = {"lr": "peak LR", "batch": "batch (tokens/step)"}
MIN_CELLS = 3


@dataclass
class SettingLaw:
    """One setting's cells and fitted law (None when too few cells were kept)."""

    setting: str            # "lr" or "batch"
    column: str
    cells: list[CellOptimum]
    law: HparamLaw

    def to_dict(self, draws: bool = False) -> dict[str, Any]:
        d = self.law.to_dict()
        if not draws:
            d.pop("draws")
        return {"column": self.column, "law": law_text(self.law.form_, self.setting), **d,
                "cells": [c.to_dict() for c in self.cells]}

    @classmethod
    def from_dict(cls, setting: str, d: dict) -> "SettingLaw":
        cells = [CellOptimum(**{**c, "settings": tuple(c.get("settings", ())), "losses": tuple(c.get("losses", ()))})
                 for c in d.get("cells", [])]
        return cls(setting, d.get("column", setting), cells, HparamLaw.from_dict(d))


@dataclass
class HparamsResult:
    source: str
    lr: SettingLaw
    batch: SettingLaw | None
    n_convention: str = "total"
    predictions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def predict(self, N: float, D: float) -> dict[str, Any]:
        """{"N", "D", "lr", "lr_interval", "batch_tokens", "batch_interval"} at one (N, D)."""
        out: dict[str, Any] = {"N": float(N), "D": float(D)}
        for key, block, name in (("lr", self.lr, "lr"), ("batch", self.batch, "batch_tokens")):
            if block is None:
                out[name], out[f"{key}_interval"] = None, None
                continue
            value = float(block.law.predict(N, D)[0])
            lo, hi = (float(v[0]) for v in block.law.predict_interval(N, D))
            out[name], out[f"{key}_interval"] = value, (None if np.isnan(lo) else [lo, hi])
        return out

    def at(self, points: list[tuple[float, float]]) -> "HparamsResult":
        self.predictions = [self.predict(N, D) for N, D in points]
        return self

    def to_dict(self, draws: bool = False) -> dict[str, Any]:
        return stamp({"kind": "hparams", "source": self.source, "n_convention": self.n_convention,
                      "lr": self.lr.to_dict(draws), "batch": None if self.batch is None else self.batch.to_dict(draws),
                      "predictions": self.predictions, "notes": self.notes,
                      "units": {**UNITS, "lr": "peak learning rate", "batch_tokens": "tokens per optimiser step"}})

    def summary(self) -> str:
        from analysis.hparams.text import summary

        return summary(self)


def fit_hparams(source: str | Path | pd.DataFrame, columns: dict[str, str | None] | None = None, *,
                lr_col: str = "lr", batch_col: str | None = "batch_tokens", n_convention: str | None = None,
                band: float = DEFAULT_BAND, form: str = "auto", bootstrap: int = 1000, level: float = 0.95,
                random_state: int = 0) -> HparamsResult:
    """The cells, the LR law and (when the table varies `batch_col`) the batch law of a sweep table."""
    if not (np.isfinite(band) and 0 <= band < 1):
        raise InputError(f"--band: {band} is not a fraction in [0, 1)")
    df, name = hparam_frame(source, lr_col, batch_col)
    pts = _points(df, columns or {}, name, n_convention)
    rows = pd.DataFrame({"N": pts.N, "D": snap_tokens(pts.N, pts.D), "C": pts.C, "loss": df["__loss"].to_numpy(float),
                         "lr": _setting(df, lr_col, name)})
    varied = batch_col is not None and batch_col in df.columns and df[batch_col].nunique() > 1
    if varied:
        rows["batch"] = _setting(df, batch_col, name)
    laws: dict[str, SettingLaw | None] = {}
    for setting, col in (("lr", lr_col), ("batch", batch_col if varied else None)):
        if col is None:
            laws[setting] = None
            continue
        cells = cell_table(rows, setting, "batch" if setting == "lr" and varied else
                           ("lr" if setting == "batch" else None), band)
        kept = [c for c in cells if c.kept]
        if len(kept) < MIN_CELLS:
            why = pd.Series([c.reason.split(" (")[0].split(";")[0] for c in cells if not c.kept]).value_counts()
            msg = (f"{name}: {len(kept)} of {len(cells)} (N, D) cells have a bracketed {SETTINGS[setting]} optimum "
                   f"(column {col!r}); a law needs {MIN_CELLS} at 2 budgets or more (kept out: "
                   + ", ".join(f"{n} {r}" for r, n in why.items()) + ")")
            if setting == "lr":
                raise InputError(msg)
            warnings.warn(msg + "; no batch law", FitWarning, stacklevel=2)
            laws[setting] = None
            continue
        _warn_kept_out(cells, setting, col, name)
        law = HparamLaw(form=form, bootstrap=bootstrap, interval_level=level, random_state=random_state)
        try:
            law.fit([c.N for c in kept], [c.D for c in kept], [c.C for c in kept], [c.optimum for c in kept])
        except ValueError as exc:
            raise InputError(f"{name}: {SETTINGS[setting]}: {exc}") from None
        laws[setting] = SettingLaw(setting, col, cells, law)
    return HparamsResult(source=name, lr=laws["lr"], batch=laws["batch"], n_convention=pts.n_convention)


D_RTOL = 0.02
"""Runs of one size whose D differ by less than 2% are one cell: a sweep rounds D to whole steps of each
trial's batch, so batch multipliers give a cell several D within a step or two."""


def snap_tokens(N: np.ndarray, D: np.ndarray, rtol: float = D_RTOL) -> np.ndarray:
    """D with the values of each N that lie within `rtol` of their group's first replaced by the group's
    geometric mean."""
    out = D.astype(float).copy()
    for n in np.unique(N):
        idx = np.flatnonzero(N == n)
        order = idx[np.argsort(D[idx])]
        start = 0
        for k in range(1, len(order) + 1):
            if k == len(order) or D[order[k]] > D[order[start]] * (1 + rtol):
                group = order[start:k]
                if D[group].min() < D[group].max():
                    out[group] = float(np.exp(np.mean(np.log(D[group]))))
                start = k
    return out


def hparam_frame(source: str | Path | pd.DataFrame, lr_col: str, batch_col: str | None) -> tuple[pd.DataFrame, str]:
    """The rows of one (N, D, setting) run each, with `__loss` (inf for a diverged run) and only
    completed or diverged rows (a FitWarning counts the rest)."""
    if isinstance(source, pd.DataFrame):
        df, name = source.copy(), "DataFrame"
    elif Path(source).is_dir():
        df, name, _ = folder_table(Path(source), "points")
        df = _with_trial_settings(Path(source), df, [lr_col, batch_col, "lr_multiplier"])
    else:
        df, name = read_table(source), str(source)
    if lr_col not in df.columns:
        raise InputError(f"{name}: no LR column {lr_col!r} (columns: {', '.join(map(str, df.columns[:12]))}); "
                         "name it with --lr-col")
    loss_col = "loss" if "loss" in df.columns else ("final_loss" if "final_loss" in df.columns else None)
    df = df.reset_index(drop=True)
    status = df["status"].astype(str) if "status" in df.columns else pd.Series("completed", index=df.index)
    other = ~status.isin(["completed", "diverged"])
    if other.any():
        warnings.warn(f"{name}: left out {int(other.sum())} of {len(df)} rows that neither completed nor diverged "
                      f"({', '.join(sorted(set(status[other])))})", FitWarning, stacklevel=3)
        df, status = df[~other].reset_index(drop=True), status[~other].reset_index(drop=True)
    df.attrs["loss_col"] = loss_col
    df["__diverged"] = (status == "diverged").to_numpy()
    return df, name


def _with_trial_settings(folder: Path, points: pd.DataFrame, cols: list[str | None]) -> pd.DataFrame:
    """A sweep's points with the trials' LR/batch columns (the points table records neither)."""
    want = [c for c in cols if c and c not in points.columns]
    if not want or "run_id" not in points.columns:
        return points
    try:
        trials, _, _ = folder_table(folder, "trials")
    except InputError:
        return points
    have = [c for c in want if c in trials.columns]
    if not have or "run_id" not in trials.columns:
        return points
    return points.merge(trials[["run_id", *have]].drop_duplicates("run_id"), on="run_id", how="left")


def _points(df: pd.DataFrame, columns: dict[str, str | None], name: str, n_convention: str | None):
    """Validated N, D, C of every row (`analysis.io.points_from_frame`); a diverged row's loss is
    stood in by 1 for the validation and kept as inf in `__loss`."""
    loss_col = columns.get("loss") or df.attrs.get("loss_col")
    if loss_col is None or loss_col not in df.columns:
        raise InputError(f"{name}: no loss column {loss_col or 'loss'!r}; name it with --loss-col")
    raw = pd.to_numeric(df[loss_col], errors="coerce").to_numpy(dtype=float)
    bad_text = df[loss_col].notna().to_numpy() & np.isnan(raw)
    if bad_text.any():
        i = int(np.flatnonzero(bad_text)[0])
        raise InputError(f"{name}: column {loss_col!r}, row {i + 1}: {df[loss_col].iloc[i]!r} is not a number")
    diverged = df["__diverged"].to_numpy() | ~np.isfinite(raw)
    df["__loss"] = np.where(diverged, np.inf, raw)
    frame = df.assign(**{loss_col: np.where(diverged, 1.0, raw)})
    return points_from_frame(frame, {**columns, "loss": loss_col}, source=name, n_convention=n_convention)


def _setting(df: pd.DataFrame, col: str, name: str) -> np.ndarray:
    """Column `col` as positive finite numbers, or an InputError naming the first bad row."""
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{name}: column {col!r}, row {i + 1}: {df[col].iloc[i]!r} is not a positive finite "
                         f"setting{f' ({int(bad.sum()) - 1} more bad rows)' if bad.sum() > 1 else ''}")
    return values


def cell_table(rows: pd.DataFrame, setting: str, profile: str | None, band: float) -> list[CellOptimum]:
    """`cell_optimum` of every (N, D) cell for `setting`; with `profile` (the other varied setting) each
    setting's loss is its best over the other's values (seeds averaged first)."""
    keys = ["N", "D", setting] + ([profile] if profile else [])
    per = rows.groupby(keys, sort=True)["loss"].mean().reset_index()
    if profile:
        per = per.groupby(["N", "D", setting], sort=True)["loss"].min().reset_index()
    C = rows.groupby(["N", "D"])["C"].mean()
    return [cell_optimum(N, D, float(C[(N, D)]), g[setting].to_numpy(), g["loss"].to_numpy(), band=band)
            for (N, D), g in per.groupby(["N", "D"], sort=True)]


def _warn_kept_out(cells: list[CellOptimum], setting: str, col: str, name: str) -> None:
    """One FitWarning per cell kept out of the law, naming it and why."""
    for c in cells:
        if not c.kept:
            warnings.warn(f"{name}: {SETTINGS[setting]} ({col}): cell N={c.N:.4g}, D={c.D:.4g} kept out of the law: "
                          f"{c.reason}", FitWarning, stacklevel=3)


def read_hparams(path: str | Path) -> HparamsResult:
    """The result `scaling hparams --out` wrote; InputError naming the file when it is not one."""
    d = jsonio.read_json_object(path, "hparams", InputError)
    if d.get("kind") != "hparams" or not isinstance(d.get("lr"), dict):
        raise InputError(f"{path}: not an hparams JSON (write one with scaling hparams TABLE --out FILE)")
    try:
        lr = SettingLaw.from_dict("lr", d["lr"])
        batch = None if d.get("batch") is None else SettingLaw.from_dict("batch", d["batch"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: damaged hparams JSON ({type(exc).__name__}: {exc})") from None
    for block in (lr, batch):
        if block is not None and not np.all(np.isfinite(block.law.coef_)):
            raise InputError(f"{path}: damaged hparams JSON (non-finite law parameters)")
    return HparamsResult(source=d.get("source", str(path)), lr=lr, batch=batch,
                         n_convention=d.get("n_convention", "total"), notes=list(d.get("notes") or []))


def plan_settings(result: HparamsResult, N: float, D: float, *, context: int, source: str) -> dict[str, Any]:
    """The LR and batch a planned run of N parameters and D tokens should use, from a fitted `result`:
    {"lr", "lr_interval", "batch_tokens" (rounded to a whole number of `context`-token sequences, or None
    without a batch law), "batch_interval", "lr_source"} for `scaling plan --hparams`."""
    p = result.predict(N, D)
    batch = p["batch_tokens"]
    if batch is not None:
        batch = int(max(1, round(batch / context)) * context)
    law = result.lr.law
    where = (f"scaling hparams {source}: {law_text(law.form_, 'lr')} fitted on {sum(c.kept for c in result.lr.cells)} "
             f"cells of {result.source}, at N={N:.4g}, D={D:.4g}")
    if batch is not None:
        where += f"; batch from {law_text(result.batch.law.form_, 'B')}"
    return {"lr": p["lr"], "lr_interval": p["lr_interval"], "batch_tokens": batch,
            "batch_interval": p["batch_interval"], "lr_source": where}

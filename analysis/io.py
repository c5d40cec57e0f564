"""Read the tables the fitters work on: CSV, Parquet, a sweep folder or a run folder, with column maps.

A *points* table has one row per measured (N, D, loss): `params, tokens, flops_6nd, loss` in our
sweeps (the `points` table of `contracts.runs_table`), or any names in a published CSV (`Model Size`, `Training FLOP`, ...),
given as a column map with the roles

    n      model size N (parameters; which count, total or non-embedding, is recorded)
    d      training tokens D
    c      training FLOPs C (used for D = C / (6 N) when no D is given, and to group IsoFLOP budgets)
    loss   final loss (nats/token)
    budget the IsoFLOP budget a row belongs to (approach 2, optional)

Curves tables (approach 1: one row per evaluation of a run) are read by `analysis.curves` with the same
column roles and the validation helpers below.

Every problem with the input is an `InputError` whose message is one line naming the file, the
column and the value, e.g. ``runs.csv: column 'loss', row 12: 'abc' is not a number``. Row numbers
count data rows from 1 (the CSV line is one more, for the header).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.provenance import folder_trials, provenance
from analysis.tables import folder_table, read_table
from contracts.conventions import FLOPS_6ND, N_CONVENTION_COLUMNS, convention_of_column, flops_6nd, tokens_for_flops
from contracts.runs_table import CURVE_FIT_COLUMNS, FIT_COLUMNS, FIT_STATUS, UNIQUE_TOKENS

ROLES = ("n", "d", "c", "loss", "budget", "u")

VOCAB_COLUMN = "vocab_size"
"""The trials column (and optional table column) of the vocabulary size V (`Points.vocab_size`)."""

UNIQUE_TOKENS_COLUMN = UNIQUE_TOKENS
"""The default column of the unique tokens U a run's D tokens were drawn from (D > U repeats data); sweep
and run folders record it (`contracts.runs_table.UNIQUE_TOKENS`)."""

FOLDER_COLUMNS = FIT_COLUMNS
"""Default columns of a sweep's `points.parquet` or a run's `points.csv` (`contracts.runs_table`)."""

CURVE_COLUMNS = CURVE_FIT_COLUMNS
"""Default columns of a `curves` table (`contracts.runs_table`)."""

FLOPS_6ND_COLUMNS = (FIT_COLUMNS["c"], "C_6ND")
"""FLOP columns that hold C = 6 N D: the runs table's, and the name in published ladder tables."""

AUTO_COLUMNS = {
    "n": (FIT_COLUMNS["n"], "N"),
    "d": (FIT_COLUMNS["d"], "D"),
    "c": (FIT_COLUMNS["c"], "C"),
    "loss": (FIT_COLUMNS["loss"], "final_loss"),
}
"""Column names tried, in order, for a role the caller did not map (a plain CSV or Parquet file)."""


class FitWarning(UserWarning):
    """Something about the data or a fit the user should know; the CLI prints it as one line."""


@dataclass(frozen=True)
class Points:
    """Validated fit-ready points: N, D, C = 6ND unless given, loss; plus where they came from.

    `columns` maps each role to the column it came from (or to how it was derived), `n_convention`
    says which parameter count N is ("total", "nonembedding" or the column's name), and
    `flops_convention` how C was obtained ("6ND" or the name of a FLOPs column). `other_n`: N of the
    same rows under another convention the table also supports, {convention: (column, values)}
    (a total-N table's `params_nonembedding`; `under` swaps it in). `provenance`: the eval data and
    tokenizer hashes, checkpoints and LR schedule the rows record (`analysis.provenance`).
    """

    N: np.ndarray
    D: np.ndarray
    C: np.ndarray
    loss: np.ndarray
    budget: np.ndarray | None = None
    U: np.ndarray | None = None
    source: str = "arrays"
    columns: dict[str, str] = field(default_factory=dict)
    n_convention: str = "total"
    flops_convention: str = FLOPS_6ND
    notes: tuple[str, ...] = ()
    other_n: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)
    vocab_size: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def under(self, convention: str) -> "Points":
        """The same rows with N under `convention` (one of `other_n`): N, `columns["n"]` and `n_convention`
        swapped, C and D kept (C = 6 N D stays the total-N count it was read as)."""
        if convention == self.n_convention:
            return self
        if convention not in self.other_n:
            raise InputError(f"{self.source}: no {convention} parameter column (have: {self.n_convention}"
                             f"{''.join(', ' + c for c in self.other_n)})")
        col, values = self.other_n[convention]
        other = {k: v for k, v in self.other_n.items() if k != convention} | {
            self.n_convention: (self.columns.get("n", self.n_convention), self.N)}
        return replace(self, N=values, columns=self.columns | {"n": col}, n_convention=convention, other_n=other)

    def distinct_nd(self) -> int:
        """How many distinct (N, D) pairs there are (rows repeating a pair add no information on the
        law's shape; 18 copies of one run cannot pin down 5 parameters)."""
        return len(set(zip(self.N.tolist(), self.D.tolist())))

    def __len__(self) -> int:
        return int(self.N.shape[0])

    def subset(self, mask: np.ndarray) -> "Points":
        """The rows where `mask` (boolean or index array) selects."""
        return replace(self, N=self.N[mask], D=self.D[mask], C=self.C[mask], loss=self.loss[mask],
                       budget=None if self.budget is None else self.budget[mask],
                       U=None if self.U is None else self.U[mask],
                       other_n={k: (c, v[mask]) for k, (c, v) in self.other_n.items()})

    def drop_highest(self, k: int) -> "Points":
        """Leave out the k rows with the highest loss (Besiroglu et al. 2024 drop 5 of Chinchilla's 245)."""
        if k <= 0:
            return self
        if k >= len(self):
            raise InputError(f"{self.source}: cannot drop the {k} highest losses of {len(self)} points")
        keep = np.sort(np.argsort(self.loss, kind="stable")[: len(self) - k])
        out = self.subset(keep)
        return replace(out, notes=out.notes + (f"{k} highest-loss points dropped",))

    def data_range(self) -> dict[str, list[float]]:
        """{"N": [min, max], "D": ..., "C": ..., "loss": ...} of the points fitted."""
        return data_range(self)

    def describe(self) -> str:
        """One line for reports: the source, the number of points and any notes."""
        extra = "; ".join(self.notes)
        return f"{self.source} ({len(self)} points{'; ' + extra if extra else ''})"


def data_range(data: Any) -> dict[str, list[float]]:
    """{"N": [min, max], "D": ..., "C": ..., "loss": ...} of `Points` or `analysis.curves.Curves` (anything
    with N, D, C and loss arrays): what a fit JSON records."""
    return {k: [float(np.min(v)), float(np.max(v))] for k, v in
            (("N", data.N), ("D", data.D), ("C", data.C), ("loss", data.loss))}


# ----------------------------------------------------------------------------------------------
# reading files and folders (the files themselves: analysis.tables)

def _keep_completed(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Rows with status == completed; a FitWarning counts the others (diverged, failed, running)."""
    if "status" not in df.columns:
        return df
    status = df["status"].astype(str)
    left = status[status != FIT_STATUS]
    if len(left):
        counts = ", ".join(f"{n} {s}" for s, n in left.value_counts().sort_index().items())
        warnings.warn(f"{source}: left out {len(left)} of {len(df)} rows whose status is not {FIT_STATUS} ({counts})",
                      FitWarning, stacklevel=3)
    return df[status == FIT_STATUS]


def load_points(source: str | Path, *, n_col: str | None = None, d_col: str | None = None,
                c_col: str | None = None, loss_col: str | None = None, budget_col: str | None = None,
                u_col: str | None = None, n_convention: str | None = None, drop_highest: int = 0,
                best_of: Sequence[str] | str | None = None, allow_mixed: bool = False) -> Points:
    """Points from a CSV/Parquet file, a sweep folder (`points.parquet`) or a run folder (`points.csv`):
    `load_points_frame`'s points, less the `drop_highest` highest-loss ones."""
    columns = {"n": n_col, "d": d_col, "c": c_col, "loss": loss_col, "budget": budget_col, "u": u_col}
    return load_points_frame(source, columns, n_convention=n_convention, best_of=best_of,
                             allow_mixed=allow_mixed)[1].drop_highest(drop_highest)


def load_points_frame(source: str | Path | pd.DataFrame, columns: Mapping[str, str | None] | None = None, *,
                      n_convention: str | None = None, best_of: Sequence[str] | str | None = None,
                      allow_mixed: bool = False) -> tuple[pd.DataFrame, Points]:
    """(rows, points): the table's rows a fit uses, as read, and their validated `Points` in the same order.

    `source`: a CSV/Parquet file, a sweep folder (`points.parquet`), a run folder (`points.csv`) or a
    DataFrame; `columns` maps roles (n, d, c, loss, budget) to its columns. Folders default to the
    `points` columns (params or params_nonembedding by `n_convention`, tokens, flops_6nd, loss) and
    keep the best LR of each run (`_best_lr`); in a file or frame unmapped roles are looked up in
    `AUTO_COLUMNS` (N in the `n_convention` column when there is one). Any table with a `status`
    column keeps only `completed` rows, with a FitWarning naming the rest. With `best_of` (column
    names, e.g. ["lr"]) each group of rows equal in every other column but the loss keeps its lowest
    finite loss (`best_of_rows`). Rows whose eval data or tokenizer hashes differ are refused unless
    `allow_mixed` (`analysis.provenance`).
    """
    columns = {role: None for role in ROLES} | dict(columns or {})
    folder = not isinstance(source, pd.DataFrame) and Path(source).is_dir()
    if isinstance(source, pd.DataFrame):
        df, name = source.copy(), "DataFrame"
    elif folder:
        df, name, _ = folder_table(Path(source), "points")
    else:
        df, name = read_table(source), str(source)
    defaults = dict(FOLDER_COLUMNS) if folder else {}
    if n_convention is not None:
        conv_col = _convention_column(n_convention, name)
        if folder or (columns["n"] is None and conv_col in df.columns):
            defaults["n"] = conv_col
        elif columns["n"] is None and n_convention != "total":
            raise InputError(f"{name}: --n-convention {n_convention} needs a non-embedding parameter column "
                             f"({conv_col!r}, or name it with --n-col); columns: {_list(df)}")
    for role, col in defaults.items():
        if columns[role] is None and not (role in ("d", "c") and (columns["d"] or columns["c"])):
            columns[role] = col
    df = _whole_run_names(_keep_completed(df, name))
    if best_of:
        df = best_of_rows(df, best_of, columns["loss"] or _auto(df, "loss", name), name)
    elif folder:
        df = _best_lr(df, columns, name)
    df = df.reset_index(drop=True)
    pts = points_from_frame(df, columns, source=name, n_convention=n_convention, auto=not folder)
    trials = folder_trials(Path(source)) if folder else None
    vocab = _vocab_size(trials, df, folder=folder)
    prov = provenance(df, name, trials=trials, runs_table=folder, allow_mixed=allow_mixed)
    return df, replace(pts, provenance=prov, **({} if vocab is None else {"vocab_size": vocab}))


def _vocab_size(trials: pd.DataFrame | None, df: pd.DataFrame, *, folder: bool) -> int | None:
    """The vocabulary size V every row's model predicts over (for the loss of a uniform guess, ln V): a
    folder's trials table's column `vocab_size` (`trials`: a sweep's `trials.parquet` or a run's
    `trial.json`, `analysis.provenance.folder_trials`), else the table's own `vocab_size` column; None when
    absent or when the rows differ (losses over different vocabularies share no ceiling)."""
    if folder:
        values = None if trials is None else trials.get(VOCAB_COLUMN)
    else:
        values = df.get(VOCAB_COLUMN)
    if values is None:
        return None
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().unique()
    if len(v) != 1 or not np.isfinite(v[0]) or v[0] < 2 or v[0] != int(v[0]):
        return None
    return int(v[0])


def _whole_run_names(df: pd.DataFrame) -> pd.DataFrame:
    """A CSV whose run names hold an unquoted comma makes pandas put the first part into the index:
    join it back onto the `run` column."""
    if not isinstance(df.index, pd.RangeIndex) and pd.api.types.is_string_dtype(df.index) and "run" in df.columns:
        return df.assign(run=df.index.astype(str) + "," + df["run"].astype(str))
    return df


def _default_u(df: pd.DataFrame, source: str) -> str | None:
    """The unique-tokens column read without --u-col: `unique_tokens` when every row has a value. Empty in
    every row (runs written before the column existed): none, silently. Empty in some rows (a sweep folder
    mixing older runs): none, with a FitWarning, rather than guess U for those rows."""
    if UNIQUE_TOKENS_COLUMN not in df.columns:
        return None
    missing = pd.to_numeric(df[UNIQUE_TOKENS_COLUMN], errors="coerce").isna()
    if missing.all():
        return None
    if missing.any():
        warnings.warn(f"{source}: column {UNIQUE_TOKENS_COLUMN!r} is empty in {int(missing.sum())} of {len(df)} rows; "
                      "unique tokens left out of the fit (name it with --u-col to require it)", FitWarning,
                      stacklevel=4)
        return None
    return UNIQUE_TOKENS_COLUMN


def repeats_data(pts: "Points") -> bool:
    """Whether some row trains on more tokens than its unique tokens (D > U: repeated data)."""
    return pts.U is not None and bool(np.any(pts.D > pts.U * (1 + 1e-9)))


def warn_repeated_data(pts: "Points", law: str) -> None:
    """A FitWarning naming the unique-tokens column when a law that treats every token as new is
    fitted to rows that repeat data (Muennighoff et al. 2023: repeated tokens are worth less)."""
    if not repeats_data(pts):
        return
    over = pts.D > pts.U * (1 + 1e-9)
    warnings.warn(f"{pts.source}: {int(over.sum())} of {len(pts)} rows train past their unique tokens (column "
                  f"{pts.columns.get('u')!r}, up to {float(np.max(pts.D / pts.U)):.3g} epochs) but {law} treats "
                  "every token as new; the data-constrained law prices repetition in (scaling fit --approach 3 or "
                  "data-constrained)", FitWarning, stacklevel=3)


def best_of_rows(df: pd.DataFrame, best_of: Sequence[str] | str, loss: str, source: str) -> pd.DataFrame:
    """The best row of each setting: rows are grouped by every column except those in `best_of` (the
    settings tried, e.g. the peak LR) and the `loss` column; each group keeps its row of lowest finite
    loss, and rows whose loss is not finite (diverged runs) are dropped. A FitWarning counts both.

    A hyperparameter sweep's scaling law is about the tuned setting at each (N, D): fitting every LR
    mixes under-tuned runs into the law (Porian et al. 2024; Hoffmann et al. 2022 App. D tune LR per size).
    """
    names = [c.strip() for c in (best_of.split(",") if isinstance(best_of, str) else best_of) if c.strip()]
    missing = [c for c in names if c not in df.columns]
    if not names or missing:
        raise InputError(f"{source}: --best-of {','.join(names) or repr(best_of)}: no column "
                         f"{', '.join(map(repr, missing)) or 'named'} (columns: {_list(df)})")
    if loss in names:
        raise InputError(f"{source}: --best-of names the loss column {loss!r}; name the settings that vary instead")
    values = pd.to_numeric(df[loss], errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(values)
    key = [c for c in df.columns if c not in names and c != loss]
    kept = df[finite].assign(__loss=values[finite])
    if not key:
        best = kept.loc[[kept["__loss"].idxmin()]] if len(kept) else kept
    else:
        best = kept.loc[kept.groupby(key, dropna=False, sort=False)["__loss"].idxmin()]
    best = best.drop(columns="__loss").sort_index()
    n_groups = len(best)
    diverged = int((~finite).sum())
    warnings.warn(f"{source}: --best-of {','.join(names)}: kept the lowest-loss row of each of {n_groups} settings, "
                  f"{len(best)} of {len(df)} rows ({diverged} diverged with a non-finite loss, "
                  f"{len(kept) - len(best)} beaten)", FitWarning, stacklevel=3)
    if len(kept) and len(best) == len(kept) and df[names].nunique().max() > 1:
        warnings.warn(f"{source}: --best-of {','.join(names)}: no two rows agree in every other column "
                      f"({', '.join(key)}), so nothing was compared; name every column that varies between the "
                      "tries", FitWarning, stacklevel=3)
    return best


def _best_lr(df: pd.DataFrame, columns: Mapping[str, str | None], source: str) -> pd.DataFrame:
    """A sweep with LR multipliers trains each (N, D, seed) at several peak LRs: keep the lowest loss of
    each, the tuned-LR point a scaling law is about (one LR for all sizes biases the fit, Porian et al.
    2024), with a FitWarning counting what was left out."""
    varied = [c for c in ("lr_multiplier", "batch_multiplier") if c in df.columns and df[c].nunique() > 1]
    if not varied:
        return df
    loss = columns.get("loss") or FOLDER_COLUMNS["loss"]
    key = [c for c in (columns.get("n") or FOLDER_COLUMNS["n"], columns.get("d") or FOLDER_COLUMNS["d"], "seed", "kind")
           if c in df.columns]
    best = df.loc[df.groupby(key, dropna=False)[loss].idxmin()]
    n_settings = len(df.drop_duplicates(varied))
    warnings.warn(f"{source}: kept the best of {n_settings} LR/batch multiplier settings for each (N, D, seed): "
                  f"{len(best)} of {len(df)} rows", FitWarning, stacklevel=3)
    return best.sort_index()


# ----------------------------------------------------------------------------------------------
# frames and arrays -> validated points

def points_from_frame(df: pd.DataFrame, columns: Mapping[str, str | None] | None = None, *,
                      source: str = "DataFrame", n_convention: str | None = None, auto: bool = True) -> Points:
    """Points from a DataFrame and a column map {role: column} (roles n, d, c, loss, budget, u).

    Needs n, loss, and d or c: D = C / (6 N) when only C is mapped, C = 6 N D when only D is.
    With `auto`, unmapped roles are looked up in `AUTO_COLUMNS`; an unmapped u is `unique_tokens` when
    every row has one (`_default_u`).
    """
    columns = {k: v for k, v in dict(columns or {}).items() if v is not None}
    unknown = set(columns) - set(ROLES)
    if unknown:
        raise InputError(f"{source}: unknown column role(s) {sorted(unknown)} (roles: {', '.join(ROLES)})")
    if auto:
        for role in ("n", "loss"):
            if role not in columns:
                columns[role] = _auto(df, role, source)
        if "d" not in columns and "c" not in columns:
            for role in ("d", "c"):
                found = _auto(df, role, source, required=False)
                if found is not None:
                    columns[role] = found
    for col in columns.values():
        if col not in df.columns:
            raise InputError(f"{source}: column {col!r} not found (columns: {_list(df)})")
    for role in ("n", "loss"):
        if role not in columns:
            raise InputError(f"{source}: no column given for {role!r} (columns: {_list(df)})")
    if "d" not in columns and "c" not in columns:
        raise InputError(f"{source}: need a tokens column (d) or a FLOPs column (c) (columns: {_list(df)})")
    N = _numeric(df, columns["n"], source)
    loss = _numeric(df, columns["loss"], source)
    D, C, flops, used = _tokens_and_flops(df, columns, N, source)
    budget = _numeric(df, columns["budget"], source) if "budget" in columns else None
    if "u" not in columns and _default_u(df, source) is not None:
        columns["u"] = used["u"] = UNIQUE_TOKENS_COLUMN
    U = _numeric(df, columns["u"], source) if "u" in columns else None
    if len(N) == 0:
        raise InputError(f"{source}: no rows to fit")
    convention = _convention(n_convention, columns["n"], source)
    return Points(N=N, D=D, C=C, loss=loss, budget=budget, U=U, source=source, columns=used,
                  n_convention=convention, flops_convention=flops, other_n=_other_n(df, columns["n"], convention))


def _other_n(df: pd.DataFrame, n_col: str, convention: str) -> dict[str, tuple[str, np.ndarray]]:
    """{"nonembedding": (column, N)} when a total-N table also has `params_nonembedding` with a positive
    finite value in every row (a sweep folder; a table with both counts); else {}."""
    col = N_CONVENTION_COLUMNS["nonembedding"]
    if convention != "total" or n_col == col or col not in df.columns:
        return {}
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    return {"nonembedding": (col, values)} if bool(np.all(np.isfinite(values) & (values > 0))) else {}


def _tokens_and_flops(df: pd.DataFrame, columns: Mapping[str, str], N: np.ndarray,
                      source: str) -> tuple[np.ndarray, np.ndarray, str, dict[str, str]]:
    """(D, C, flops_convention, columns used): the one place D and C are derived from each other.

    Both mapped: both read; C's convention is 6ND for a 6ND column (`FLOPS_6ND_COLUMNS`), else the
    column's name. Only D: C = 6 N D. Only C: D = C / (6 N), so C = 6 N D holds by construction.
    """
    used = dict(columns)
    if "d" in columns:
        D = _numeric(df, columns["d"], source)
        if "c" in columns:
            C = _numeric(df, columns["c"], source)
            return D, C, FLOPS_6ND if columns["c"] in FLOPS_6ND_COLUMNS else columns["c"], used
        used["c"] = "6 N D"
        return D, flops_6nd(N, D), FLOPS_6ND, used
    C = _numeric(df, columns["c"], source)
    used["d"] = f"C / (6 N) from {columns['c']!r}"
    return tokens_for_flops(C, N), C, FLOPS_6ND, used


def points_from_arrays(N: Any, D: Any = None, loss: Any = None, *, C: Any = None, budget: Any = None,
                       source: str = "arrays", n_convention: str = "total") -> Points:
    """Points from arrays; D = C / (6 N) when D is None, C = 6 N D when C is None."""
    if loss is None:
        raise InputError(f"{source}: no loss given")
    if D is None and C is None:
        raise InputError(f"{source}: give D (tokens) or C (FLOPs)")
    frame: dict[str, Any] = {"N": _flat(N, "N", source), "loss": _flat(loss, "loss", source)}
    cols: dict[str, str] = {"n": "N", "loss": "loss"}
    if D is not None:
        frame["D"], cols["d"] = _flat(D, "D", source), "D"
    if C is not None:
        frame["C"], cols["c"] = _flat(C, "C", source), "C"
    if budget is not None:
        frame["budget"], cols["budget"] = _flat(budget, "budget", source), "budget"
    lengths = {k: len(v) for k, v in frame.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"{source}: arrays differ in length ({', '.join(f'{k} {n}' for k, n in lengths.items())})")
    pts = points_from_frame(pd.DataFrame(frame), cols, source=source, n_convention=n_convention, auto=False)
    return replace(pts, flops_convention=FLOPS_6ND)


def as_points(N: Any, D: Any = None, loss: Any = None, *, C: Any = None, budget: Any = None,
              columns: Mapping[str, str | None] | None = None, source: str | None = None,
              n_convention: str | None = None) -> Points:
    """What every `fit` accepts: Points, a DataFrame (+ column map), or arrays N, D, loss (or C)."""
    if isinstance(N, Points):
        return N
    if isinstance(N, pd.DataFrame):
        return points_from_frame(N, columns, source=source or "DataFrame", n_convention=n_convention)
    return points_from_arrays(N, D, loss, C=C, budget=budget, source=source or "arrays",
                              n_convention=n_convention or "total")


# ----------------------------------------------------------------------------------------------
# validation helpers

def _numeric(df: pd.DataFrame, col: str, source: str) -> np.ndarray:
    """Column `col` as positive finite floats, or InputError naming the first bad row and value."""
    if col not in df.columns:
        raise InputError(f"{source}: column {col!r} not found (columns: {_list(df)})")
    raw = df[col]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        v = raw.iloc[i]
        if values[i] > 0 or values[i] <= 0:              # a number, but not a positive finite one
            what = f": {_show(v)} is not finite" if not np.isfinite(values[i]) else f": {_show(v)} must be > 0"
        elif v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip()):
            what = " is empty (NaN)"
        else:
            try:
                float(v)
                what = f": {_show(v)} is NaN"
            except (TypeError, ValueError):
                what = f": {_show(v)} is not a number"
        more = f" ({int(bad.sum()) - 1} more bad rows)" if bad.sum() > 1 else ""
        raise InputError(f"{source}: column {col!r}, row {i + 1}{what}{more}")
    return values


def _flat(x: Any, name: str, source: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim > 1:
        arr = arr.ravel()
    if arr.ndim == 0:
        raise InputError(f"{source}: {name} must be an array, got a single value {_show(arr.item())}")
    return arr


def _auto(df: pd.DataFrame, role: str, source: str, required: bool = True) -> str | None:
    for name in AUTO_COLUMNS[role]:
        if name in df.columns:
            return name
    if not required:
        return None
    flag = {"n": "--n-col", "d": "--d-col", "c": "--c-col", "loss": "--loss-col"}[role]
    raise InputError(f"{source}: no column for {role!r} (tried {', '.join(map(repr, AUTO_COLUMNS[role]))}; "
                     f"name one with {flag}; columns: {_list(df)})")


def _convention_column(n_convention: str, source: str) -> str:
    if n_convention not in N_CONVENTION_COLUMNS:
        raise InputError(f"{source}: unknown N convention {n_convention!r} (use total or nonembedding)")
    return N_CONVENTION_COLUMNS[n_convention]


def conventions_in(df: pd.DataFrame) -> list[str]:
    """The N conventions a table can be fitted under: "total" when it has an N column other than the
    non-embedding one (`params`, `N`), "nonembedding" when it has `params_nonembedding`."""
    out = []
    if any(c in df.columns for c in AUTO_COLUMNS["n"]):
        out.append("total")
    if N_CONVENTION_COLUMNS["nonembedding"] in df.columns:
        out.append("nonembedding")
    return out


def _convention(n_convention: str | None, col: str, source: str) -> str:
    """Which parameter count N is, as a fact: "total" or "nonembedding". Given: checked. Not given:
    `params_nonembedding` is non-embedding, any other column (params, N, "Model Size") total; the
    column's own name is recorded separately (`columns["n"]`)."""
    if n_convention is None:
        return convention_of_column(col) or "total"
    _convention_column(n_convention, source)
    return n_convention


def _list(df: pd.DataFrame, limit: int = 12) -> str:
    cols = [str(c) for c in df.columns]
    shown = ", ".join(cols[:limit])
    return shown + (f", ... ({len(cols)} in all)" if len(cols) > limit else "")


def _show(v: Any) -> str:
    text = repr(v.item() if isinstance(v, np.generic) else v)
    return text if len(text) <= 40 else text[:37] + "..."

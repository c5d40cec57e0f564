"""What a table records about how its losses were measured: the eval data and tokenizer hashes, which
checkpoint each point is, the learning-rate schedule. The reporting checklist (`analysis.checklist`) says
these; a fit refuses rows whose eval data or tokenizer hashes differ, since their losses are not comparable.

A sweep or run folder records them per run (`contracts.runs_table`, trial.json): `data_fingerprint` (a
BLAKE2b of the corpus bytes, the train/validation split and the tokenizer settings: it identifies the eval
data, and the corpus's own BPE, which is trained from it), `tokenizer_hash` (BLAKE2b of a given
tokenizer.json; empty for the corpus's own BPE), `schedule` and `min_lr_ratio`, and per point `kind`
(final, or a WSD cool-down branch). A plain table may carry the same columns (or `eval_data_hash`); a
table without them has them "not recorded".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import InputError
from analysis.tables import read_table
from contracts.jsonio import read_json
from contracts.runs_table import run_table_file, sweep_table_file

EVAL_HASH_COLUMNS = ("data_fingerprint", "eval_data_hash")
TOKENIZER_HASH_COLUMNS = ("tokenizer_hash",)
RUN_ID = "run_id"


def folder_trials(folder: Path) -> pd.DataFrame | None:
    """The folder's trials table (a sweep's trials.parquet, a run's trial.json as one row), or None: read
    once per load (`analysis.io.load_points_frame`) for the provenance and the vocabulary size."""
    try:
        if (folder / sweep_table_file("trials")).exists():
            return read_table(folder / sweep_table_file("trials"))
        if (folder / run_table_file("trials")).exists():
            trial = read_json(folder / run_table_file("trials"))
            return pd.DataFrame([trial]) if isinstance(trial, dict) else None
    except (InputError, OSError, ValueError):
        return None
    return None


def _rows_with_trials(trials: pd.DataFrame | None, df: pd.DataFrame) -> pd.DataFrame:
    """The rows, with the trials' columns they lack joined on run_id (folders); the rows as they are otherwise."""
    if trials is None or RUN_ID not in df.columns or RUN_ID not in trials.columns:
        return df
    extra = [c for c in trials.columns if c not in df.columns or c == RUN_ID]
    try:
        return df.merge(trials[extra].drop_duplicates(RUN_ID), on=RUN_ID, how="left")
    except (ValueError, TypeError):   # run ids of other types in the two tables: nothing to join
        return df


def _values(rows: pd.DataFrame, columns: tuple[str, ...]) -> tuple[str | None, pd.Series | None]:
    for c in columns:
        if c in rows.columns:
            s = rows[c].astype("string").str.strip().replace("", pd.NA)
            return c, s
    return None, None


def _one(rows: pd.DataFrame, columns: tuple[str, ...], what: str, source: str, allow_mixed: bool) -> str | None:
    """The hash every row shares; None when no row records one; refused (or 'mixed: ...') when rows differ."""
    col, s = _values(rows, columns)
    if s is None or s.isna().all():
        return None
    counts = s.fillna("not recorded").value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    listed = ", ".join(f"{h} ({n} rows)" for h, n in counts.items())
    if not allow_mixed:
        raise InputError(f"{source}: rows of {len(counts)} different {what} hashes (column {col!r}: {listed}): their "
                         "losses are not comparable in one fit; fit them apart, or give --allow-mixed")
    return f"mixed: {listed}"


def provenance(df: pd.DataFrame, source: str, *, trials: pd.DataFrame | None = None, runs_table: bool = False,
               allow_mixed: bool = False) -> dict[str, Any]:
    """{eval_data_hash, tokenizer_hash, tokenizer, checkpoints, lr_schedule, runs_table} of the rows `df`
    (joined on run_id with a folder's `trials`, `folder_trials`; what is not recorded is left out);
    InputError when the rows' eval data or tokenizer hashes differ, unless `allow_mixed`. `runs_table`: the
    rows come from a sweep or run folder."""
    rows = _rows_with_trials(trials, df)
    out: dict[str, Any] = {"runs_table": runs_table}
    ev = _one(rows, EVAL_HASH_COLUMNS, "eval data", source, allow_mixed)
    tok = _one(rows, TOKENIZER_HASH_COLUMNS, "tokenizer", source, allow_mixed)
    if ev is not None:
        out["eval_data_hash"] = ev
    if tok is not None:
        out["tokenizer_hash"] = tok
    elif ev is not None and "data_fingerprint" in rows.columns and "tokenizer_hash" in rows.columns:
        out["tokenizer_hash"] = f"the corpus's own BPE, identified by the data fingerprint {ev}"
    if "kind" in rows.columns:
        kinds = rows["kind"].astype("string").fillna("not recorded").value_counts()
        out["checkpoints"] = {str(k): int(n) for k, n in kinds.items()}
    if "schedule" in rows.columns:
        parts = []
        for name, group in rows.groupby(rows["schedule"].astype("string").fillna("not recorded")):
            detail = []
            for col in ("min_lr_ratio", "decay_fraction"):
                if col in group.columns:
                    v = pd.to_numeric(group[col], errors="coerce").dropna().unique()
                    if len(v) == 1:
                        detail.append(f"{col} {v[0]:g}")
            parts.append(f"{name}" + (f" ({', '.join(detail)})" if detail else "") + f": {len(group)} rows")
        out["lr_schedule"] = "; ".join(parts)
    return out


def check_comparable(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str], *, allow_mixed: bool) -> None:
    """Refuse two tables whose eval data or tokenizer hashes differ (both recorded), unless `allow_mixed`."""
    for key, what in (("eval_data_hash", "eval data"), ("tokenizer_hash", "tokenizer")):
        ha, hb = a.get(key), b.get(key)
        if ha and hb and ha != hb and not allow_mixed:
            raise InputError(f"{names[0]} and {names[1]}: different {what} hashes ({ha} vs {hb}): their losses are "
                             "not comparable; give --allow-mixed to compare them anyway")

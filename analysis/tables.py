"""Reading one table file or a folder's table: CSV/TSV or Parquet, with one-line errors naming the file.

`analysis.io` turns what is read here into validated points and curves.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.errors import InputError
from contracts.runs_table import run_table_file, sweep_table_file


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (.csv, .tsv, .txt) or Parquet (.parquet, .pq) file as a DataFrame; InputError if unreadable."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            _refuse_duplicate_columns(path, sep)
            return pd.read_csv(path, sep=sep)
    except (OSError, ValueError, pd.errors.ParserError, RecursionError, MemoryError) as exc:
        raise InputError(f"{path}: cannot read it as a table ({_first_line(exc)})") from None
    raise InputError(f"{path}: unknown table format {suffix!r} (use .csv or .parquet, or a sweep/run folder)")


def _refuse_duplicate_columns(path: Path, sep: str) -> None:
    """InputError when the header names a column twice (pandas would silently rename the second
    `loss` to `loss.1`, and the fit would use whichever it finds)."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        header = next(csv.reader(f, delimiter=sep), [])
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(f"{path}: column {name!r} appears twice in the header; rename one")
        seen.add(name)


def folder_table(folder: Path, name: str) -> tuple[pd.DataFrame, str, str]:
    """`<folder>/<name>.parquet` (a sweep) or `<folder>/<name>.csv` (a run): (table, path, kind)."""
    for fname, kind in ((sweep_table_file(name), "sweep"), (run_table_file(name), "run")):
        p = folder / fname
        if p.exists():
            return read_table(p), str(p), kind
    raise InputError(f"{folder}: folder has neither {sweep_table_file(name)} (a sweep) nor "
                     f"{run_table_file(name)} (a run)")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

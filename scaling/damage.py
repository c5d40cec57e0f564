"""Damaged state: files the tool wrote itself and reads back (run folders, checkpoints, sweep folders,
token caches) that a crash, a full disk or a bad copy left unreadable.

Every such file is checked where it is read. A damaged one raises `DamagedStateError`, whose message is
one line: the file, what is wrong with it, and what the user can do (``--no-resume`` to start over,
``scaling sweep resume`` to rebuild a table, delete a cache entry). Nothing the user could still want
is overwritten on the way: when something is rebuilt, the damaged original is first set aside beside
it as ``<name>.damaged`` (`set_aside`).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from contracts.jsonio import read_json_object
from scaling.errors import ScalingError

DAMAGED_SUFFIX = ".damaged"

#: what to do about a damaged checkpoint or run folder of `scaling train`
RESTART = "run again with --no-resume to start over from step 0 (the checkpoint is deleted), or use another --out"


class DamagedStateError(ScalingError):
    """A file the tool wrote and reads back is damaged: ``<path>: <what is wrong>; <what to do>`` (exit 2)."""

    def __init__(self, path: str | Path, problem: str, remedy: str) -> None:
        self.path, self.problem, self.remedy = Path(path), problem, remedy
        super().__init__(f"{path}: {problem}; {remedy}")

    def with_remedy(self, remedy: str) -> "DamagedStateError":
        """The same damage with another advice (a sweep trial is restarted differently than `scaling train`)."""
        return DamagedStateError(self.path, self.problem, remedy)


class _Problem(ScalingError):
    """What `read_json_object` found wrong, before it is turned into a `DamagedStateError`."""


def read_state_json(path: str | Path, remedy: str, *, kind: str = "") -> dict[str, Any]:
    """The JSON object the tool wrote at `path`; `DamagedStateError` (with `remedy`) when it is missing,
    not UTF-8, not JSON, or not an object."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise DamagedStateError(path, "missing", remedy)
    try:
        return read_json_object(path, kind, error=_Problem)
    except _Problem as exc:
        problem = str(exc).removeprefix(f"{path}: ")
        raise DamagedStateError(path, f"damaged: {problem}", remedy) from None


def check_fields(path: Path, obj: dict, fields: dict[str, type | tuple[type, ...]], remedy: str) -> None:
    """Refuse `obj` (read from `path`) unless each of `fields` is present with the given type."""
    for name, kind in fields.items():
        value = obj.get(name)
        ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in _as_tuple(kind))
        if not ok:
            found = "missing" if name not in obj else f"{json.dumps(value)[:40]}"
            raise DamagedStateError(path, f"damaged (field {name!r}: {found}, expected {_names(kind)})", remedy)


def read_state_csv(path: str | Path, columns: tuple[str, ...], remedy: str) -> list[dict[str, str]]:
    """The rows of a CSV file the tool wrote (`scaling.outputs`: curves.csv, points.csv), as text cells;
    [] when absent. `DamagedStateError` when it is not UTF-8 text, lacks a header with `columns`, or a row
    has the wrong number of cells, or the file ends mid-line (truncated)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        rows = list(reader)
    except UnicodeDecodeError:
        raise DamagedStateError(path, "damaged (not UTF-8 text)", remedy) from None
    except (OSError, csv.Error) as exc:
        raise DamagedStateError(path, f"damaged ({getattr(exc, 'strerror', None) or exc})", remedy) from None
    if header is None:
        raise DamagedStateError(path, "damaged (empty: no header line)", remedy)
    if not text.endswith("\n"):  # every row the tool writes ends its line: a cut file ends mid-row
        raise DamagedStateError(path, "damaged (truncated: its last line is cut)", remedy)
    missing = [c for c in columns if c not in header]
    if missing:
        raise DamagedStateError(path, f"damaged (header lacks column {missing[0]!r})", remedy)
    for i, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DamagedStateError(path, f"damaged (line {i} has {len(row)} cells, the header {len(header)})",
                                    remedy)
    return [dict(zip(header, row)) for row in rows]


def set_aside(path: str | Path) -> Path:
    """Rename a damaged `path` to ``<path>.damaged`` (replacing an older such copy) before it is rebuilt;
    returns the new name."""
    path = Path(path)
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    if target.is_dir() and not target.is_symlink():
        import shutil

        shutil.rmtree(target)
    os.replace(path, target)
    return target


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: type | tuple[type, ...]) -> str:
    names = {int: "a whole number", float: "a number", str: "text", dict: "an object", list: "a list",
             type(None): "null", bool: "true or false"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))

"""Which rows a backtest holds out: a safe filter language over the table's columns.

Accepted specifications (`holdout_mask(table, spec)`):

- a comparison expression over columns, e.g. ``"N >= 2e9"``, ``"C > 1e21 and loss < 3"``,
  ``"1e9 <= N < 3B"``, ``"D / N > 100"``; names are the table's columns (N, D, C, loss, ...);
  ``and``/``or``/``not`` (or ``&``/``|``/``~``), + - * / **, parentheses; numbers may carry the count
  suffixes k, M, B, T (``2B`` = 2e9). The expression is parsed with `ast` and evaluated by walking
  the tree over whitelisted nodes, never by `eval`;
- ``"largest N"`` / ``"largest C"`` / ``"largest D"``: the rows at the largest value of that column
  (within 1%, so IsoFLOP budgets that differ in rounding count as one); ``"largest 2 N"`` takes the
  two largest distinct values;
- ``"rows 3,5,8-10"``: data rows counted from 1, as in `analysis.io`'s messages (the CSV line is one more,
  for the header);
- from Python also a sequence of 0-based row positions or a boolean mask.

Everything is bounded: the text (`MAX_CHARS`), the expression's size (`MAX_NODES`), its numbers and
every intermediate result (finite floats; ``9**9**9**9`` is refused, not computed), row ranges
(checked against the table before anything is expanded) and ``largest K`` (K >= 1).
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.errors import InputError
from contracts.counts import expand_counts

_LARGEST = re.compile(r"^\s*largest\s+(?:(\d+)\s+)?(\w+)\s*$", re.IGNORECASE)
_ROWS = re.compile(r"^\s*rows?\s+([\d,\s\-]+)$", re.IGNORECASE)

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_CMPOPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
           ast.Eq: operator.eq, ast.NotEq: operator.ne}


MAX_CHARS = 1000   # longest holdout text
MAX_NODES = 200    # largest expression tree


def holdout_mask(table: pd.DataFrame, spec: Any) -> np.ndarray:
    """Boolean mask of the rows to hold out (see the module docstring for `spec`)."""
    n = len(table)
    if isinstance(spec, np.ndarray) and spec.dtype == bool:
        if spec.shape != (n,):
            raise InputError(f"holdout: mask has {spec.size} entries for {n} rows")
        return spec.copy()
    if not isinstance(spec, str):
        return _rows_mask(n, list(spec))
    text = spec.strip()
    if not text:
        raise InputError("holdout: empty specification")
    if len(text) > MAX_CHARS:
        raise InputError(f"holdout: {text[:40]!r}... is {len(text)} characters long (at most {MAX_CHARS})")
    m = _LARGEST.match(text)
    if m:
        count = int(m.group(1) or 1)
        if count < 1:
            raise InputError(f"holdout: {text!r}: the count must be at least 1")
        return _largest_mask(table, m.group(2), count)
    m = _ROWS.match(text)
    if m:
        rows: list[int] = []
        for part in m.group(1).replace(" ", "").split(","):
            if not part:
                continue
            if "-" in part:
                a, b = (int(x) if x else -1 for x in part.split("-", 1))
                if not 1 <= a <= b <= n:  # checked before expanding: "rows 1-10000000000" allocates nothing
                    raise InputError(f"holdout: rows {part}: not a range within rows 1-{n} of the table")
                rows.extend(range(a, b + 1))
            else:
                rows.append(int(part))
        return _rows_mask(n, [r - 1 for r in rows], base=1)
    return _expression_mask(table, text)


def _rows_mask(n: int, rows: Sequence[int], base: int = 0) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for r in rows:
        if not 0 <= int(r) < n:
            raise InputError(f"holdout: row {int(r) + base} is out of range (the table has {n} rows, numbered from {base})")
        mask[int(r)] = True
    return mask


def _largest_mask(table: pd.DataFrame, column: str, count: int) -> np.ndarray:
    col = _column(table, column)
    x = np.asarray(col, dtype=float)
    # distinct values within 1% of each other form one level
    levels: list[float] = []
    for v in np.sort(x[np.isfinite(x)])[::-1]:
        if not levels or v < levels[-1] / 1.01:
            levels.append(v)
        if len(levels) > count:
            break
    if len(levels) <= count:
        raise InputError(f"holdout: 'largest {count} {column}' would hold out every row")
    return x >= levels[count - 1] / 1.01


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    if name in table.columns:
        return table[name]
    lower = {c.lower(): c for c in table.columns}
    if name.lower() in lower:
        return table[lower[name.lower()]]
    raise InputError(f"holdout: unknown column {name!r} (columns: {', '.join(map(str, table.columns))})")


def _expression_mask(table: pd.DataFrame, text: str) -> np.ndarray:
    src = expand_counts(text)
    # & | ~ bind tighter than comparisons in Python: read them as the words, which do not
    src = re.sub(r"&&?", " and ", src)
    src = re.sub(r"\|\|?", " or ", src)
    src = re.sub(r"~|!(?!=)", " not ", src)
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except SyntaxError:
        raise InputError(f"holdout: cannot parse {text!r} (example: \"N >= 2e9 and C > 1e21\")") from None
    size = sum(1 for _ in ast.walk(tree))
    if size > MAX_NODES:
        raise InputError(f"holdout: {text[:60]!r} is too large an expression ({size} parts, at most {MAX_NODES})")
    with np.errstate(all="ignore"):
        try:
            value = _eval(tree.body, table, text)
        except (OverflowError, ZeroDivisionError, ValueError) as exc:
            raise InputError(f"holdout: {text!r}: cannot be evaluated ({exc})") from None
    mask = np.asarray(value)
    if mask.dtype != bool or mask.shape != (len(table),):
        raise InputError(f"holdout: {text!r} is not a condition on the rows (example: \"N >= 2e9\")")
    return mask


def _eval(node: ast.AST, table: pd.DataFrame, text: str):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        try:
            number = float(node.value)
        except OverflowError:
            number = float("inf")
        if not np.isfinite(number):
            raise InputError(f"holdout: {text!r}: the number {str(node.value)[:30]} is not a finite float")
        return number
    if isinstance(node, ast.Name):
        return np.asarray(_column(table, node.id), dtype=float)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, table, text)
        if isinstance(node.op, ast.USub):
            return -v
        if isinstance(node.op, ast.UAdd):
            return v
        if isinstance(node.op, ast.Not):
            return np.logical_not(v)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval(node.left, table, text), _eval(node.right, table, text)
        result = _BINOPS[type(node.op)](left, right)
        # finite in, not finite out: an overflow the user wrote (missing values in the table stay NaN)
        if np.any(~np.isfinite(result) & np.isfinite(left) & np.isfinite(right)):
            raise InputError(f"holdout: {text!r}: {ast.unparse(node)[:60]} is not finite (overflow or 0 division)")
        return result
    if isinstance(node, ast.BoolOp):
        vals = [_eval(v, table, text) for v in node.values]
        f = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        out = vals[0]
        for v in vals[1:]:
            out = f(out, v)
        return out
    if isinstance(node, ast.Compare):
        left = _eval(node.left, table, text)
        out = None
        for op, comp in zip(node.ops, node.comparators):
            if type(op) not in _CMPOPS:
                break
            right = _eval(comp, table, text)
            part = _CMPOPS[type(op)](left, right)
            out = part if out is None else np.logical_and(out, part)
            left = right
        else:
            return out
    raise InputError(f"holdout: {text!r}: only column names, numbers, comparisons, arithmetic and and/or/not "
                     f"are allowed (found {type(node).__name__})")

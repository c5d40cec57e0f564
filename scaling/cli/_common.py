"""Helpers shared by the subcommands: error handling, number parsing, JSON output."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Callable

from analysis.errors import InputError
from analysis.jsonable import to_jsonable
from scaling.errors import ScalingError

_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_COUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)


def parse_count(text: str) -> float:
    """'20M' -> 2e7, '1.5B' -> 1.5e9, '1e21' -> 1e21, '300k' -> 3e5. Raises ValueError on anything else."""
    m = _COUNT.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a number (examples: 20M, 1.5B, 3e18)")
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{text!r} is not a positive number")
    return value


def count_arg(text: str) -> float:
    """argparse `type=` wrapper for `parse_count` (argparse turns ValueError into a usage error)."""
    try:
        return parse_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def int_count_arg(text: str) -> int:
    return int(round(count_arg(text)))


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (the machine-readable output of `--json`)."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2) + "\n")
    sys.stdout.flush()


def write_json(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(obj), indent=2) + "\n")


def add_command(subparsers, name: str, doc: str, help: str) -> argparse.ArgumentParser:
    """A subcommand parser whose description is the first paragraph of the module docstring `doc` and
    whose epilog (examples, notes) is the rest, printed as written."""
    first, _, rest = doc.partition("\n\n")
    return subparsers.add_parser(name, help=help, description=first, epilog=rest,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)



def add_column_args(p: argparse.ArgumentParser, loss_help: str = "loss, nats/token"):
    """The --n-col/--d-col/--c-col/--loss-col group that `fit`, `backtest` and `report` share; returns the
    group, for a subcommand's own column flags."""
    cols = p.add_argument_group("columns (default: params, tokens, flops_6nd, loss)")
    cols.add_argument("--n-col", metavar="COL", help="model size N (parameters)")
    cols.add_argument("--d-col", metavar="COL", help="training tokens D")
    cols.add_argument("--c-col", metavar="COL", help="training FLOPs C (D = C / 6N when there is no --d-col)")
    cols.add_argument("--loss-col", metavar="COL", help=loss_help)
    return cols


def run_handler(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a subcommand; user errors become `error: <one line>` on stderr and exit code 2."""
    try:
        return int(func(args) or 0)
    except (ScalingError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

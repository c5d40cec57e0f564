"""Helpers shared by the subcommands: error handling, count flags, JSON output, common flag groups."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

from contracts import jsonio
from contracts.counts import parse_count
from contracts.errors import UserError
from contracts.outputs import stamp


def positive_count(text: str) -> float:
    """A count the user wrote ('20M', '1.5B', '3e18') as a positive finite number, or ValueError."""
    value = parse_count(text)
    if value <= 0:
        raise ValueError(f"{text!r} is not a positive number")
    return value


def count_arg(text: str) -> float:
    """argparse `type=` wrapper for `parse_count` (argparse turns ValueError into a usage error)."""
    try:
        return positive_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def int_count_arg(text: str) -> int:
    """A count of whole things ('20M', '512'); refused when it rounds to 0 ('0.4' is not a token count)."""
    value = int(round(count_arg(text)))
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} rounds to 0; give a whole positive number")
    return value


def finite_float(text: str) -> float:
    """argparse `type=`: a finite number ('inf', 'nan', '1e400' refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    """argparse `type=`: a finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def level_arg(text: str) -> float:
    """argparse `type=`: an interval level strictly between 0 and 1 (0.95, 0.9)."""
    value = finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a level between 0 and 1 (e.g. 0.95)")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """argparse `type=`: a whole number >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def vocab_size_arg(text: str) -> int:
    """argparse `type=`: a vocabulary size, a whole number of tokens >= 2 (its ln is a loss ceiling)."""
    value = _int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not a vocabulary size (a whole number of tokens >= 2)")
    return value


def kaplan_ceiling(args: argparse.Namespace) -> float | None:
    """ln V from `--vocab-size V` (`analysis.kaplan.ceiling_for_vocab`), refused with any approach but
    kaplan (its bounded form) and auto (the forecaster's bounded candidate); None without the flag."""
    if args.vocab_size is None:
        return None
    from analysis.errors import InputError
    from analysis.kaplan import ceiling_for_vocab

    if args.approach not in ("kaplan", "auto"):
        raise InputError(f"--vocab-size bounds Kaplan's L(N, D): give it with --approach kaplan or auto, "
                         f"not {args.approach}")
    return ceiling_for_vocab(args.vocab_size)


def nonneg_int(text: str) -> int:
    """argparse `type=`: a whole number >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


#: torch.manual_seed and numpy's generators take a signed 64-bit seed.
SEED_MAX = 2**63 - 1


def seed_arg(text: str) -> int:
    """argparse `type=`: a seed, 0 <= seed < 2^63."""
    value = _int(text)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed in [0, 2^63)")
    return value


def check_out_path(path: str | Path, flag: str, *, file: bool = False) -> None:
    """Refuse, before any work, an output path under something that is not a folder (`--out a.txt/x`),
    and with `file=True` (the flag names a file to write: a fit JSON, a report) one that is a folder;
    creates nothing."""
    path = Path(path)
    if file and path.is_dir():
        raise UserError(f"{flag} {path}: is a folder, not a file (give a file name)")
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise UserError(f"{flag} {path}: {parent} is a file, not a folder")
            break


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (the machine-readable output of `--json`), with the output
    `schema_version` (`contracts.outputs`: every command's --json follows contracts/output.schema.json)."""
    sys.stdout.write(jsonio.dumps(stamp(obj)))
    sys.stdout.flush()


def write_json(obj: Any, path: str | Path) -> None:
    """`obj` as JSON at `path`, written atomically (`contracts.jsonio`)."""
    jsonio.write_json(path, obj)


@contextlib.contextmanager
def fit_warnings_to_stderr():
    """Inside: every `analysis.io.FitWarning` is printed as one line `warning: ...` on stderr, each
    time it happens (not once per place, Python's default)."""
    from analysis.io import FitWarning

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", FitWarning)
        warnings.showwarning = show
        yield


def add_command(subparsers, name: str, doc: str, help: str) -> argparse.ArgumentParser:
    """A subcommand parser whose description is the first paragraph of the module docstring `doc` and
    whose epilog (examples, notes) is the rest, printed as written."""
    first, _, rest = doc.partition("\n\n")
    return subparsers.add_parser(name, help=help, description=first, epilog=rest,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)



def add_column_args(p: argparse.ArgumentParser, loss_help: str = "loss, nats/token"):
    """The --n-col/--d-col/--c-col/--loss-col (--best-of, --allow-mixed) group that the commands reading a table
    share (fit, plan, backtest, report, compare); returns the
    group, for a subcommand's own column flags."""
    cols = p.add_argument_group("columns (default: params, tokens, flops_6nd, loss)")
    cols.add_argument("--n-col", metavar="COL", help="model size N (parameters)")
    cols.add_argument("--d-col", metavar="COL", help="training tokens D")
    cols.add_argument("--c-col", metavar="COL", help="training FLOPs C (D = C / 6N when there is no --d-col)")
    cols.add_argument("--loss-col", metavar="COL", help=loss_help)
    cols.add_argument("--best-of", metavar="COL[,COL]",
                      help="settings tried per run (e.g. lr): keep the lowest finite loss of each group of rows equal "
                           "in every other column; diverged rows are dropped")
    cols.add_argument("--allow-mixed", action="store_true",
                      help="use rows whose eval data or tokenizer hashes differ (refused by default: their losses are "
                           "not comparable)")
    return cols


def add_progress_arg(p, *aliases: str) -> None:
    """`--no-progress` (and `aliases`, e.g. train's older `--quiet`): no progress bars or live views;
    read as `args.no_progress`."""
    p.add_argument("--no-progress", *aliases, dest="no_progress", action="store_true",
                   help="no progress bars (default: shown on stderr)")


def add_verbose_arg(p) -> None:
    """`--verbose`: Ray's own log lines and its workers' output on the terminal too (by default they go to
    the sweep folder's `logs/ray.log`, `sweeps.ray_logs`); read as `args.verbose`."""
    p.add_argument("--verbose", action="store_true",
                   help="also print Ray's own log lines and worker output (default: the sweep's logs/ray.log)")


def add_log_arg(p) -> None:
    """`--log tensorboard|wandb|mlflow`, repeatable; read as `args.log` (a list, empty when not given)."""
    from scaling.trackers import TRACKERS  # stdlib-only module: no torch

    p.add_argument("--log", action="append", choices=TRACKERS, default=[], metavar="TRACKER",
                   help="also log to an experiment tracker: tensorboard, wandb or mlflow (repeatable; wandb and "
                        "mlflow need the [wandb] / [mlflow] extras; WANDB_MODE=offline and MLFLOW_TRACKING_URI "
                        "are honoured)")


def add_exclude_arg(p) -> None:
    """`--exclude EXPR`: rows left out before fitting, in the `--holdout` language of `analysis.holdout`
    ("N < 1e7", "largest C", "rows 3,5", "D / N > 100"); read as `args.exclude`."""
    p.add_argument("--exclude", metavar="EXPR",
                   help='leave out these rows before fitting, e.g. "N < 1e7", "D / N > 100", "rows 3,5" '
                        '(the --holdout language)')


def kept_rows(source, columns: dict, n_convention: str | None, *, exclude: str | None, drop_highest: int = 0):
    """(source, columns) for an analysis call, less the rows `--exclude` matches and the `--drop-highest`
    highest losses: `source` itself when neither is given, else the kept rows as a DataFrame (read by the
    same rules as every fit, `analysis.backtest.load_frame`) with its N, D, C, loss columns mapped."""
    if not exclude and not drop_highest:
        return source, columns
    from analysis.backtest import load_frame
    from analysis.errors import InputError
    from analysis.holdout import holdout_mask

    if drop_highest < 0:
        raise InputError(f"--drop-highest: {drop_highest} must be >= 0")
    frame, _ = load_frame(source, columns, n_convention=n_convention)
    if exclude:
        frame = frame[~holdout_mask(frame, exclude)]
        if frame.empty:
            raise InputError(f"--exclude {exclude!r} matches every row of {source}: nothing left to fit")
    if drop_highest:
        if drop_highest >= len(frame):
            raise InputError(f"--drop-highest: cannot drop {drop_highest} of {len(frame)} rows")
        frame = frame.drop(frame["loss"].nlargest(drop_highest).index)
    return frame.reset_index(drop=True), {**columns, "n": "N", "d": "D", "c": "C", "loss": "loss"}


class ArgumentError(UserError):
    """A command-line flag argparse refused (bad value, unknown flag, missing argument)."""


class OneLineParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose usage errors are one line (`error: scaling plan: argument
    --budget: ...`, exit 2 via the one handler) instead of the 8-line usage block."""

    def error(self, message: str):  # type: ignore[override]
        raise ArgumentError(f"{self.prog}: {message} (see {self.prog} --help)")


def one_line(text: str) -> str:
    """`text` with its line breaks folded, so an error stays one line on the terminal."""
    return " ".join(str(text).split()) or "(no message)"


def log_dir() -> Path:
    """Where internal-error tracebacks go: $SCALING_LOG_DIR, else <tmp>/scaling-logs."""
    import os
    import tempfile

    return Path(os.environ.get("SCALING_LOG_DIR") or Path(tempfile.gettempdir()) / "scaling-logs")


def _log_internal(exc: BaseException) -> Path | None:
    """The traceback of `exc` written (atomically) to a new log file; its path, or None if unwritable."""
    import os
    import time
    import traceback

    text = "".join(traceback.format_exception(exc))
    path = log_dir() / f"internal-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        jsonio.write_atomic(path, f"argv: {sys.argv!r}\n{text}")
    except OSError:
        return None
    return path


def _quiet_broken_pipe() -> None:
    """After EPIPE on stdout (`scaling ... | head`): point stdout at /dev/null so the interpreter's final
    flush raises nothing."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def run_handler(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a subcommand through the one error path of the command line:

    - `UserError` (bad input: spec, flag, table, fit JSON) -> `error: <one line>` on stderr, exit 2;
    - an `OSError` naming a file that escaped the readers (e.g. `--out` under a path that is a file)
      -> the same one line naming the file, exit 2;
    - a broken pipe on stdout -> quiet, exit 141 (128 + SIGPIPE), like other Unix tools;
    - Ctrl-C -> `interrupted`, exit 130;
    - anything else is a bug: one line `internal error, details in <log>`, exit 1, the traceback in
      the log file, never on the screen.
    """
    try:
        return int(func(args) or 0)
    except UserError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 141
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.filename is None:
            return _internal(exc)
        print(f"error: {one_line(f'{exc.filename}: {exc.strerror or exc}')}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last resort for genuine bugs
        return _internal(exc)


def _internal(exc: BaseException) -> int:
    log = _log_internal(exc)
    where = f"details in {log}" if log else f"{type(exc).__name__}: {one_line(str(exc))[:200]}"
    print(f"internal error, {where}", file=sys.stderr)
    return 1

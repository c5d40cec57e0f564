"""The `scaling` command: parses arguments, calls the packages, prints results. No behaviour lives here.

Each subcommand is a module of this package with `register(subparsers)`, which adds its parser and
sets `func` to a handler `run(args) -> int`. Handlers import heavy packages (torch, Ray) lazily so
`scaling --help` and `scaling fit` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from orchestrator.cli.common import OneLineParser, run_handler

# Subcommand modules, in the order `scaling --help` lists them.
COMMANDS = ("train", "sweep", "fit", "hparams", "plan", "backtest", "compare", "report", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="scaling",
        description="Run scaling-law sweeps of real GPT pretraining, fit Kaplan/Chinchilla laws, plan budgets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"orchestrator.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `scaling` command. Every failure leaves through `run_handler`: bad input (flags included)
    is one `error: ...` line on stderr and exit 2; a bug is one line naming a log file and exit 1."""
    parser = build_parser()
    parsed: list[argparse.Namespace] = []

    def parse(_: object) -> int:
        parsed.append(parser.parse_args(argv))
        return 0

    code = run_handler(parse, argparse.Namespace())
    if code:
        return code
    args = parsed[0]
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_handler(args.func, args)


if __name__ == "__main__":
    sys.exit(main())

"""The `scaling` command: parses arguments, calls the packages, prints results. No behaviour lives here.

Each subcommand is a module of this package with `register(subparsers)`, which adds its parser and
sets `func` to a handler `run(args) -> int`. Handlers import heavy packages (torch, Ray) lazily so
`scaling --help` and `scaling fit` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from orchestrator.cli.common import run_handler

# Subcommand modules, in the order `scaling --help` lists them.
COMMANDS = ("train", "sweep", "fit", "plan", "backtest", "report", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaling",
        description="Run scaling-law sweeps of real GPT pretraining, fit Kaplan/Chinchilla laws, plan budgets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"orchestrator.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_handler(args.func, args)


if __name__ == "__main__":
    sys.exit(main())

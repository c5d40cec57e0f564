"""Every subcommand's --help shows runnable examples, and the shared flags are spelled the same everywhere."""

from __future__ import annotations

import pytest

from orchestrator.cli import main

COMMANDS = [["train"], ["plan"], ["fit"], ["backtest"], ["compare"], ["report"], ["demo"],
            ["sweep", "plan"], ["sweep", "launch"], ["sweep", "resume"], ["sweep", "status"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_help_has_examples(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    examples = [line for line in text.splitlines() if line.strip().startswith(f"scaling {' '.join(argv)} ")]
    assert examples, f"`scaling {' '.join(argv)} --help` shows no example"


@pytest.mark.parametrize("argv", [["train"], ["sweep", "launch"], ["sweep", "resume"]], ids=" ".join)
def test_log_and_no_progress_flags(argv, capsys):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    text = capsys.readouterr().out
    assert "--no-progress" in text and "--log TRACKER" in text

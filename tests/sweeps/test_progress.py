"""The live progress view: counts, FLOPs done and tokens/s as trials report (a terminal gets a tqdm bar,
a log gets one line per finished trial)."""

from __future__ import annotations

import pickle

from sweeps.progress import SweepProgress

PLAN = {
    "a": {"params": 1000, "tokens": 10_000, "flops_6nd": 6.0e7},
    "b": {"params": 2000, "tokens": 10_000, "flops_6nd": 1.2e8},
}


def test_counts_flops_and_rate():
    view = SweepProgress("s", PLAN, enabled=False)
    assert view.total == 1.8e8 and view.flops_done() == 0
    view.started("a")
    view.result("a", {"tokens": 5_000, "tokens_per_s": 1234.0})
    assert view.counts()["running"] == 1 and view.flops_done() == 6 * 1000 * 5_000
    assert "1.23k tok/s" in view.summary()
    view.finished("a", "completed")
    view.finished("b", "diverged")
    assert view.counts() == {"completed": 1, "running": 0, "failed": 0, "diverged": 1, "pending": 0}
    assert view.flops_done() == view.total


def test_terminal_bar_and_log_lines(capsys):
    bar = SweepProgress("s", PLAN, done={"b": "completed"})
    bar.tty = True
    bar.started("a")
    bar.result("a", {"tokens": 10_000, "tokens_per_s": 50.0})
    bar.finished("a", "completed", "loss 3.2")
    bar.close()
    err = capsys.readouterr().err
    assert "sweep s" in err and "FLOP" in err and "done 2/2" in err

    log = SweepProgress("s", PLAN)
    log.tty = False
    log.finished("a", "failed", "RuntimeError: boom")
    assert capsys.readouterr().err.strip() == "[s 1/2] a failed RuntimeError: boom"
    pickle.loads(pickle.dumps(log))  # lives in a Tune callback, which Tune pickles

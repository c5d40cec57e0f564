"""Preemption costs one step: SIGTERM asks a run to stop at the next step boundary.

A spot or preemptible machine being reclaimed, `kill <pid>`, Kubernetes' pod termination and SLURM's
`--signal=TERM@60` all send SIGTERM and then wait a grace period before SIGKILL. `stop_on_sigterm`
turns the signal into a flag; `scaling.trainer.Trainer.run` checks it after every optimiser step, saves
a checkpoint there and returns with status `running` (`RunResult.stopped_by`), so the run loses at most
the step in progress and, resumed from that checkpoint, continues bit-identically on CPU (model,
optimiser, schedule and data-stream position are all in the checkpoint, `scaling.run_state`). Ray's own
just-in-time checkpoint on a preemption notice is still an open request (ray-project/ray#63968).

**The latch.** Only the main thread of a process may install a signal handler, and Python runs every
handler on the main thread; a run may train in another thread (a Ray Tune function trial runs in
Tune's `RunnerThread`). So the handler is one process-wide *latch* (`install_latch`, on the main thread,
once), and `stop_on_sigterm` (any thread) registers its flag with it for the duration of a run:

- a SIGTERM while one or more runs are registered raises their flags (the signal is consumed: each
  run stops at its next step boundary and the caller ends the process or the trial);
- a SIGTERM while none is registered goes to the handler that was there before the latch (Ray
  workers: Ray's own, which exits the worker; a plain process: the default action, termination), so
  a process holding the latch is as killable as before between runs; once the process has begun to exit
  (its `atexit` hooks run) a Python handler is no longer called: the exit is under way, and the
  `SystemExit` Ray's handler raises would land in a finaliser and print a traceback (`_mark_exiting`).

`stop_on_sigterm` on the main thread of a process without the latch installs it for the duration
(`scaling train`); off the main thread without the latch its flag never rises (the run keeps the old
behaviour: it dies with the process and resumes from its last periodic checkpoint).

A SIGTERM arriving after a run's last optimiser step is consumed without effect: the run completes.

**Several processes** (DDP/FSDP, `scaling.trainer`): the ranks agree on the stop step by carrying the
flag in the per-step all-reduce of the training loss (an AVG over the ranks: > 0 when any rank saw a
signal), so all ranks checkpoint at the same step and return together.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["StopRequest", "install_latch", "latch_installed", "stop_on_sigterm"]


class StopRequest:
    """Truthy once a stop signal arrived; `signum` says which."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


_active: list[StopRequest] = []          # the flags of the runs in progress in this process
_previous: Any = None                     # the SIGTERM handler the latch replaced
_installed = False


def _latch(signum: int, frame: Any) -> None:
    """The process-wide SIGTERM handler: raise the flags of the runs in progress, else chain to the previous
    handler. No lock: it runs on the main thread between bytecodes and only reads a list snapshot."""
    runs = list(_active)
    if runs:
        for request in runs:
            request.signum = signum
        return
    _call_previous(signum, frame)


def _call_previous(signum: int, frame: Any) -> None:
    previous = _previous
    if callable(previous):
        if _exiting or sys.is_finalizing():
            return  # see `_mark_exiting`: the process is ending already, nothing to raise into
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    else:  # SIG_DFL (or a handler not installed from Python): the default action, termination
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


_exiting = False  # set when the interpreter starts its exit (atexit); SIGTERM is then not chained


def _mark_exiting() -> None:
    """Registered with `atexit` by `install_latch`, after Ray registered its own shutdown, so it runs before it.
    A Ray worker being shut down runs its exit hooks while the raylet sends it SIGTERM: chained to Ray's handler,
    the signal would raise `SystemExit` inside whatever finaliser or weakref callback it interrupted, where
    Python can only print it as ``Exception ignored in ... WeakSet ... SystemExit: 1``. The process is exiting
    already, so from here on the latch consumes SIGTERM; a plain process's default action (termination) and
    an ignored signal are unchanged."""
    global _exiting
    _exiting = True


def latch_installed() -> bool:
    return _installed


def install_latch() -> bool:
    """Install the SIGTERM latch for the life of this process (idempotent); must run on the main thread.
    Returns False (nothing installed) off the main thread. Ray workers call it from the trainable's
    `setup`, which Tune runs on the worker's main thread after Ray installed its own handler."""
    global _previous, _installed
    if _installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    _previous = signal.signal(signal.SIGTERM, _latch)
    _installed = True
    atexit.register(_mark_exiting)
    return True


def _uninstall() -> None:
    global _previous, _installed
    atexit.unregister(_mark_exiting)
    signal.signal(signal.SIGTERM, _previous if _previous is not None else signal.SIG_DFL)
    _previous, _installed = None, False


@contextmanager
def stop_on_sigterm(enabled: bool = True) -> Iterator[StopRequest]:
    """While inside, a SIGTERM to this process sets the yielded `StopRequest` instead of ending the process
    (see the module docstring for the latch). Inert (the flag never rises) when not `enabled`, or off the
    main thread of a process without the latch."""
    request = StopRequest()
    if not enabled:
        yield request
        return
    temporary = not _installed and install_latch()
    if not _installed:  # off the main thread, no latch: nothing can tell this run about a signal
        yield request
        return
    _active.append(request)
    try:
        yield request
    finally:
        _active.remove(request)
        if temporary and not _active:
            _uninstall()


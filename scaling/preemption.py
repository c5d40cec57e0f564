"""Preemption costs one step: SIGTERM asks a run to stop at the next step boundary.

A spot or preemptible machine being reclaimed, `kill <pid>`, Kubernetes' pod termination and SLURM's
`--signal=TERM@60` all send SIGTERM and then wait a grace period before SIGKILL. `stop_on_sigterm`
turns the signal into a flag; `scaling.trainer.Trainer.run` checks it after every optimiser step, saves
a checkpoint there and returns with status `running`, so the run loses at most the step in progress
and, resumed from that checkpoint, continues bit-identically on CPU (model, optimiser, schedule and
data-stream position are all in the checkpoint, `scaling.run_state`). Ray's own just-in-time
checkpoint on a preemption notice is still an open request (ray-project/ray#63968).

Only the main thread of a process can install a signal handler (Python's rule); elsewhere, e.g. a
Ray Tune function trial running in a worker thread, the flag never rises and the run keeps Ray's
behaviour (the trial resumes from its last periodic checkpoint).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StopRequest:
    """Truthy once a stop signal arrived; `signum` says which."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextmanager
def stop_on_sigterm(enabled: bool = True) -> Iterator[StopRequest]:
    """While inside, SIGTERM sets the yielded `StopRequest` instead of ending the process; the previous
    handler comes back on exit. A no-op (the flag never rises) when not `enabled` or off the main thread."""
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: object) -> None:
        request.signum = signum

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield request
    finally:
        signal.signal(signal.SIGTERM, previous)

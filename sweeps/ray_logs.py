"""Where Ray's own output goes while a sweep runs: the sweep folder's `logs/ray.log`, not the terminal.

Ray writes to a user's terminal in two ways (Ray 2.60):
- the driver's "ray" logger, one stderr handler set up at import (`ray._private.log`), levels set again by
  `ray.init`: "Started a local Ray instance.", Tune's "Wrote the latest version of all result files ...";
- every worker's stdout and stderr, forwarded to the driver when `log_to_driver` (the default) through the
  dispatcher's "ray_print_logs" handler (`ray._private.ray_logging.WorkerStandardStreamDispatcher`):
  lines such as "(run_trial pid=123) ...", a Train controller's start-up lines.

`QuietRay` points both at one file for the length of a sweep and puts them back afterwards; with `verbose`
it changes nothing. The sweep's own progress lines ("[name k/n] run_id completed loss ...") are printed by
`sweeps.trainable.SweepCallback` and stay on the terminal; a failed trial's last error line is among them,
its traceback in Tune's `error.txt` and, here, in the log. The dispatcher is Ray's private API: if it is
not where 2.60 keeps it, worker lines reach the terminal as before (nothing is lost either way).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

RAY_LOG = Path("logs") / "ray.log"
"""The sweep folder's log of Ray's own output, relative to the folder."""

_RAY_PRINT = "ray_print_logs"  # the dispatcher handler `ray.init(log_to_driver=True)` registers
_WORKER_LOGGER = "scaling.ray_workers"


class QuietRay:
    """Context manager: Ray's logger records and workers' forwarded lines go to `log_path` (appended).

    Call `connected()` once Ray is up (`ray.init` registers the worker-line handler only then)."""

    def __init__(self, log_path: str | Path, *, verbose: bool = False) -> None:
        self.log_path = Path(log_path)
        self.verbose = verbose
        self._handler: logging.FileHandler | None = None
        self._saved: tuple[list[logging.Handler], bool] | None = None
        self._swapped: tuple[Any, Any] | None = None  # (dispatcher, Ray's own handler)

    def __enter__(self) -> "QuietRay":
        if self.verbose:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = logging.FileHandler(self.log_path, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s\t%(levelname)s %(name)s -- %(message)s"))
        ray_logger = logging.getLogger("ray")
        self._saved = (list(ray_logger.handlers), ray_logger.propagate)
        ray_logger.handlers = [self._handler]
        ray_logger.propagate = False
        workers = logging.getLogger(_WORKER_LOGGER)
        workers.handlers = [self._handler]
        workers.setLevel(logging.INFO)
        workers.propagate = False
        self.connected()
        return self

    def connected(self) -> None:
        """Swap Ray's worker-line printer for one that writes to the log (no-op if already swapped, verbose,
        Ray not initialised, or `log_to_driver` off)."""
        if self.verbose or self._handler is None or self._swapped is not None:
            return
        dispatcher = _dispatcher()
        if dispatcher is None:
            return
        with dispatcher._lock:
            ray_print = next((h for name, h in dispatcher.handlers if name == _RAY_PRINT), None)
            if ray_print is None:
                return
            dispatcher.handlers = [(n, h) for n, h in dispatcher.handlers if n != _RAY_PRINT]
            dispatcher.handlers.append((_RAY_PRINT, _write_worker_lines))
        self._swapped = (dispatcher, ray_print)

    def __exit__(self, *exc: object) -> None:
        if self._swapped is not None:
            dispatcher, ray_print = self._swapped
            with dispatcher._lock:
                # Ray removes the handler at shutdown; put its printer back only where ours still stands
                if any(h is _write_worker_lines for _, h in dispatcher.handlers):
                    dispatcher.handlers = [(n, ray_print if h is _write_worker_lines else h)
                                           for n, h in dispatcher.handlers]
            self._swapped = None
        if self._saved is not None:
            ray_logger = logging.getLogger("ray")
            ray_logger.handlers, ray_logger.propagate = self._saved
            self._saved = None
        if self._handler is not None:
            logging.getLogger(_WORKER_LOGGER).handlers = []
            self._handler.close()
            self._handler = None


def _dispatcher() -> Any:
    try:
        import ray
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:
        return None
    if not ray.is_initialized() or not hasattr(dispatcher, "handlers") or not hasattr(dispatcher, "_lock"):
        return None
    return dispatcher


def _write_worker_lines(data: dict) -> None:
    """One forwarded batch of a worker's output (Ray's dict: lines, pid, is_err, actor/task name) to the log,
    each line prefixed as Ray prints it: `(task_name pid=123) line`."""
    who = data.get("actor_name") or data.get("task_name") or ""
    prefix = f"({who} pid={data.get('pid')})".replace("( ", "(")
    level = logging.WARNING if data.get("is_err") else logging.INFO
    log = logging.getLogger(_WORKER_LOGGER)
    for line in data.get("lines") or ():
        log.log(level, "%s %s", prefix, line)

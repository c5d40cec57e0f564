"""The live view of a running sweep (driver side, no Ray): one tqdm bar over the sweep's FLOPs.

    sweep isoflop-cpu  41%|████      | 8.9T/21.5T FLOP [02:10<03:05, done 6/15 run 2 fail 0 div 0, 96.1k tok/s]

The bar advances by each trial's 6ND FLOPs as its evaluations report tokens, so its rate and ETA are
the sweep's. When stderr is not a terminal (CI logs), the bar is replaced by one plain line per
finished trial. `SweepProgress` is fed by the Tune callback in `sweeps.trainable`.
"""

from __future__ import annotations

import sys
import time

from contracts.counts import format_count


class SweepProgress:
    def __init__(self, name: str, plan: dict[str, dict], *, enabled: bool = True, done: dict[str, str] | None = None):
        """`plan`: run_id -> manifest row (params, tokens, flops_6nd); `done`: run_id -> final status."""
        self.name = name
        self.plan = plan
        self.enabled = enabled
        self.status: dict[str, str] = {r: "pending" for r in plan}
        self.tokens: dict[str, float] = {r: 0.0 for r in plan}
        self.rate: dict[str, float] = {}
        for run_id, status in (done or {}).items():
            if run_id in self.status:
                self.status[run_id] = status
                self.tokens[run_id] = float(plan[run_id]["tokens"])
        self.total = sum(float(p["flops_6nd"]) for p in plan.values())
        self.tty = sys.stderr.isatty()
        self.bar = None
        self.t0 = time.time()

    # -- events --------------------------------------------------------------------------------------
    def started(self, run_id: str) -> None:
        self.status[run_id] = "running"
        self._refresh()

    def result(self, run_id: str, metrics: dict) -> None:
        if run_id not in self.plan:
            return
        if self.status.get(run_id) == "pending":
            self.status[run_id] = "running"
        tokens = metrics.get("tokens")
        if isinstance(tokens, (int, float)):
            self.tokens[run_id] = min(float(tokens), float(self.plan[run_id]["tokens"]))
        tps = metrics.get("tokens_per_s")
        if isinstance(tps, (int, float)):
            self.rate[run_id] = float(tps)
        self._refresh()

    def finished(self, run_id: str, status: str, detail: str = "") -> None:
        if run_id not in self.plan:
            return
        self.status[run_id] = status
        self.rate.pop(run_id, None)
        if status in ("completed", "diverged"):
            self.tokens[run_id] = float(self.plan[run_id]["tokens"])
        self._refresh()
        if self.enabled and not self.tty:
            c = self.counts()
            done = c["completed"] + c["diverged"] + c["failed"]
            print(f"[{self.name} {done}/{len(self.plan)}] {run_id} {status}{(' ' + detail) if detail else ''}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self._refresh()
            self.bar.close()
            self.bar = None

    # -- view ----------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        c = {"completed": 0, "running": 0, "failed": 0, "diverged": 0, "pending": 0}
        for s in self.status.values():
            c[s] = c.get(s, 0) + 1
        return c

    def flops_done(self) -> float:
        return sum(6.0 * float(self.plan[r]["params"]) * self.tokens[r] for r in self.plan)

    def summary(self) -> str:
        c = self.counts()
        tps = sum(v for r, v in self.rate.items() if self.status.get(r) == "running")
        return (f"done {c['completed']}/{len(self.plan)} run {c['running']} fail {c['failed']} "
                f"div {c['diverged']}, {format_count(tps)} tok/s")

    def _refresh(self) -> None:
        if not (self.enabled and self.tty):
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, unit="FLOP", unit_scale=True, desc=f"sweep {self.name}",
                            dynamic_ncols=True, mininterval=0.5, file=sys.stderr)
        done = self.flops_done()
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix_str(self.summary(), refresh=True)

    # the Tune callback holding this object is pickled into tuner.pkl; never pickle the bar
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["bar"] = None
        return state

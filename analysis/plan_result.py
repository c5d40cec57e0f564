"""A plan as it is shown: the `Plan` record (its JSON and its summary lines) and the unit formatters.

Every number carries its unit: N in parameters (the fit's convention), D in tokens, C in FLOPs,
loss in nats/token, wall clock in s; `Plan.summary()` prints counts as 73.3B / 1.31T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from contracts.conventions import FLOPS_6ND
from contracts.counts import format_count

UNITS = {
    "N": "parameters",
    "D": "tokens",
    "C": "FLOPs",
    "loss": "nats/token",
    "tokens_per_param": "tokens/parameter",
    "inference_flops": "FLOPs",
    "total_flops": "FLOPs",
    "wall_clock_s": "s",
    "device_hours": "device-hours",
}


@dataclass(frozen=True)
class Plan:
    """One planned training run. N in parameters (the fit's convention), D in tokens, C in FLOPs
    (training, k N D), loss in nats/token; `intervals` maps each of these names to a [lo, hi]
    percentile interval over the bootstrap fits (empty without bootstrap)."""

    kind: str
    N: float
    D: float
    C: float
    loss: float | None
    tokens_per_param: float
    inputs: dict[str, float]
    intervals: dict[str, list[float]] = field(default_factory=dict)
    interval_level: float | None = None
    n_bootstrap: int = 0
    method: str = ""
    n_convention: str = "total"
    flops_convention: str = FLOPS_6ND
    inference_tokens: float | None = None
    inference_flops: float | None = None
    total_flops: float | None = None
    reference: dict[str, float] | None = None
    wall_clock_s: float | None = None
    device_hours: float | None = None
    hardware: dict[str, float] | None = None
    extrapolation_factor: float | None = None
    largest_budget_in_data: float | None = None
    auto: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["units"] = {k: v for k, v in UNITS.items() if d.get(k) is not None}
        return d

    def summary(self) -> str:
        """Human-readable lines, every number with its unit."""
        lvl = f"{100 * self.interval_level:.0f}%" if self.interval_level else ""

        def row(label, key, fmt, unit=""):
            value = getattr(self, key)
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                return None
            line = f"{label:<22}{fmt(value)}{unit}"
            if key in self.intervals:
                lo, hi = self.intervals[key]
                line += f"   ({lvl} interval {fmt(lo)} .. {fmt(hi)})"
            return line

        title = {
            "budget": f"compute-optimal plan for {fmt_flops(self.inputs.get('budget', self.C))}",
            "params": f"compute-optimal data for a {format_count(self.N)}-parameter model",
            "tokens": f"compute-optimal model for {format_count(self.D)} tokens",
            "target_loss": f"cheapest plan reaching loss {self.inputs.get('target_loss', 0):.4f} nats/token",
            "inference": f"inference-aware plan (Sardana et al. 2024) for {format_count(self.inference_tokens or 0)} inference tokens",
        }[self.kind]
        conv = (f"N = {self.n_convention} parameters" if self.n_convention in ("total", "nonembedding")
                else f"N as in column '{self.n_convention}'")
        lines = [title, f"{'method':<22}{self.method}; {conv}; FLOPs = {self.flops_convention}"]
        e = lambda v: f"{v:.3g}"  # noqa: E731
        for r in (
            row("model size N", "N", format_count, " parameters"),
            row("training tokens D", "D", format_count, " tokens"),
            row("tokens per parameter", "tokens_per_param", lambda v: f"{v:.1f}"),
            row("training compute C", "C", e, " FLOPs"),
            row("predicted loss", "loss", lambda v: f"{v:.4f}", " nats/token"),
            row("inference compute", "inference_flops", e, " FLOPs"),
            row("total compute", "total_flops", e, " FLOPs"),
            row("wall clock", "wall_clock_s", fmt_duration),
            row("device time", "device_hours", lambda v: f"{v:,.0f}", " device-hours"),
        ):
            if r:
                lines.append(r)
        if self.reference:
            ref = self.reference
            lines.append(
                f"{'vs compute-optimal':<22}N {format_count(ref['N'])}, D {format_count(ref['D'])}, "
                f"total {fmt_flops(ref['total_flops'])} ({100 * ref['total_flops_saved']:.1f}% saved)"
            )
        if self.hardware:
            h = self.hardware
            lines.append(f"{'hardware':<22}{h['devices']:g} x {fmt_flops(h['flops_per_s'])}/s peak at {100 * h['mfu']:.0f}% MFU")
        if self.n_bootstrap:
            lines.append(f"{'intervals':<22}{lvl} percentile over {self.n_bootstrap} bootstrap fits"
                         + ("; the loss's is auto's calibrated prediction interval" if self.auto else ""))
        if self.auto:
            errs = ", ".join(f"{r['candidate']} {r['rms_log_error']:.4f}" for r in self.auto["table"]
                             if r.get("rms_log_error") is not None)
            lines.append(f"{'forecast':<22}{self.auto['reason']}"
                         + (f"; RMS log error on the held-out {self.auto.get('axis', '')} cuts: {errs}" if errs else "")
                         + f"; interval scale s = {self.auto['interval_scale']:.3f}")
            bend = self.auto.get("bend")
            if bend and bend.get("steepens_beyond_law"):
                lines.append(f"{'bend':<22}{bend['note']}")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)


def fmt_flops(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3g} FLOPs"


def fmt_duration(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "n/a"
    for div, unit in ((365.25 * 86400, "years"), (86400, "days"), (3600, "hours"), (60, "minutes")):
        if s >= div:
            return f"{s / div:.3g} {unit}"
    return f"{s:.3g} s"

"""The forecaster's choice in words: the axis, each candidate's error at each cut, the weights, what was
set aside, the interval's scale and the bend check (`scaling fit --approach auto`, `plan`, `backtest`)."""

from __future__ import annotations

import numpy as np

from analysis.forecast.candidates import CANDIDATES


def describe_forecast(fc) -> str:
    """One block of text about a fitted `Forecaster`."""
    sel = fc.selection_
    cuts = sel.get("cuts") or []
    where = f" (cuts at {', '.join(f'{c:.3g}' for c in cuts)})" if cuts else ""
    members = ", ".join(f"{n} {100 * w:.0f}%" for n, w in fc.weights_.items())
    lines = [f"forecast: {members} ({CANDIDATES[fc.chosen_].law} heaviest); {sel.get('method', '')}{where}",
             f"  axis: {sel.get('axis', fc.axis_)}: {sel.get('axis_reason', '')}",
             f"  {'candidate':<24}{'RMS log error':>14}{'by cut':>26}{'mean error':>12}{'weight':>8}"]
    for r in sel.get("table", []):
        by_cut = ", ".join(f"{v:.4f}" for v in r.get("rms_log_error_by_cut", []))
        rms = r.get("rms_log_error")
        mean = r.get("mean_log_error")
        lines.append(f"  {r['candidate']:<24}{(f'{rms:.4f}' if rms is not None else '-'):>14}{by_cut:>26}"
                     f"{(f'{100 * np.expm1(mean):+.2f}%' if mean is not None else '-'):>12}"
                     f"{100 * r.get('weight', 0.0):>7.0f}%")
    if sel.get("reason"):
        lines.append(f"  why: {sel['reason']}")
    for d in sel.get("degenerate", []):
        lines.append(f"  degenerate, not used: {d['reason']}")
    for skip in sel.get("skipped", []):
        lines.append(f"  not tried: {skip['candidate']}: {skip['reason']}")
    aside = (fc.domain_ or {}).get("counts") or {}
    if aside:
        lines.append("  set aside before fitting: " + ", ".join(f"{n} row(s) by rule {r!r}" for r, n in aside.items()))
    lines.append(f"  interval: exp(+-z s sigma(N, D)) around the forecast, s = {fc.interval_scale_:.3f} from "
                 f"{len(fc.interval_scores_)} held-out rows at {fc.n_cuts_} cut(s); sigma = bootstrap spread + "
                 "residual scatter + the members' disagreement")
    if fc.bend_:
        lines.append(f"  bend check: {fc.bend_['note']}")
    return "\n".join(lines)

"""The report's forecast section: the forecaster's law, its compute-optimal loss with the calibrated
interval, the other candidate laws as labelled alternatives, and the cut table that weighed them.

The same story every command tells (`analysis.forecast`): the headline numbers, L_opt(C) and the cut
table come from the fitted `Forecaster`, never from a law the forecaster did not use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.figures import layout, clip_note
from analysis.figures_paper import add_band
from analysis.forecast import describe_forecast
from analysis.forecast.candidates import CANDIDATES
from analysis.report_html import esc, num, table
from analysis.solvers import compute_optimal

COLORS = {"chinchilla": "#d62728", "chinchilla_nonembedding": "#ff7f0e", "kaplan_nd": "#9467bd",
          "kaplan_bounded": "#1f77b4", "data_constrained": "#8c564b"}


def _optimal_curve(law, C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        N, D = compute_optimal(law, C)
        return np.asarray(N, float), np.asarray(D, float), np.asarray(law(N, D), float)


def forecast_loss_figure(fc, points: pd.DataFrame | None, heldout: pd.DataFrame | None,
                         C_range: tuple[float, float], *, extend: float = 100.0, level: float = 0.95) -> go.Figure:
    """L_opt(C) of the forecaster's combined law with its calibrated interval band, each other candidate's
    L_opt(C) dashed, the runs, and the held-out / target runs with their predicted intervals."""
    c_lo, c_hi = C_range
    C = np.logspace(math.log10(c_lo) - 0.2, math.log10(c_hi * extend), 80)
    fig = go.Figure()
    N, D, L = _optimal_curve(fc.law_for(), C)
    ok = np.isfinite(L)
    if ok.any():
        _, lo, hi = fc.predict(N[ok], D[ok], interval=level)
        add_band(fig, C[ok], lo, hi, "#2ca02c", f"{100 * level:.0f}% forecast interval")
        members = ", ".join(f"{n} {100 * w:.0f}%" for n, w in fc.weights_.items())
        fig.add_trace(go.Scatter(x=C[ok], y=L[ok], mode="lines", line=dict(color="#2ca02c", width=3),
                                 name=f"forecast L_opt(C) ({members})",
                                 hovertemplate="C = %{x:.3g} FLOPs<br>L_opt = %{y:.4f} nats/token<extra>forecast</extra>"))
    ys = [L[ok]]
    for name, est in (getattr(fc, "candidates_", None) or fc.members_).items():
        if len(fc.weights_) == 1 and name in fc.weights_:
            continue
        law = est.law_.base if hasattr(est.law_, "base") else est.law_
        _, _, Lc = _optimal_curve(law, C)
        if not np.isfinite(Lc).any():
            continue
        w = fc.weights_.get(name, 0.0)
        fig.add_trace(go.Scatter(x=C, y=Lc, mode="lines", line=dict(color=COLORS.get(name, "#777"), width=1.5, dash="dash"),
                                 name=f"{name} alone (weight {100 * w:.0f}%)",
                                 hovertemplate=f"C = %{{x:.3g}} FLOPs<br>{name}: %{{y:.4f}}<extra></extra>"))
    if points is not None and len(points):
        fig.add_trace(go.Scatter(x=points["C"], y=points["loss"], mode="markers", name="runs (final loss)",
                                 marker=dict(size=6, color="rgba(90,90,90,0.55)"), customdata=points["run_id"],
                                 hovertemplate="run %{customdata}<br>C = %{x:.3g}<br>loss = %{y:.4f}<extra></extra>"))
        ys.append(points["loss"].to_numpy(dtype=float))
    if heldout is not None and len(heldout):
        lo_h = pd.to_numeric(heldout.get("lower"), errors="coerce").to_numpy(dtype=float)
        hi_h = pd.to_numeric(heldout.get("upper"), errors="coerce").to_numpy(dtype=float)
        pred = heldout["predicted"].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(x=heldout["C"], y=pred, mode="markers", name="forecast for the held-out / target runs",
                                 marker=dict(symbol="line-ew-open", size=16, color="#444", line=dict(width=2)),
                                 error_y=dict(type="data", symmetric=False, array=np.nan_to_num(hi_h - pred),
                                              arrayminus=np.nan_to_num(pred - lo_h), color="#444", thickness=1.5, width=8)))
        fig.add_trace(go.Scatter(x=heldout["C"], y=heldout["loss"], mode="markers", name="held-out / target run (observed)",
                                 marker=dict(symbol="star", size=15, color="#2ca02c", line=dict(width=1, color="black"))))
        ys.append(heldout["loss"].to_numpy(dtype=float))
    fig.add_vrect(x0=c_hi, x1=c_hi * extend, fillcolor="rgba(120,120,120,0.08)", line_width=0,
                  annotation_text="extrapolated", annotation_position="top left")
    fig = layout(fig, "Forecast: compute-optimal loss with its calibrated interval", "training compute C (FLOPs)",
                  "loss (nats/token)", logy=True, xfmt="power", yfmt="none", height=480)
    finite = np.concatenate([y[np.isfinite(y)] for y in ys if y.size]) if ys else np.array([1.0])
    lo_y, hi_y = float(np.min(finite)) * 0.97, float(np.quantile(finite, 0.98)) * 1.03
    fig.update_yaxes(range=[math.log10(lo_y), math.log10(hi_y)])
    fig.update_layout(legend=dict(x=0.99, xanchor="right", y=0.99))
    return clip_note(fig, ys, lo_y, hi_y)


def cut_figure(fc) -> go.Figure:
    """Each candidate's RMS log error at each cut (the forecaster's evidence), bars grouped by cut."""
    sel = fc.selection_
    cuts = sel.get("cuts") or []
    fig = go.Figure()
    for r in sel.get("table", []):
        y = [v if v is not None and math.isfinite(v) else None for v in r.get("rms_log_error_by_cut", [])]
        fig.add_trace(go.Bar(x=[f"fit ≤ {c:.3g}" for c in cuts], y=y, marker_color=COLORS.get(r["candidate"], "#777"),
                             name=f"{r['candidate']} (weight {100 * r.get('weight', 0.0):.0f}%)"))
    fig = layout(fig, f"Held-out error at each cut along {sel.get('axis', '')}", "cut (largest value fitted)",
                  "RMS log error of the forecast", logx=False, height=400)
    fig.update_layout(barmode="group")
    return fig


def forecast_html(fc, fig, points: pd.DataFrame | None, heldout: pd.DataFrame | None,
                  C_range: tuple[float, float] | None, *, extend: float, level: float) -> str:
    """The forecast section: headline, the figure of L_opt(C), the cut table and figure, and what was set
    aside or found degenerate. `fig(name, title, figure)` registers and renders a figure."""
    sel = fc.selection_
    parts = ["<h2>Forecast (the law every command uses)</h2>"]
    members = ", ".join(f"{esc(n)} ({esc(CANDIDATES[n].law)}) {100 * w:.0f}%" for n, w in fc.weights_.items())
    parts.append(f"<p class='lead'>The forecaster weighs every candidate law by how well it forecasts this table's "
                 f"held-out {esc(sel.get('axis', ''))} cuts; <code>scaling plan</code>, <code>backtest</code> and "
                 f"<code>demo</code> forecast with the same law and interval. Members: {members}. "
                 f"{esc(sel.get('reason', ''))}.</p>")
    if C_range is not None:
        C10 = 10.0 * C_range[1]
        N, D, L = _optimal_curve(fc.law_for(), np.array([C10]))
        if np.isfinite(L).all():
            _, lo, hi = fc.predict(N, D, interval=level)
            parts.append(f"<p class='note'>At 10× the largest budget ({C10:.3g} FLOPs): N_opt = {num(N[0])}, "
                         f"D_opt = {num(D[0])} tokens, loss {L[0]:.4f} nats/token, {100 * level:.0f}% interval "
                         f"{lo[0]:.4f} – {hi[0]:.4f}.</p>")
        parts.append(fig("forecast-loss-opt", "Forecast L_opt(C)",
                         forecast_loss_figure(fc, points, heldout, C_range, extend=extend, level=level)))
    if fc.bend_:
        parts.append(f"<p class='note{' warn' if fc.bend_.get('steepens_beyond_law') else ''}'>Bend check: "
                     f"{esc(fc.bend_['note'])}.</p>")
    rows = [[esc(r["candidate"]) + (" <b>(heaviest)</b>" if r["candidate"] == fc.chosen_ else ""),
             num(r.get("rms_log_error")), ", ".join(num(v) for v in r.get("rms_log_error_by_cut", [])),
             "–" if r.get("mean_log_error") is None else f"{100 * np.expm1(r['mean_log_error']):+.2f}%",
             f"{100 * r.get('weight', 0.0):.0f}%", esc(r.get("degenerate") or "")] for r in sel.get("table", [])]
    if rows:
        parts.append("<h3>The cut table</h3>" + table(["candidate", "RMS log error", "by cut", "mean error", "weight",
                                                       "degenerate"], rows))
        parts.append(fig("forecast-cuts", "Held-out error by cut", cut_figure(fc)))
    extra = [f"not tried: {s['candidate']}: {s['reason']}" for s in sel.get("skipped", [])]
    counts = (fc.domain_ or {}).get("counts") or {}
    extra += [f"set aside before fitting: {n} row(s) by rule '{r}' ({(fc.domain_.get('rules') or {}).get(r, '')})"
              for r, n in counts.items()]
    if extra:
        parts.append("<ul class='note'>" + "".join(f"<li>{esc(e)}</li>" for e in extra) + "</ul>")
    parts.append(f"<pre class='note'>{esc(describe_forecast(fc))}</pre>")
    return "".join(parts)


def forecast_summary(fc) -> dict[str, Any]:
    """The forecaster's choice as a small dict (for `ReportData.auto` and the page's table)."""
    return {"chosen": fc.chosen_, "weights": dict(fc.weights_), "method": fc.selection_.get("method", ""),
            "reason": fc.selection_.get("reason", ""), "table": list(fc.selection_.get("table", []))}

"""The HTML page of `scaling compare`: both compute-optimal frontiers L_opt(C) with their bands on one plot,
k(C) with its band (log C), the two IsoFLOP families side by side, the multiplier table, the trend in words
and each sweep's reporting checklist. One self-contained file, plotly inlined, written atomically."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.compare import Comparison, Side, frontier_loss
from analysis.figures import AXIS_STYLE, FONT, budget_colors, layout
from analysis.frontier import group_budgets
from analysis.report_html import checklist_html, esc, figure_html, num, page_html, table
from contracts.conventions import FLOPS_PER_PARAM_TOKEN
from contracts.jsonio import write_atomic

COLORS = {"base": "#1f77b4", "variant": "#d62728"}
N_GRID = 40


def _grid(cmp: Comparison) -> np.ndarray:
    lo = min(min(cmp.base_.budgets), min(cmp.variant_.budgets)) / 2.0
    return np.geomspace(lo, max(cmp.to_, max(cmp.C_)), N_GRID)


def _band(side: Side, C: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L_opt(C) and the forecaster's interval of the loss at the compute-optimal (N, D) (what `plan` prints)."""
    L, N = frontier_loss(side.fit.law_for(), C, with_n=True)
    _, lo, hi = side.fit.predict(N, C / (FLOPS_PER_PARAM_TOKEN * N), interval=level)
    return L, np.asarray(lo), np.asarray(hi)


def _minima(side: Side) -> tuple[list[float], list[float]]:
    """Each budget's lowest measured loss (the points nearest the frontier)."""
    if side.points is None:
        return [], []
    idx, Cs = group_budgets(side.points.C, side.points.budget)
    return Cs, [float(np.min(side.points.loss[i])) for i in idx]


def frontiers_figure(cmp: Comparison) -> go.Figure:
    C = _grid(cmp)
    fig = go.Figure()
    for side in (cmp.base_, cmp.variant_):
        color = COLORS[side.name]
        L, lo, hi = _band(side, C, cmp.interval_level)
        fig.add_trace(go.Scatter(x=np.r_[C, C[::-1]], y=np.r_[hi, lo[::-1]], fill="toself", line=dict(width=0),
                                 fillcolor=color, opacity=0.15, hoverinfo="skip",
                                 name=f"{side.name}: {cmp.interval_level:.0%} interval"))
        fig.add_trace(go.Scatter(x=C, y=L, mode="lines", line=dict(color=color, width=2.5),
                                 name=f"{side.name}: L_opt(C) ({side.fit.chosen_})"))
        mc, ml = _minima(side)
        if mc:
            fig.add_trace(go.Scatter(x=mc, y=ml, mode="markers", marker=dict(color=color, size=9, symbol="diamond"),
                                     name=f"{side.name}: lowest loss per budget"))
    fig.add_vline(x=max(max(cmp.base_.budgets), max(cmp.variant_.budgets)), line=dict(dash="dot", color="#888"))
    return layout(fig, "Compute-optimal frontiers L_opt(C) of both sweeps", "C (FLOPs)", "loss (nats/token)",
                  xfmt="power")


def multiplier_figure(cmp: Comparison) -> go.Figure:
    C = _grid(cmp)
    k, lo, hi = cmp.band(C)
    ok = np.isfinite(lo) & np.isfinite(hi)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.r_[C[ok], C[ok][::-1]], y=np.r_[hi[ok], lo[ok][::-1]], fill="toself",
                             line=dict(width=0), fillcolor="#7f3fbf", opacity=0.18, hoverinfo="skip",
                             name=f"{cmp.interval_level:.0%} interval"))
    fig.add_trace(go.Scatter(x=C, y=k, mode="lines", line=dict(color="#7f3fbf", width=2.5), name="k(C)"))
    at = [(c, kk, iv) for c, kk, iv in zip(cmp.C_, cmp.k_, cmp.k_interval_) if iv and all(map(math.isfinite, iv))]
    if at:
        fig.add_trace(go.Scatter(x=[a[0] for a in at], y=[a[1] for a in at], mode="markers",
                                 marker=dict(color="#7f3fbf", size=9),
                                 error_y=dict(type="data", symmetric=False, array=[a[2][1] - a[1] for a in at],
                                              arrayminus=[a[1] - a[2][0] for a in at]),
                                 name="k at the budgets and --to"))
    fig.add_hline(y=1.0, line=dict(dash="dash", color="#555"), annotation_text="k = 1 (no difference)")
    fig.add_vline(x=max(max(cmp.base_.budgets), max(cmp.variant_.budgets)), line=dict(dash="dot", color="#888"))
    return layout(fig, "k(C): the variant at C reaches the base's loss at k C", "C (FLOPs)",
                  "effective-compute multiplier k", logy=True, xfmt="power")


def isoflop_figure(cmp: Comparison) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=[f"base: {cmp.base_.fit.source_}"[:70], f"variant: {cmp.variant_.fit.source_}"[:70]])
    for col, side in ((1, cmp.base_), (2, cmp.variant_)):
        pts = side.points
        if pts is None:
            continue
        idx, Cs = group_budgets(pts.C, pts.budget)
        colors = budget_colors(Cs)
        for i, c, color in zip(idx, Cs, colors):
            order = i[np.argsort(pts.N[i])]
            fig.add_trace(go.Scatter(x=pts.N[order], y=pts.loss[order], mode="lines+markers",
                                     line=dict(color=color), marker=dict(color=color, size=8),
                                     name=f"{side.name} C = {c:.2g}", legendgroup=side.name), row=1, col=col)
    fig.update_layout(template="plotly_white", font=FONT, height=480, title=dict(text="IsoFLOP families", x=0.01),
                      margin=dict(l=80, r=30, t=80, b=70))
    fig.update_xaxes(type="log", title_text="N (parameters)", **AXIS_STYLE)
    fig.update_yaxes(title_text="loss (nats/token)", **AXIS_STYLE, row=1, col=1)
    return fig


def _rows(d: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in d["multiplier"]:
        iv = r["interval"]
        ivs = "–" if not iv else f"{num(iv[0], '.3g')} – {num(iv[1], '.3g') if iv[1] is not None else '∞'}"
        rows.append([f"{r['C']:.3g}" + (f" ({r['kind']})" if r["kind"] != "budget" else ""),
                     num(r["loss_base"]), num(r["loss_variant"]), num(r["k"], ".3g"), ivs,
                     "<b>yes</b>" if r["resolved"] else "no"])
    return rows


def write_compare_report(cmp: Comparison, out: str | Path, title: str = "Compare: the effective-compute multiplier") -> Path:
    """Write the page of `cmp` (a fitted `analysis.compare.Comparison`) to `out`; returns the path."""
    d = cmp.to_dict()
    figs = [frontiers_figure(cmp), multiplier_figure(cmp), isoflop_figure(cmp)]
    t = d["trend"]
    ti = t["interval"]
    parts = [f"<p class='lead'>{esc(d['sentence'])}</p>",
             f"<p class='note'>Law: {esc(d['law']['reason'])}. k(C) solves L_variant,opt(C) = L_base,opt(k C); "
             f"intervals: {esc(d['interval_method'])} ({d['n_bootstrap']} paired draws).</p>",
             "<h2>Compute-optimal frontiers</h2>", figure_html(figs[0]),
             "<h2>The multiplier k(C)</h2>", figure_html(figs[1]),
             table(["C (FLOPs)", "L_base,opt", "L_variant,opt", "k", f"{d['interval_level']:.0%} interval",
                    "resolved (k ≠ 1)"], _rows(d)),
             f"<p class='note'>Trend: d log10 k / d log10 C = {num(t['per_decade'], '+.3f')} (interval "
             + (f"{ti[0]:+.3f} to {ti[1]:+.3f}" if ti else "–") + f") over {t['over'][0]:.3g}–{t['over'][1]:.3g} "
             "FLOPs.</p>",
             "<h2>IsoFLOP families</h2>", figure_html(figs[2]),
             checklist_html(d["base"]["checklist"], "Reporting checklist: base"),
             checklist_html(d["variant"]["checklist"], "Reporting checklist: variant")]
    page = page_html(title, f"Base: <code>{esc(d['base']['source'])}</code>; variant: <code>{esc(d['variant']['source'])}"
                            f"</code>. Losses in nats/token; C in FLOPs ({esc(d['law']['flops_convention'])}, N "
                            f"{esc(d['law']['n_convention'])}).", "".join(parts), "analysis.report_compare")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, page)
    return out

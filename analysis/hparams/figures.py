"""The report's hyper-parameter figures (plotly; no I/O, no fitting): loss vs setting per (N, D) cell
with each cell's optimum, and the law s*(C) with its band, extrapolated 100x like Hoffmann et al.'s Fig. 3."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from analysis.figures import COLORSCALE, layout
from contracts.counts import format_count

EXTEND = 100.0
"""The law is drawn to this multiple of the largest cell's C."""


def cells_figure(block) -> go.Figure:
    """Loss vs setting, one line per (N, D) cell coloured by ln N; diverged settings as crosses at the top
    of the panel; each kept cell's optimum a star on its curve; kept-out cells dashed."""
    name = "peak LR" if block.setting == "lr" else "batch (tokens/step)"
    fig = go.Figure()
    Ns = np.log([c.N for c in block.cells])
    lo, hi = Ns.min(), Ns.max()
    finite = [v for c in block.cells for v in c.losses if v is not None]
    top = max(finite) if finite else 1.0
    for c in block.cells:
        color = sample_colorscale(COLORSCALE, [0.0 if hi == lo else (np.log(c.N) - lo) / (hi - lo)])[0]
        label = f"N {format_count(c.N)}, D {format_count(c.D)}"
        xs = [s for s, v in zip(c.settings, c.losses) if v is not None]
        ys = [v for v in c.losses if v is not None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=label, line=dict(color=color,
                                 dash="solid" if c.kept else "dash"),
                                 hovertemplate=f"{label}<br>{name} %{{x:.3g}}<br>loss %{{y:.4f}} nats/token<extra></extra>"))
        dead = [s for s, v in zip(c.settings, c.losses) if v is None]
        if dead:
            fig.add_trace(go.Scatter(x=dead, y=[top] * len(dead), mode="markers", showlegend=False,
                                     marker=dict(symbol="x", size=11, color=color),
                                     hovertemplate=f"{label}<br>{name} %{{x:.3g}}: diverged<extra></extra>"))
        if c.kept:
            fig.add_trace(go.Scatter(x=[c.optimum], y=[c.best_loss], mode="markers", showlegend=False,
                                     marker=dict(symbol="star", size=15, color=color, line=dict(color="#222", width=1)),
                                     hovertemplate=f"{label}<br>optimum {name} %{{x:.3g}} ({c.method})<extra></extra>"))
    return layout(fig, f"Loss vs {name} per (N, D) cell: stars are the estimated optima, crosses diverged runs, "
                       "dashed cells kept out", name, "validation loss (nats/token)")


def law_figure(block) -> go.Figure:
    """s* of each kept cell vs C, and the law with its band from the smallest cell's C to EXTEND x the
    largest; for the (N, D) form along the cells' median D/N."""
    law = block.law
    name = "peak LR" if block.setting == "lr" else "batch (tokens/step)"
    kept = [c for c in block.cells if c.kept]
    C = np.array([c.C for c in kept])
    ratio = float(np.median([c.D / c.N for c in kept]))
    grid = np.geomspace(C.min(), C.max() * EXTEND, 80)
    N = np.sqrt(grid / (6 * ratio))
    D = ratio * N
    pred = law.predict(N, D)
    lo, hi = law.predict_interval(N, D)
    path = "" if law.form_ == "C" else f" at D/N = {ratio:.3g} (the cells' median)"
    fig = go.Figure()
    if np.all(np.isfinite(lo)):
        fig.add_trace(go.Scatter(x=np.r_[grid, grid[::-1]], y=np.r_[hi, lo[::-1]], fill="toself", mode="lines",
                                 line=dict(width=0), fillcolor="rgba(31,119,180,0.18)", hoverinfo="skip",
                                 name=f"{100 * law.interval_level:.0f}% interval"))
    fig.add_trace(go.Scatter(x=grid, y=pred, mode="lines", line=dict(color="#1f77b4", width=2.5),
                             name=f"law ({law.form_}){path}",
                             hovertemplate="C %{x:.3g} FLOPs<br>" + name + " %{y:.3g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=C, y=[c.optimum for c in kept], mode="markers", name="cell optima",
                             marker=dict(size=10, color="#d62728"),
                             text=[f"N {format_count(c.N)}, D {format_count(c.D)}, {c.method}" for c in kept],
                             hovertemplate="%{text}<br>C %{x:.3g} FLOPs<br>" + name + " %{y:.3g}<extra></extra>"))
    fig.add_vline(x=float(C.max()), line=dict(color="#888", dash="dot"))
    return layout(fig, f"Optimal {name} vs compute, extrapolated {EXTEND:.0f}x beyond the largest cell",
                  "C (FLOPs, 6ND)", name, logy=True, xfmt="power")


def hparams_section(result, fig) -> str:
    """The report's section: per law, a line of facts and the two figures (`fig(name, title, figure)`
    returns the figure's HTML, as in `analysis.report.render_report`)."""
    from analysis.hparams.text import law_value
    from analysis.report_html import esc

    parts = ["<h2>Learning-rate and batch laws</h2><p class='lead'>Each (N, D) cell's optimum from a quadratic "
             "in the log of the setting, or DeepSeek LLM's near-optimal band when the curve is flat; the law's form "
             "chosen by forecasting the larger cells from the smaller ones (scaling hparams).</p>"]
    for block in (result.lr, result.batch):
        if block is None:
            continue
        law = block.law
        kept = sum(c.kept for c in block.cells)
        parts.append(f"<p class='note'>{esc(law_value(law, block.setting))} ({esc(law.form_)} form: "
                     f"{esc((law.selection_ or {}).get('reason', 'given'))}); {kept} of {len(block.cells)} cells kept."
                     "</p>")
        parts.append(fig(f"hparams-{block.setting}-cells", f"Loss vs {block.setting}", cells_figure(block)))
        parts.append(fig(f"hparams-{block.setting}-law", f"{block.setting}* vs C", law_figure(block)))
    return "".join(parts)

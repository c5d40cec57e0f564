"""The figures a scaling-law paper shows (plotly; no I/O, no fitting): Chinchilla's Fig. 3 row, the
compute-optimal loss with its band, predicted vs observed, residuals against N and D/N, the
bootstrap cloud of the exponents.

    fig3_figure        Hoffmann et al. 2022 Fig. 3: IsoFLOP curves | N_opt(C) | D_opt(C), every approach
                       that ran, power laws extrapolated to `extend` x the largest budget, bootstrap bands
    loss_opt_figure    L_opt(C) = L(N_opt(C), D_opt(C)) (eq. 4 put into eq. 2) with its band, the runs,
                       and the held-out / target runs with their predicted intervals
    predicted_figure   predicted against observed loss, the line y = x
    residuals_nd_figure  relative residuals against N and against D/N (a trend means a missing term)
    exponents_figure   the bootstrap draws of (alpha, beta) coloured by a = beta / (alpha + beta)

A `Frontier` is one approach's N_opt(C), D_opt(C): `frontiers_of(fit1, fit2, fit3)` builds them from
the fitted estimators, with bands when the estimator has bootstrap draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.bootstrap import percentile_interval
from analysis.figures import (BUDGET_SCALE, COLORSCALE, FONT, AXIS_STYLE, layout, budget_colorbar, budget_colors,
                              clip_note, si)
from analysis.laws import CHINCHILLA_PAPER, ChinchillaLaw, chinchilla_frontier, chinchilla_loss, chinchilla_optimum
from contracts.conventions import tokens_for_flops

APPROACH_STYLE = {"1": ("#1f77b4", "approach 1 (envelope)"), "2": ("#ff7f0e", "approach 2 (IsoFLOP)"),
                  "3": ("#d62728", "approach 3 (L(N, D) fit)")}


@dataclass
class Frontier:
    """One approach's compute-optimal frontier: `at(C)` gives (N, D), `band(C)` ((N_lo, N_hi), (D_lo,
    D_hi)) or None; `points` the per-budget optima it was fitted to (C, N, D), if any."""

    approach: str
    at: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    band: Callable[[np.ndarray], tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]] | None
    points: pd.DataFrame | None
    a: float
    b: float

    @property
    def label(self) -> str:
        return APPROACH_STYLE[self.approach][1]

    @property
    def color(self) -> str:
        return APPROACH_STYLE[self.approach][0]


def frontiers_of(fit1: Any = None, fit2: Any = None, fit3: Any = None, level: float = 0.95) -> list[Frontier]:
    """The frontier of each fitted estimator given (approach 1 and 2: `EnvelopeFit`/`IsoFLOPFit`, their
    power laws N_opt = k C^a; approach 3: `ChinchillaFit`, N_opt = G (C/6)^a, eq. 4)."""
    out = []
    for key, est in (("1", fit1), ("2", fit2), ("3", fit3)):
        if est is None:
            continue
        band = _band_of(est, level) if hasattr(est, "bootstrap_params_") else None
        pts = None
        if key == "2":
            used = [b for b in est.budgets_ if b.get("used")]
            pts = pd.DataFrame({"C": [b["C"] for b in used], "N": [b["N_opt"] for b in used],
                                "D": [b["D_opt"] for b in used]})
        elif key == "1":
            env = est.envelope_
            pts = pd.DataFrame({"C": env["C"], "N": env["N_opt"], "D": env["D_opt"]})
            if len(pts) > 60:
                pts = pts.iloc[np.linspace(0, len(pts) - 1, 60).astype(int)]
        out.append(Frontier(key, lambda C, est=est: est.compute_optimal(C), band, pts, float(est.a_), float(est.b_)))
    return out


def _band_of(est: Any, level: float) -> Callable:
    """((N_lo, N_hi), (D_lo, D_hi)) at C: the `level` percentiles over the estimator's bootstrap fits."""
    def band(C):
        (_, nlo, nhi), (_, dlo, dhi) = est.compute_optimal(C, interval=level)
        return (nlo, nhi), (dlo, dhi)
    return band


def add_band(fig, x, lo, hi, color: str, name: str, row=None, col=None, showlegend=True, group=None) -> None:
    rgba = _rgba(color, 0.18)
    kw = {} if row is None else dict(row=row, col=col)
    fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
                             fillcolor=rgba, line=dict(width=0), name=name, legendgroup=group or name,
                             showlegend=showlegend, hoverinfo="skip"), **kw)


def _rgba(color: str, alpha: float) -> str:
    if color.startswith("#"):
        r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
        return f"rgba({r},{g},{b},{alpha})"
    return color.replace("rgb(", "rgba(").replace(")", f",{alpha})")


def _isoflop_panel(fig, groups, law: ChinchillaLaw | None, budgets: Sequence[float], max_legend: int) -> None:
    """Panel 1: loss against N at each budget (the data and parabolas of approach 2 when it ran, else
    the approach-3 law's IsoFLOP curves L(N, C / 6N))."""
    if groups:
        colors = budget_colors([g["C"] for g in groups])
        for g, color in zip(groups, colors):
            p = g["points"]
            fig.add_trace(go.Scatter(x=p["N"], y=p["loss"], mode="markers", marker=dict(color=color, size=6),
                                     showlegend=False, customdata=np.stack([p["run_id"], si(p["N"])], axis=-1),
                                     hovertemplate=f"budget {g['C']:.3g} FLOPs<br>run %{{customdata[0]}}<br>"
                                                   "N = %{customdata[1]} params<br>loss = %{y:.4f} nats/token"
                                                   "<extra></extra>"), row=1, col=1)
            if g.get("coef") is not None:
                x = np.linspace(np.log10(p["N"].min()) - 0.1, np.log10(p["N"].max()) + 0.1, 60)
                fig.add_trace(go.Scatter(x=10**x, y=np.polyval(g["coef"], x), mode="lines", showlegend=False,
                                         line=dict(color=color, width=1.5), hoverinfo="skip"), row=1, col=1)
    elif law is not None:
        for C, color in zip(budgets, budget_colors(budgets)):
            Nc, _ = law.compute_optimal(C)
            N = float(Nc) * np.logspace(-1, 1, 60)
            fig.add_trace(go.Scatter(x=N, y=law(N, tokens_for_flops(C, N)), mode="lines", showlegend=False,
                                     line=dict(color=color, width=1.5),
                                     hovertemplate=f"C = {C:.3g} FLOPs<br>N = %{{x:.3~s}}<br>L = %{{y:.4f}} nats/token"
                                                   "<extra>law</extra>"), row=1, col=1)
    fig.add_trace(budget_colorbar(budgets, x=1.01, len=0.75), row=1, col=1)


def fig3_figure(frontiers: Sequence[Frontier], groups: Sequence[Mapping[str, Any]] | None,
                law: ChinchillaLaw | None, C_range: tuple[float, float], *, extend: float = 100.0,
                max_legend: int = 8) -> go.Figure:
    """Hoffmann et al. 2022 Fig. 3: (left) IsoFLOP curves, (middle) N_opt(C), (right) D_opt(C), each
    approach's power law drawn from the smallest budget to `extend` x the largest with its bootstrap
    band; dots are the per-budget optima each approach fitted. Past `max_legend` budgets the IsoFLOP
    panel is keyed by a colour bar in C."""
    c_lo, c_hi = C_range
    budgets = [g["C"] for g in groups] if groups else list(np.logspace(math.log10(c_lo), math.log10(c_hi), 5))
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09,
                        subplot_titles=("IsoFLOP curves", "N_opt(C): parameters", "D_opt(C): tokens"))
    _isoflop_panel(fig, groups, law, budgets, max_legend)
    C = np.logspace(math.log10(c_lo) - 0.2, math.log10(c_hi * extend), 120)
    for f in frontiers:
        N, D = f.at(C)
        band = f.band(C) if f.band is not None else None
        for col, y, bnd, unit in ((2, N, band[0] if band else None, "params"), (3, D, band[1] if band else None, "tokens")):
            if bnd is not None:
                add_band(fig, C, np.asarray(bnd[0]), np.asarray(bnd[1]), f.color, f"{f.label} band", row=1, col=col,
                      showlegend=col == 2, group=f.label)
            exp = f.a if col == 2 else f.b
            fig.add_trace(go.Scatter(x=C, y=y, mode="lines", line=dict(color=f.color, width=2.2),
                                     name=f"{f.label}: ∝ C^{f.a:.3f} / C^{f.b:.3f}", legendgroup=f.label,
                                     showlegend=col == 2, customdata=si(y),
                                     hovertemplate=f"C = %{{x:.3g}} FLOPs<br>%{{customdata}} {unit} (∝ C^{exp:.3f})"
                                                   f"<extra>{f.label}</extra>"), row=1, col=col)
            if f.points is not None and len(f.points):
                fig.add_trace(go.Scatter(x=f.points["C"], y=f.points["N" if col == 2 else "D"], mode="markers",
                                         marker=dict(color=f.color, size=7, symbol="circle-open" if f.approach == "1"
                                                     else "diamond", line=dict(width=1.5, color=f.color)),
                                         legendgroup=f.label, showlegend=False, customdata=si(f.points["N" if col == 2 else "D"]),
                                         hovertemplate=f"C = %{{x:.3g}} FLOPs<br>%{{customdata}} {unit}"
                                                       f"<extra>{f.label} optimum</extra>"), row=1, col=col)
    for col in (2, 3):
        fig.add_vrect(x0=c_hi, x1=c_hi * extend, fillcolor="rgba(120,120,120,0.08)", line_width=0, row=1, col=col)
        fig.add_annotation(x=math.log10(c_hi * math.sqrt(extend)), y=0.02, yref="paper", text="extrapolated",
                           showarrow=False, font=dict(size=11, color="#666"), xref=f"x{col}", yanchor="bottom")
    fig.update_layout(template="plotly_white", font=FONT, height=540, margin=dict(l=70, r=90, t=70, b=150),
                      title=dict(text=f"Chinchilla Fig. 3: IsoFLOP curves and the compute-optimal N and D, "
                                      f"extrapolated to {extend:g}× the largest budget", x=0.01),
                      legend=dict(orientation="h", y=-0.22, yanchor="top", x=0, bgcolor="rgba(255,255,255,0.85)"))
    fig.update_xaxes(type="log", exponentformat="power", **AXIS_STYLE)
    fig.update_yaxes(type="log", exponentformat="B", **AXIS_STYLE)
    fig.update_xaxes(title_text="model size N (parameters)", exponentformat="B", row=1, col=1)
    fig.update_yaxes(title_text="loss (nats/token)", type="linear", exponentformat="none", row=1, col=1)
    for col in (2, 3):
        fig.update_xaxes(title_text="training compute C (FLOPs)", row=1, col=col)
    return fig


def loss_opt_band(fit3: Any, C: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The `level` percentile band of L_opt(C) over the approach-3 bootstrap draws (None without draws):
    each draw's optimum (eq. 4) put into its own L(N, D) (eq. 2)."""
    bp = getattr(fit3, "bootstrap_params_", None)
    if not bp:
        return None
    p = {k: np.asarray(bp[k])[:, None] for k in ("E", "A", "B", "alpha", "beta")}
    G, a, b = chinchilla_frontier(p["A"], p["B"], p["alpha"], p["beta"])
    N, D = chinchilla_optimum(C[None, :], G, a, b)
    lo, hi = percentile_interval(chinchilla_loss(N, D, **p), level)
    return np.asarray(lo), np.asarray(hi)


def loss_opt_figure(fit3: Any, points: pd.DataFrame | None, heldout: pd.DataFrame | None, C_range: tuple[float, float],
                    *, level: float = 0.95, extend: float = 100.0, law_name: str = "approach 3") -> go.Figure:
    """L_opt(C) of the approach-3 law from the smallest budget to `extend` x the largest, its bootstrap
    band, the runs (grey) and the held-out / target runs (`heldout`: N, D, C, loss, predicted, lower,
    upper, run_id) with their predicted intervals."""
    law = fit3.law_
    c_lo, c_hi = C_range
    C = np.logspace(math.log10(c_lo) - 0.2, math.log10(c_hi * extend), 150)
    fig = go.Figure()
    band = loss_opt_band(fit3, C, level)
    if band is not None:
        add_band(fig, C, band[0], band[1], "#d62728", f"{100 * level:.0f}% bootstrap band")
    fig.add_trace(go.Scatter(x=C, y=law.optimal_loss(C), mode="lines", line=dict(color="#d62728", width=2.5),
                             name=f"L_opt(C), {law_name}",
                             hovertemplate="C = %{x:.3g} FLOPs<br>L_opt = %{y:.4f} nats/token<extra></extra>"))
    if points is not None and len(points):
        fig.add_trace(go.Scatter(x=points["C"], y=points["loss"], mode="markers", name="runs (final loss)",
                                 marker=dict(size=6, color="rgba(90,90,90,0.55)"), customdata=points["run_id"],
                                 hovertemplate="run %{customdata}<br>C = %{x:.3g} FLOPs<br>loss = %{y:.4f} nats/token"
                                               "<extra></extra>"))
    if heldout is not None and len(heldout):
        lo = pd.to_numeric(heldout.get("lower"), errors="coerce").to_numpy(dtype=float)
        hi = pd.to_numeric(heldout.get("upper"), errors="coerce").to_numpy(dtype=float)
        pred = heldout["predicted"].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(
            x=heldout["C"], y=pred, mode="markers", name="prediction for the held-out / target runs",
            marker=dict(symbol="line-ew-open", size=16, color="#444", line=dict(width=2)),
            error_y=dict(type="data", symmetric=False, array=np.nan_to_num(hi - pred), arrayminus=np.nan_to_num(pred - lo),
                         color="#444", thickness=1.5, width=8),
            hovertemplate="C = %{x:.3g} FLOPs<br>predicted %{y:.4f} nats/token<extra>prediction</extra>"))
        fig.add_trace(go.Scatter(x=heldout["C"], y=heldout["loss"], mode="markers", name="held-out / target run (observed)",
                                 marker=dict(symbol="star", size=15, color="#2ca02c", line=dict(width=1, color="black")),
                                 customdata=np.stack([heldout["run_id"].astype(str), si(heldout["N"]), si(heldout["D"])], axis=-1),
                                 hovertemplate="run %{customdata[0]}<br>N = %{customdata[1]} params, D = %{customdata[2]} tokens"
                                               "<br>C = %{x:.3g} FLOPs<br>observed %{y:.4f} nats/token<extra></extra>"))
    fig.add_vrect(x0=c_hi, x1=c_hi * extend, fillcolor="rgba(120,120,120,0.08)", line_width=0,
                  annotation_text="extrapolated", annotation_position="top left")
    fig = layout(fig, "Compute-optimal loss L_opt(C) with its band, extrapolated", "training compute C (FLOPs)",
                  "loss (nats/token)", logy=True, xfmt="power", yfmt="none", height=480)
    ys = [law.optimal_loss(C)] + ([points["loss"].to_numpy()] if points is not None and len(points) else [])
    lo_y = min(float(np.nanmin(y)) for y in ys)
    hi_y = float(np.nanquantile(np.concatenate(ys), 0.98))
    fig.update_yaxes(range=[math.log10(lo_y * 0.97), math.log10(hi_y * 1.03)])
    fig.update_layout(legend=dict(x=0.99, xanchor="right", y=0.99))
    return clip_note(fig, ys, lo_y * 0.97, hi_y * 1.03)


def predicted_figure(points: pd.DataFrame, law: ChinchillaLaw, heldout: pd.DataFrame | None = None) -> go.Figure:
    """Observed loss against the law's prediction L(N, D) for every run (and the held-out runs), with y = x."""
    pred = law(points["N"].to_numpy(), points["D"].to_numpy())
    fig = go.Figure()
    logs = np.log10(points["N"].to_numpy())
    fig.add_trace(go.Scatter(x=pred, y=points["loss"], mode="markers", name="fitted runs",
                             marker=dict(size=7, color=logs, colorscale=COLORSCALE, line=dict(width=0.5, color="#333")),
                             customdata=np.stack([points["run_id"], si(points["N"]), si(points["D"])], axis=-1),
                             hovertemplate="run %{customdata[0]}<br>N = %{customdata[1]}, D = %{customdata[2]}<br>"
                                           "predicted %{x:.4f}, observed %{y:.4f} nats/token<extra></extra>"))
    allv = [pred, points["loss"].to_numpy()]
    if heldout is not None and len(heldout):
        fig.add_trace(go.Scatter(x=heldout["predicted"], y=heldout["loss"], mode="markers", name="held-out / target runs",
                                 marker=dict(size=13, symbol="star", color="#2ca02c", line=dict(width=1, color="black")),
                                 customdata=heldout["run_id"].astype(str),
                                 hovertemplate="run %{customdata}<br>predicted %{x:.4f}, observed %{y:.4f}<extra></extra>"))
        allv += [heldout["predicted"].to_numpy(dtype=float), heldout["loss"].to_numpy(dtype=float)]
    v = np.concatenate(allv)
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="observed = predicted",
                             line=dict(color="#444", dash="dash", width=1), hoverinfo="skip"))
    return layout(fig, "Predicted vs observed loss", "predicted L(N, D) (nats/token)", "observed loss (nats/token)",
                   logx=False, height=460)


def residuals_nd_figure(points: pd.DataFrame, law: ChinchillaLaw) -> go.Figure:
    """Relative residual (observed - predicted) / predicted against N (left) and tokens per parameter D/N
    (right), coloured by C: a trend in either means the law's N or D term is misspecified."""
    N, D = points["N"].to_numpy(), points["D"].to_numpy()
    pred = law(N, D)
    res = 100 * (points["loss"].to_numpy() - pred) / pred
    logc = np.log10(points["C"].to_numpy())
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=("against model size N", "against tokens per parameter D/N"))
    for col, x, xlab in ((1, N, "model size N (parameters)"), (2, D / N, "tokens per parameter D/N")):
        fig.add_trace(go.Scatter(x=x, y=res, mode="markers", showlegend=False,
                                 marker=dict(size=7, color=logc, colorscale=BUDGET_SCALE, showscale=col == 2,
                                             colorbar=dict(title=dict(text="log10 C"), thickness=14, len=0.8),
                                             line=dict(width=0.4, color="#333")),
                                 customdata=np.stack([points["run_id"], si(N), si(D)], axis=-1),
                                 hovertemplate="run %{customdata[0]}<br>N = %{customdata[1]}, D = %{customdata[2]}<br>"
                                               "residual %{y:+.2f}%<extra></extra>"), row=1, col=col)
        fig.add_hline(y=0, line=dict(color="#444", width=1), row=1, col=col)
        fig.update_xaxes(title_text=xlab, type="log", exponentformat="B" if col == 1 else "none", row=1, col=col, **AXIS_STYLE)
    fig.update_yaxes(title_text="(observed - predicted) / predicted (%)", row=1, col=1, **AXIS_STYLE)
    fig.update_yaxes(**AXIS_STYLE, row=1, col=2)
    fig.update_layout(template="plotly_white", font=FONT, height=430, margin=dict(l=80, r=30, t=70, b=60),
                      title=dict(text="Residuals of the fitted law against N and against D/N", x=0.01))
    return fig


def exponents_figure(fit3: Any) -> go.Figure:
    """The bootstrap cloud of (alpha, beta), coloured by a = beta / (alpha + beta) (N_opt ∝ C^a), with the
    fit and Chinchilla's published (0.34, 0.28) (Hoffmann et al. 2022 eq. 10)."""
    bp = fit3.bootstrap_params_
    al, be = np.asarray(bp["alpha"]), np.asarray(bp["beta"])
    a = be / (al + be)
    fig = go.Figure(go.Scatter(x=al, y=be, mode="markers", name=f"{len(al)} bootstrap fits",
                               marker=dict(size=6, color=a, colorscale="RdBu", opacity=0.75,
                                           colorbar=dict(title=dict(text="a = β/(α+β)"), thickness=14, len=0.8)),
                               customdata=np.stack([a, np.asarray(bp["E"])], axis=-1),
                               hovertemplate="α = %{x:.3f}, β = %{y:.3f}<br>a = %{customdata[0]:.3f}, "
                                             "E = %{customdata[1]:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[fit3.alpha_], y=[fit3.beta_], mode="markers", name=f"this fit (a = {fit3.a_:.3f})",
                             marker=dict(symbol="x", size=14, color="black", line=dict(width=2))))
    fig.add_trace(go.Scatter(x=[CHINCHILLA_PAPER.alpha], y=[CHINCHILLA_PAPER.beta], mode="markers",
                             name=f"Chinchilla eq. 10 (a = {CHINCHILLA_PAPER.a:.3f})",
                             marker=dict(symbol="star", size=14, color="#2ca02c", line=dict(width=1, color="black"))))
    lim = [min(al.min(), be.min(), fit3.alpha_, fit3.beta_), max(al.max(), be.max(), fit3.alpha_, fit3.beta_)]
    fig.add_trace(go.Scatter(x=lim, y=lim, mode="lines", name="α = β (a = 0.5)", line=dict(color="#888", dash="dot"),
                             hoverinfo="skip"))
    fig = layout(fig, "Bootstrap cloud of the exponents: α (of N) against β (of D)", "α", "β", logx=False, height=460)
    fig.update_layout(legend=dict(x=0.01, xanchor="left", y=0.99))
    return fig


__all__ = ["Frontier", "exponents_figure", "fig3_figure", "frontiers_of", "loss_opt_band", "loss_opt_figure",
           "predicted_figure", "residuals_nd_figure"]

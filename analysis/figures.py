"""The report's figures: plotly figures built from tables and fitted laws (no I/O, no fitting).

Tables use the runs-table column names, normalised by `points_frame` / `curves_frame`:
points `run_id, N, D, C, loss` (+ `kind`), curves `run_id, N, tokens, flops, loss`.
Every hover gives the run id and values with units; every axis says its unit.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from analysis.errors import InputError
from analysis.laws import CHINCHILLA_PAPER, KAPLAN_2020_N_OPT, ChinchillaLaw
from contracts.conventions import flops_6nd, tokens_for_flops
from contracts.counts import format_count

COLORSCALE = "Viridis"
BUDGET_SCALE = "Plasma"
HEIGHT = 520
FONT = dict(size=14)
AXIS_STYLE = dict(showline=True, linecolor="#444", mirror=True, ticks="outside", gridcolor="#e5e5e5", zeroline=False)


def layout(fig: go.Figure, title: str, x: str, y: str, *, logx=True, logy=False, height=HEIGHT,
            xfmt: str = "B", yfmt: str = "B") -> go.Figure:
    """Common look; log axes label counts as 1M/1B/1T ("B") or FLOPs as powers of ten ("power")."""
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left"), template="plotly_white", font=FONT, height=height,
        margin=dict(l=80, r=30, t=60, b=70), hoverlabel=dict(font_size=13),
        legend=dict(bgcolor="rgba(255,255,255,0.85)", bordercolor="#ccc", borderwidth=1),
    )
    fig.update_xaxes(title_text=x, type="log" if logx else "linear", exponentformat=xfmt if logx else "none", **AXIS_STYLE)
    fig.update_yaxes(title_text=y, type="log" if logy else "linear", exponentformat=yfmt if logy else "none", **AXIS_STYLE)
    return fig


def si(values) -> np.ndarray:
    """`contracts.counts.format_count` over an array, for hover text (plotly's own SI format says G, not B)."""
    return np.array([format_count(float(v)) for v in np.asarray(values, dtype=float).ravel()], dtype=object)


def _size_colors(N: Iterable[float]) -> dict[float, str]:
    """One Viridis colour per distinct model size, by log N."""
    sizes = sorted(set(float(n) for n in N))
    if len(sizes) == 1:
        return {sizes[0]: sample_colorscale(COLORSCALE, [0.4])[0]}
    lo, hi = math.log(sizes[0]), math.log(sizes[-1])
    return {n: c for n, c in zip(sizes, sample_colorscale(COLORSCALE, [0.9 * (math.log(n) - lo) / (hi - lo) for n in sizes]))}


def _size_colorbar(N: Sequence[float]) -> go.Scatter:
    """An invisible trace carrying a log-N colour bar (plotly colour bars need a marker scale)."""
    logs = np.log10(np.asarray(N, dtype=float))
    ticks = np.arange(math.floor(logs.min()), math.ceil(logs.max()) + 1)
    return go.Scatter(
        x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
        marker=dict(colorscale=[[i / 9, c] for i, c in enumerate(sample_colorscale(COLORSCALE, list(np.linspace(0, 0.9, 10))))],
                    cmin=logs.min(), cmax=logs.max(), color=[logs.min()], showscale=True,
                    colorbar=dict(title=dict(text="N (params)"), tickvals=ticks, ticktext=[format_count(10**t) for t in ticks],
                                  len=0.8, thickness=14)),
    )


def budget_colors(budgets: Sequence[float]) -> list[str]:
    """One Plasma colour per budget by log C (the same scale as `budget_colorbar`)."""
    lo, hi = math.log(min(budgets)), math.log(max(budgets))
    return sample_colorscale(BUDGET_SCALE, [0.85 * (math.log(c) - lo) / max(hi - lo, 1e-9) for c in budgets])


def budget_colorbar(budgets: Sequence[float], **bar: Any) -> go.Scatter:
    """An invisible trace carrying a log-C colour bar: the key when there are too many budgets for a legend."""
    logs = np.log10(np.asarray(budgets, dtype=float))
    lo, hi = float(logs.min()), float(max(logs.max(), logs.min() + 1e-9))
    ticks = np.arange(math.ceil(lo), math.floor(hi) + 1)
    scale = [[i / 9, c] for i, c in enumerate(sample_colorscale(BUDGET_SCALE, list(np.linspace(0, 0.85, 10))))]
    return go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                      marker=dict(colorscale=scale, cmin=lo, cmax=hi, color=[lo], showscale=True,
                                  colorbar=dict(title=dict(text="C (FLOPs)"), tickvals=ticks,
                                                ticktext=[f"1e{int(t)}" for t in ticks], thickness=14, **bar)))


def clip_note(fig: go.Figure, values: Sequence[np.ndarray], lo: float, hi: float, what: str = "points") -> go.Figure:
    """Say on the figure how many plotted values fall outside the y range [lo, hi] (nothing clipped silently)."""
    v = np.concatenate([np.asarray(x, dtype=float).ravel() for x in values])
    v = v[np.isfinite(v)]
    above, below = int((v > hi).sum()), int((v < lo).sum())
    if above or below:
        parts = ([f"{above} above (up to {v.max():.4g})"] if above else []) + ([f"{below} below"] if below else [])
        fig.add_annotation(x=0.01, y=0.99, xref="paper", yref="paper", xanchor="left", yanchor="top", showarrow=False,
                           text=f"{what} outside the y range: " + ", ".join(parts) + " (zoom out to see them)",
                           font=dict(size=12, color="#a15c00"), bgcolor="rgba(255,255,255,0.85)")
    return fig


# ---- table normalisation


_ALIASES = {
    "N": ("N", "params", "n", "Model Size"),
    "D": ("D", "tokens", "d"),
    "C": ("C", "flops_6nd", "flops", "c", "Training FLOP"),
    "loss": ("loss", "final_loss", "c4_loss"),
}


def points_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Columns run_id, N, D, C, loss (C = 6ND where missing; run_id = row number where missing)."""
    out = pd.DataFrame(index=table.index)
    for key, names in _ALIASES.items():
        for name in names:
            if name in table.columns:
                out[key] = pd.to_numeric(table[name], errors="coerce").astype(float)
                break
    if "D" not in out and {"N", "C"} <= set(out.columns):
        out["D"] = tokens_for_flops(out["C"], out["N"])
    if "C" not in out and {"N", "D"} <= set(out.columns):
        out["C"] = flops_6nd(out["N"], out["D"])
    missing = [k for k in ("N", "D", "C", "loss") if k not in out]
    if missing:
        raise InputError(f"points table lacks column(s) {missing} (has {list(table.columns)})")
    out["run_id"] = table["run_id"].astype(str) if "run_id" in table.columns else [f"row {i}" for i in range(len(table))]
    for extra in ("kind", "status", "sweep"):
        if extra in table.columns:
            out[extra] = table[extra].values
    return out.reset_index(drop=True)


def curves_frame(curves: pd.DataFrame, sizes: Mapping[str, float]) -> pd.DataFrame:
    """run_id, N, tokens, flops, loss (validation loss) from a `curves` table and run_id -> N."""
    c = curves.copy()
    c["run_id"] = c["run_id"].astype(str)
    c["N"] = c["run_id"].map(sizes)
    c["loss"] = pd.to_numeric(c["val_loss"] if "val_loss" in c else c["loss"], errors="coerce")
    if "flops" not in c or c["flops"].isna().all():
        c["flops"] = flops_6nd(c["N"], c["tokens"])
    c = c[np.isfinite(c["loss"]) & (c["tokens"] > 0) & np.isfinite(c["N"])]
    return c.sort_values(["run_id", "tokens"]).reset_index(drop=True)


# ---- figures


def curves_figure(curves: pd.DataFrame, max_legend: int = 12) -> go.Figure:
    """Validation loss vs training tokens, one line per run, coloured by model size (legend, or a colour
    bar when there are more than `max_legend` sizes)."""
    fig = go.Figure()
    colors = _size_colors(curves["N"])
    sizes = sorted(colors)
    legend = len(sizes) <= max_legend
    order = curves.groupby("run_id", sort=False)["N"].first().sort_values(kind="stable").index
    seen: set[float] = set()
    for run_id in order:
        g = curves[curves["run_id"] == run_id]
        n = float(g["N"].iloc[0])
        fig.add_trace(go.Scatter(
            x=g["tokens"], y=g["loss"], mode="lines+markers", marker=dict(size=4), line=dict(color=colors[n], width=1.8),
            name=f"N = {format_count(n)}", legendgroup=f"{n}", showlegend=legend and n not in seen,
            customdata=np.stack([si(g["tokens"]), g["flops"]], axis=-1),
            hovertemplate=f"run {run_id}<br>N = {format_count(n)} params<br>D = %{{customdata[0]}} tokens<br>"
                          "C = %{customdata[1]:.3g} FLOPs<br>loss = %{y:.4f} nats/token<extra></extra>",
        ))
        seen.add(n)
    if not legend:
        fig.add_trace(_size_colorbar(curves["N"]))
    fig = layout(fig, "Validation loss during training, one line per run", "training tokens D",
                  "validation loss (nats/token)", logy=True)
    lo, hi = float(curves["loss"].min()), float(np.quantile(curves["loss"], 0.97))
    fig.update_yaxes(range=[math.log10(lo * 0.97), math.log10(hi * 1.03)])
    return clip_note(fig, [curves["loss"].to_numpy()], lo * 0.97, hi * 1.03, what="curve points")


def lower_envelope(curves: pd.DataFrame, n_grid: int = 200) -> pd.DataFrame:
    """Approach 1 (Hoffmann et al. 2022 §3.1): at each FLOP count, the lowest loss any run reached.

    Each run's curve is interpolated in (log C, log L) over the range it covers; the envelope is the
    minimum over runs at n_grid log-spaced budgets. Returns columns C, loss, N, run_id (the run on it).
    """
    c = curves[(curves["flops"] > 0) & (curves["loss"] > 0)]
    if c.empty:
        return pd.DataFrame(columns=["C", "loss", "N", "run_id"])
    grid = np.logspace(np.log10(c["flops"].min()), np.log10(c["flops"].max()), n_grid)
    best = np.full(n_grid, np.inf)
    who = np.full(n_grid, -1)
    runs = list(c.groupby("run_id", sort=False))
    for i, (_, g) in enumerate(runs):
        x, y = np.log(g["flops"].to_numpy()), np.log(g["loss"].to_numpy())
        order = np.argsort(x)
        x, y = x[order], y[order]
        inside = (np.log(grid) >= x[0]) & (np.log(grid) <= x[-1])
        val = np.full(n_grid, np.inf)
        val[inside] = np.exp(np.interp(np.log(grid[inside]), x, y))
        better = val < best
        best[better], who[better] = val[better], i
    ok = np.isfinite(best)
    return pd.DataFrame({
        "C": grid[ok], "loss": best[ok],
        "N": [float(runs[w][1]["N"].iloc[0]) for w in who[ok]],
        "run_id": [str(runs[w][0]) for w in who[ok]],
    })


def flops_figure(points: pd.DataFrame, curves: pd.DataFrame | None, law: ChinchillaLaw | None,
                 envelope: pd.DataFrame | None = None) -> go.Figure:
    """Loss vs training FLOPs: each run's curve (or final points), the approach-1 lower envelope and
    the approach-3 compute-optimal loss L_opt(C)."""
    fig = go.Figure()
    if curves is not None and not curves.empty:
        colors = _size_colors(curves["N"])
        for run_id, g in curves.groupby("run_id", sort=False):
            n = float(g["N"].iloc[0])
            fig.add_trace(go.Scatter(
                x=g["flops"], y=g["loss"], mode="lines", line=dict(color=colors[n], width=1.2), opacity=0.75,
                showlegend=False,
                hovertemplate=f"run {run_id}<br>N = {format_count(n)} params<br>C = %{{x:.3g}} FLOPs<br>"
                              "loss = %{y:.4f} nats/token<extra></extra>",
            ))
        fig.add_trace(_size_colorbar(curves["N"]))
        env = lower_envelope(curves) if envelope is None else envelope
    else:
        fig.add_trace(_points_trace(points, "final loss of each run"))
        env = envelope
    if env is not None and len(env):
        # the best loss reachable with at most C FLOPs: the running minimum, so the envelope never steps up
        # where a small run ends and only larger, not-yet-converged runs reach that budget
        env = env.sort_values("C").reset_index(drop=True)
        loss = env["loss"].to_numpy(dtype=float)
        best = np.minimum.accumulate(loss)
        held = np.maximum.accumulate(np.where(loss <= best, np.arange(len(env)), 0))  # the run that reached it
        env = pd.DataFrame({"C": env["C"], "loss": best, "N": env["N"].to_numpy()[held],
                            "run_id": env["run_id"].to_numpy()[held]})
        fig.add_trace(go.Scatter(
            x=env["C"], y=env["loss"], mode="lines", name="lower envelope (approach 1)",
            line=dict(color="black", width=3), customdata=np.stack([si(env["N"]), env["run_id"]], axis=-1),
            hovertemplate="C = %{x:.3g} FLOPs<br>best loss = %{y:.4f} nats/token<br>"
                          "by N = %{customdata[0]} params (run %{customdata[1]})<extra>envelope</extra>",
        ))
    if law is not None:
        C = np.logspace(np.log10(points["C"].min()) - 0.3, np.log10(points["C"].max()) + 1, 120)
        fig.add_trace(go.Scatter(
            x=C, y=law.optimal_loss(C), mode="lines", name="approach-3 law at the optimum, L_opt(C)",
            line=dict(color="#d62728", width=2.5, dash="dash"),
            hovertemplate="C = %{x:.3g} FLOPs<br>L_opt = %{y:.4f} nats/token<extra>law</extra>",
        ))
    title = ("Loss vs training compute, with the lower envelope (approach 1)" if env is not None and len(env)
             else "Loss vs training compute, final point of each run")
    fig = layout(fig, title, "training compute C (FLOPs, 6ND)",
                  "loss (nats/token)", logy=True, xfmt="power", yfmt="none")
    shown = curves["loss"] if curves is not None and len(curves) else points["loss"]
    lo = float(min(points["loss"].min(), shown.min()))
    hi = float(np.quantile(shown, 0.97))
    fig.update_yaxes(range=[math.log10(lo * 0.95), math.log10(hi * 1.03)])
    fig.update_layout(legend=dict(x=0.99, xanchor="right", y=0.99))
    return clip_note(fig, [shown.to_numpy()], lo * 0.95, hi * 1.03,
                     what="curve points" if curves is not None and len(curves) else "runs")


def _points_trace(points: pd.DataFrame, name: str, *, symbol="circle", size=8) -> go.Scatter:
    logs = np.log10(points["N"].to_numpy())
    ticks = np.arange(math.floor(logs.min()), math.ceil(logs.max()) + 1)
    return go.Scatter(
        x=points["C"], y=points["loss"], mode="markers", name=name,
        marker=dict(size=size, symbol=symbol, color=logs, colorscale=COLORSCALE, cmin=logs.min(), cmax=logs.max(),
                    line=dict(width=0.5, color="#333"),
                    colorbar=dict(title=dict(text="N (params)"), tickvals=ticks, ticktext=[format_count(10**t) for t in ticks],
                                  len=0.8, thickness=14)),
        customdata=np.stack([points["run_id"], si(points["N"]), si(points["D"])], axis=-1),
        hovertemplate="run %{customdata[0]}<br>N = %{customdata[1]} params<br>D = %{customdata[2]} tokens<br>"
                      "C = %{x:.3g} FLOPs<br>loss = %{y:.4f} nats/token<extra></extra>",
    )


def isoflop_figure(groups: Sequence[Mapping[str, Any]], max_legend: int = 8) -> go.Figure:
    """Approach 2: per budget, loss vs N with the parabola in log N and its minimum; past `max_legend`
    budgets a colour bar in C replaces the legend.

    Each group: C (FLOPs), points (DataFrame run_id, N, D, loss), coef (quadratic in log10 N,
    highest power first, or None), N_opt, loss_opt.
    """
    fig = go.Figure()
    budgets = [g["C"] for g in groups]
    colors = budget_colors(budgets)
    legend = len(budgets) <= max_legend
    for g, color in zip(groups, colors):
        p = g["points"]
        label = f"C = {g['C']:.2g} FLOPs"
        fig.add_trace(go.Scatter(
            x=p["N"], y=p["loss"], mode="markers", name=label, legendgroup=label, marker=dict(color=color, size=8),
            showlegend=legend,
            customdata=np.stack([p["run_id"], si(p["N"]), si(p["D"])], axis=-1),
            hovertemplate="run %{customdata[0]}<br>N = %{customdata[1]} params<br>D = %{customdata[2]} tokens<br>"
                          f"budget {g['C']:.3g} FLOPs<br>loss = %{{y:.4f}} nats/token<extra></extra>",
        ))
        if g.get("coef") is not None:
            x = np.linspace(np.log10(p["N"].min()) - 0.1, np.log10(p["N"].max()) + 0.1, 80)
            fig.add_trace(go.Scatter(
                x=10**x, y=np.polyval(g["coef"], x), mode="lines", line=dict(color=color, width=2), legendgroup=label,
                showlegend=False, hoverinfo="skip",
            ))
        if g.get("N_opt") is not None and np.isfinite(g["N_opt"]):
            fig.add_trace(go.Scatter(
                x=[g["N_opt"]], y=[g["loss_opt"]], mode="markers", legendgroup=label, showlegend=False,
                marker=dict(symbol="star", size=16, color=color, line=dict(color="black", width=1)),
                hovertemplate=f"budget {g['C']:.3g} FLOPs<br>N_opt = {format_count(g['N_opt'])} params<br>"
                              f"D_opt = {format_count(tokens_for_flops(g['C'], g['N_opt']))} tokens<br>"
                              "loss_opt = %{y:.4f} nats/token<extra>minimum</extra>",
            ))
    if not legend:
        fig.add_trace(budget_colorbar(budgets, len=0.8))
    fig = layout(fig, "IsoFLOP profiles (approach 2): parabola in log N per budget, stars at the minima",
                  "model size N (parameters)", "loss (nats/token)")
    return fig


def contour_figure(law: ChinchillaLaw, points: pd.DataFrame | None, *, C_max: float | None = None,
                   frontier_C: np.ndarray | None = None, ranges: Mapping[str, Sequence[float]] | None = None,
                   frontiers: Sequence[Any] = ()) -> go.Figure:
    """The fitted L(N, D) as contours over (N, D), the data, the law's compute-optimal frontier, the other
    approaches' frontiers (`frontiers`: `analysis.figures_paper.Frontier`s) and, for reference,
    Chinchilla's (Hoffmann et al. 2022 eq. 10) and Kaplan's (2020 Table 6, N = 1.3e9 C^0.73). Without
    points (a fit JSON alone) the axes span the fit's `ranges` ({N: [lo, hi], D: [lo, hi]})."""
    if points is not None and len(points):
        ranges = {"N": [points["N"].min(), points["N"].max()], "D": [points["D"].min(), points["D"].max()]}
    n_lo, n_hi = np.log10(ranges["N"][0]) - 0.5, np.log10(ranges["N"][1]) + 1.5
    d_lo, d_hi = np.log10(ranges["D"][0]) - 0.5, np.log10(ranges["D"][1]) + 1.5
    N = np.logspace(n_lo, n_hi, 120)
    D = np.logspace(d_lo, d_hi, 120)
    Z = law(N[None, :], D[:, None])
    z_lo, z_hi = float(np.quantile(Z, 0.02)), float(np.quantile(Z, 0.9))
    fig = go.Figure(go.Contour(
        x=N, y=D, z=Z, colorscale=[[0, "#4f9bd0"], [0.35, "#a9d2ec"], [0.7, "#e3f1fa"], [1, "#ffffff"]],
        ncontours=14, zmin=z_lo, zmax=z_hi,
        contours=dict(coloring="heatmap", showlabels=True, labelfont=dict(size=11, color="#333")),
        line=dict(width=0.7, color="rgba(40,40,40,0.35)"),
        colorbar=dict(title=dict(text="L(N, D)<br>nats/token"), x=1.0, len=0.8, thickness=14),
        hovertemplate="N = %{x:.3~e} params<br>D = %{y:.3~e} tokens<br>predicted loss = %{z:.4f} nats/token<extra>law</extra>",
    ))
    if points is not None and len(points):
        fig.add_trace(_runs_nd_trace(points))
    # frontiers over the budgets the plot spans
    C = frontier_C if frontier_C is not None else np.logspace(np.log10(flops_6nd(10**n_lo, 10**d_lo)),
                                                              np.log10(flops_6nd(10**n_hi, 10**d_hi)), 200)
    lines = [("compute-optimal frontier (approach 3, this fit)", 3.5, "#d62728", "solid", law.compute_optimal(C))]
    lines += [(f"{f.label} frontier", 2.5, f.color, "longdash", f.at(C)) for f in frontiers if f.approach != "3"]
    lines += [
        ("Chinchilla (Hoffmann et al. 2022)", 2, "#2ca02c", "dash", CHINCHILLA_PAPER.compute_optimal(C)),
        ("Kaplan et al. 2020: N = 1.3e9 C^0.73", 2, "#9467bd", "dot", (KAPLAN_2020_N_OPT(C), tokens_for_flops(C, KAPLAN_2020_N_OPT(C)))),
    ]
    for name, lw, color, dash, (Nf, Df) in lines:
        fig.add_trace(go.Scatter(
            x=Nf, y=Df, mode="lines", name=name, line=dict(color=color, width=lw, dash=dash),
            customdata=np.stack([C, si(Nf), si(Df)], axis=-1),
            hovertemplate="C = %{customdata[0]:.3g} FLOPs<br>N = %{customdata[1]} params<br>D = %{customdata[2]} tokens"
                          f"<extra>{name.split(':')[0]}</extra>",
        ))
    return _contour_guides(fig, law, n_lo, n_hi, d_lo, d_hi, C_max)


def _runs_nd_trace(points: pd.DataFrame) -> go.Scatter:
    return go.Scatter(
        x=points["N"], y=points["D"], mode="markers", name="runs",
        marker=dict(size=7, color="white", line=dict(width=1.2, color="#222")),
        customdata=np.stack([points["run_id"], points["loss"], points["C"], si(points["N"]), si(points["D"])], axis=-1),
        hovertemplate="run %{customdata[0]}<br>N = %{customdata[3]} params<br>D = %{customdata[4]} tokens<br>"
                      "C = %{customdata[2]:.3g} FLOPs<br>loss = %{customdata[1]:.4f} nats/token<extra></extra>",
    )


def _contour_guides(fig: go.Figure, law: ChinchillaLaw, n_lo: float, n_hi: float, d_lo: float, d_hi: float,
                    C_max: float | None) -> go.Figure:
    # iso-FLOP guide lines with labels
    for e in range(int(np.ceil(np.log10(6) + n_lo + d_lo)), int(np.floor(np.log10(6) + n_hi + d_hi)) + 1, 2):
        c = 10.0**e
        Nl = np.array([10**n_lo, 10**n_hi])
        fig.add_trace(go.Scatter(x=Nl, y=tokens_for_flops(c, Nl), mode="lines", line=dict(color="rgba(80,80,80,0.5)", width=1, dash="dot"),
                                 showlegend=False, hoverinfo="skip"))
        nx = min(max(math.sqrt(c / 6), 10**n_lo * 1.5), 10**n_hi / 1.5)
        if 10**d_lo < tokens_for_flops(c, nx) < 10**d_hi:
            fig.add_annotation(x=math.log10(nx), y=math.log10(tokens_for_flops(c, nx)), text=f"1e{e} FLOPs", showarrow=False,
                               font=dict(size=11, color="#555"), textangle=0, bgcolor="rgba(255,255,255,0.6)")
    if C_max:
        Nc, Dc = law.compute_optimal(C_max)
        fig.add_trace(go.Scatter(x=[Nc], y=[Dc], mode="markers", name="optimum at the largest budget in the data",
                                 marker=dict(symbol="x", size=12, color="#d62728"),
                                 hovertemplate=f"C = {C_max:.3g} FLOPs<br>N = {format_count(float(Nc))} params<br>"
                                               f"D = {format_count(float(Dc))} tokens<extra></extra>"))
    fig = layout(fig, "Fitted law L(N, D): contours, data and compute-optimal frontiers",
                  "model size N (parameters)", "training tokens D", logy=True, height=640)
    fig.update_xaxes(range=[n_lo, n_hi])
    fig.update_yaxes(range=[d_lo, d_hi])
    fig.update_layout(legend=dict(x=0.01, y=0.99, xanchor="left", yanchor="top"))
    return fig


def residuals_figure(points: pd.DataFrame, law: ChinchillaLaw, fitted_mask: np.ndarray | None = None) -> go.Figure:
    """Relative residual (observed - predicted) / predicted per point, against compute."""
    pred = law(points["N"].to_numpy(), points["D"].to_numpy())
    res = 100 * (points["loss"].to_numpy() - pred) / pred
    logs = np.log10(points["N"].to_numpy())
    ticks = np.arange(math.floor(logs.min()), math.ceil(logs.max()) + 1)
    fig = go.Figure()
    mask = np.ones(len(points), dtype=bool) if fitted_mask is None else np.asarray(fitted_mask, dtype=bool)
    for sel, name, symbol in ((mask, "fitted points", "circle"), (~mask, "left out of the fit", "x")):
        if not sel.any():
            continue
        fig.add_trace(go.Scatter(
            x=points["C"][sel], y=res[sel], mode="markers", name=name,
            marker=dict(size=8, symbol=symbol, color=logs[sel], colorscale=COLORSCALE, cmin=logs.min(), cmax=logs.max(),
                        line=dict(width=0.5, color="#333"), showscale=symbol == "circle",
                        colorbar=dict(title=dict(text="N (params)"), tickvals=ticks, ticktext=[format_count(10**t) for t in ticks],
                                      len=0.8, thickness=14)),
            customdata=np.stack([points["run_id"][sel], si(points["N"][sel]), si(points["D"][sel]), points["loss"][sel], pred[sel]], axis=-1),
            hovertemplate="run %{customdata[0]}<br>N = %{customdata[1]} params<br>D = %{customdata[2]} tokens<br>"
                          "C = %{x:.3g} FLOPs<br>observed %{customdata[3]:.4f}, predicted %{customdata[4]:.4f} nats/token<br>"
                          "residual %{y:+.2f}%<extra></extra>",
        ))
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig = layout(fig, "Residuals of the fitted law per point", "training compute C (FLOPs)",
                  "(observed - predicted) / predicted (%)", xfmt="power")
    fig.update_layout(showlegend=not mask.all())
    return fig


def backtest_figure(rows: pd.DataFrame, level: float = 0.95) -> go.Figure:
    """Held-out points: relative error of the prediction against N, with the predicted interval as error bars."""
    truth = rows["loss"].to_numpy(dtype=float)
    pred = rows["predicted"].to_numpy(dtype=float)
    err = 100 * (pred - truth) / truth
    lower = pd.to_numeric(rows.get("lower"), errors="coerce").to_numpy(dtype=float) if "lower" in rows else np.full(len(rows), np.nan)
    upper = pd.to_numeric(rows.get("upper"), errors="coerce").to_numpy(dtype=float) if "upper" in rows else np.full(len(rows), np.nan)
    has_iv = np.isfinite(lower) & np.isfinite(upper)
    lo, hi = 100 * (lower - truth) / truth, 100 * (upper - truth) / truth
    inside = np.array([bool(v) if v is not None and v == v else True for v in rows.get("in_interval", [True] * len(rows))])
    # spread points of one size a little so their bars do not overlap
    x = rows["N"].to_numpy(dtype=float).copy()
    for n in np.unique(x):
        k = np.flatnonzero(x == n)
        if len(k) > 1:
            x[k] = n * 10 ** np.linspace(-0.04, 0.04, len(k))
    fig = go.Figure()
    for sel, name, color in ((inside, f"truth inside the {100 * level:.0f}% interval", "#1f77b4"),
                             (~inside, f"truth outside the {100 * level:.0f}% interval", "#d62728")):
        if not sel.any():
            continue
        fig.add_trace(go.Scatter(
            x=x[sel], y=err[sel], mode="markers", name=name, marker=dict(size=11, color=color),
            error_y=dict(type="data", symmetric=False, array=np.where(has_iv, hi - err, 0)[sel],
                         arrayminus=np.where(has_iv, err - lo, 0)[sel], color=color, thickness=1.5, width=6),
            customdata=np.stack([rows["run_id"].astype(str)[sel], si(rows["N"][sel]), si(rows["D"][sel]),
                                 truth[sel], pred[sel]], axis=-1),
            hovertemplate="run %{customdata[0]}<br>N = %{customdata[1]} params<br>D = %{customdata[2]} tokens<br>"
                          "truth %{customdata[3]:.4f}, predicted %{customdata[4]:.4f} nats/token<br>"
                          "error %{y:+.2f}%<extra></extra>",
        ))
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    return layout(fig, "Backtest: held-out runs, (predicted - truth) / truth, bars = predicted interval",
                   "model size N (parameters)", "prediction error (%)", height=440)


def forecast_figure(folds: pd.DataFrame) -> go.Figure:
    """Leave-one-budget-out: the forecast N_opt at a target budget from each fold (a budget left out),
    against the forecast from all data (the line)."""
    all_rows = folds[folds["left_out_C"].isna()]
    f = folds[folds["left_out_C"].notna()]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=f["left_out_C"], y=f["N_opt"], mode="markers", name="fit without this budget", marker=dict(size=11),
        customdata=np.stack([si(f["D_opt"]), f["loss_opt"], f["target_C"], si(f["N_opt"]), 100 * f["N_opt_rel"]], axis=-1),
        hovertemplate="left out budget %{x:.3g} FLOPs<br>forecast at %{customdata[2]:.3g} FLOPs:<br>"
                      "N_opt = %{customdata[3]} params (%{customdata[4]:+.1f}%), D_opt = %{customdata[0]} tokens<br>"
                      "L_opt = %{customdata[1]:.4f} nats/token<extra></extra>",
    ))
    if len(all_rows):
        n_all = float(all_rows["N_opt"].iloc[0])
        xs = [float(f["left_out_C"].min()) / 1.5, float(f["left_out_C"].max()) * 1.5]
        fig.add_trace(go.Scatter(x=xs, y=[n_all, n_all], mode="lines", name=f"fit to all budgets: {format_count(n_all)}",
                                 line=dict(color="#d62728", width=2, dash="dash"), hoverinfo="skip"))
    target = float(folds["target_C"].iloc[0])
    return layout(fig, f"Leave-one-budget-out: forecast compute-optimal N at {target:.3g} FLOPs",
                   "budget left out (FLOPs)", "forecast N_opt (parameters)", logy=True, height=420, xfmt="power")

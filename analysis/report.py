"""One self-contained HTML page on a scaling study: figures, fitted parameters, plans, backtest.

`build_report(source, out)` reads a sweep folder (points/curves/trials Parquet), a CSV or Parquet
table (with a column map), or a fit JSON (`analysis.fitjson.read_fit`), fits what the data allows
(approach 3 with bootstrap intervals, approach 2 on IsoFLOP groups, the approach-1 envelope from
training curves), optionally runs a backtest, and writes one HTML file. plotly's JavaScript is
inlined, so the page opens offline. `prepare_report` is the first half (a `ReportData`),
`render_report(data, out)` the second; after rendering, `data.figures` names every figure drawn and,
with `static=(fmt, folder)`, `data.static_files` the files plotly's static export wrote (kaleido
driving the system's headless Chromium: `pip install "scaling-orchestrator[static]"`).

The page opens with the forecast: the law `analysis.forecast` weighs from the table's own held-out
budgets (the one every command forecasts with), its compute-optimal loss with the calibrated interval,
the other candidate laws as labelled alternatives and the cut table (`analysis.report_forecast`). The
other figures follow Hoffmann et al. 2022 (Chinchilla): Fig. 3's row (IsoFLOP curves | N_opt(C) |
D_opt(C), `analysis.figures_paper`), the approaches' frontiers over the L(N, D) contours (Fig. 4),
L_opt(C) with its bootstrap band, predicted vs observed, residuals against N and D/N and the
bootstrap cloud of (alpha, beta) (Besiroglu et al. 2024's replication shows the same).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis import figures, figures_paper
from analysis.backtest import backtest, leave_one_budget_out, load_frame
from analysis.chinchilla import ChinchillaFit
from analysis.errors import InputError
from analysis.fitjson import fit_json, read_fit
from analysis.forecast import DEFAULT_BOOTSTRAP, Forecaster
from analysis.frontier import EnvelopeFit, IsoFLOPFit, group_budgets, parabola_window
from analysis.holdout import holdout_mask
from analysis.curves import load_curves
from analysis.io import FitWarning
from analysis.report_forecast import forecast_html, forecast_summary
from analysis.report_html import (backtest_html, checklist_html, esc, figure_html,
                                  fit3_of, num, page_html, parameter_table, plan_rows, row_interval, table, warnings_html)
from analysis.tables import folder_table
from contracts.counts import format_count
from contracts.jsonio import read_json_object, write_atomic

STATIC_FORMATS = ("png", "svg", "pdf")
EXTEND = 100.0
"""Power laws and L_opt(C) are drawn to this many times the largest budget in the data."""


@dataclass
class ReportData:
    """What a report shows; every part is optional except a title and a source description."""

    source: str
    points: pd.DataFrame | None = None          # points_frame(): run_id, N, D, C, loss
    curves: pd.DataFrame | None = None          # curves_frame(): run_id, N, tokens, flops, loss
    fit3: ChinchillaFit | dict | None = None    # approach-3 fit (chinchilla law): the estimator or its JSON
    fit2: Any = None                            # approach-2 fit (IsoFLOPFit or its JSON)
    isoflop_groups: list[dict] | None = None    # for the parabola figure (see figures.isoflop_figure)
    envelope: pd.DataFrame | None = None        # approach-1 lower envelope (C, loss, N, run_id)
    fit1: Any = None                            # approach-1 fit (EnvelopeFit or its JSON)
    fitted_mask: np.ndarray | None = None       # which points entered the approach-3 fit
    backtest: dict | None = None                # BacktestResult.to_dict()
    forecasts: pd.DataFrame | None = None       # leave-one-budget-out folds
    forecast: Any = None                        # the fitted analysis.forecast.Forecaster (the forecast section)
    auto: dict | None = None                    # its choice in brief: {"chosen", "weights", "method", "reason", "table"}
    hparams: Any = None                         # analysis.hparams.HparamsResult (the LR / batch laws)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)   # every fit warning, as raised
    title: str = "Scaling-law report"
    figures: list[dict] = field(default_factory=list)   # filled by render_report: {name, title}
    static_files: list[str] = field(default_factory=list)


def _fit_or_none(fit: Any) -> Any:
    return None if fit is None else read_fit(fit)


def _heldout_rows(bt: Mapping[str, Any] | None) -> pd.DataFrame | None:
    """The backtest's rows as a table with lower/upper columns (either JSON version)."""
    if not bt or not bt.get("rows"):
        return None
    rows = []
    for r in bt["rows"]:
        iv = row_interval(r)
        rows.append({**{k: v for k, v in r.items() if k not in ("interval", "lower", "upper")},
                     "lower": np.nan if iv is None else iv[0], "upper": np.nan if iv is None else iv[1]})
    return pd.DataFrame(rows)


def render_report(data: ReportData, out: str | Path, *, static: tuple[str, str | Path] | None = None) -> Path:
    """Write the page for `data` to `out` (one HTML file, plotly inlined, written atomically); with
    `static=(fmt, folder)` also each figure as folder/NN-name.fmt (png, svg or pdf)."""
    out = Path(out)
    parts: list[str] = []
    drawn: list[tuple[str, str, Any]] = []

    def fig(name: str, title: str, figure) -> str:
        drawn.append((name, title, figure))
        return figure_html(figure)

    pts = data.points
    has_pts = pts is not None and len(pts) > 0
    fit3 = fit3_of(data.fit3) if data.fit3 is not None else None
    fit2, fit1 = _fit_or_none(data.fit2), _fit_or_none(data.fit1)
    law = fit3.law_ if fit3 is not None else None
    level = float(getattr(fit3, "interval_level_", 0.95)) if fit3 is not None else 0.95
    heldout = _heldout_rows(data.backtest)
    C_range = _c_range(pts, fit3, fit2, fit1)
    frontiers = figures_paper.frontiers_of(fit1, fit2, fit3, level=level)
    ran = [f"approach {f.approach}" for f in frontiers]

    kpis = []
    if has_pts:
        kpis += [(f"{len(pts)}", "points"), (f"{pts['N'].nunique()}", "model sizes"),
                 (f"{format_count(pts['N'].min())} – {format_count(pts['N'].max())}", "N (parameters)"),
                 (f"{pts['C'].min():.2g} – {pts['C'].max():.2g}", "C (FLOPs)")]
    kpis += [(f"{f.a:.3f}", f"a: N_opt ∝ C^a ({f.label})") for f in frontiers]
    if kpis:
        parts.append('<div class="kpis">' + "".join(f'<div class="kpi"><b>{esc(v)}</b><span>{esc(k)}</span></div>'
                                                    for v, k in kpis) + "</div>")
    parts.append(f"<p class='note'>Ran: {esc(', '.join(ran) or 'no fit')}.</p>")
    for note in data.notes:
        parts.append(f'<p class="note warn">{esc(note)}</p>')
    if data.warnings:
        parts.append(warnings_html(data.warnings))

    if data.forecast is not None:
        parts.append(forecast_html(data.forecast, fig, pts if has_pts else None, heldout, C_range, extend=EXTEND,
                                   level=level))
    if data.forecast is not None or fit3 is not None:
        parts.append(checklist_html(fit_json(data.forecast if data.forecast is not None else fit3)["checklist"]))
    if frontiers and C_range is not None:
        parts.append(f"<h2>Compute-optimal scaling ({esc(', '.join(ran))}; Chinchilla Fig. 3)</h2><p class='lead'>"
                     "Left: loss against model size at each budget (IsoFLOP curves"
                     + (", the data and approach 2's parabolas" if data.isoflop_groups else ", drawn from the approach-3 law")
                     + "). Middle and right: the compute-optimal model size and token count against compute for every "
                     f"approach that ran, each power law extrapolated to {EXTEND:g}× the largest budget (grey) with its "
                     f"{100 * level:.0f}% bootstrap band where the fit was bootstrapped; dots are the optima each approach "
                     "fitted.</p>" + fig("fig3", "Chinchilla Fig. 3", figures_paper.fig3_figure(
                         frontiers, data.isoflop_groups, law, C_range, extend=EXTEND)))
    if data.curves is not None and len(data.curves):
        parts.append("<h2>Training curves</h2><p class='lead'>Validation loss against tokens for every run, "
                     "coloured by model size.</p>" + fig("curves", "Training curves", figures.curves_figure(data.curves)))
    if has_pts:
        has_env = (data.curves is not None and len(data.curves)) or (data.envelope is not None and len(data.envelope))
        parts.append(f"<h2>Loss vs compute{' (approach 1)' if has_env else ''}</h2><p class='lead'>Loss against training FLOPs"
                     + ("; the black line is the lower envelope of the training curves (the best loss any run reached "
                        "with at most that many FLOPs, Hoffmann et al. 2022 §3.1)" if has_env else
                        " for each run's final point (no training curves in the source, so no approach-1 envelope)")
                     + ("; the dashed red line is the approach-3 law along its compute-optimal frontier." if law else ".")
                     + "</p>" + fig("loss-vs-compute", "Loss vs compute",
                                    figures.flops_figure(pts, data.curves, law, data.envelope)))
    if data.isoflop_groups:
        parts.append("<h2>IsoFLOP profiles (approach 2)</h2><p class='lead'>At each budget, loss against model size "
                     "with a parabola in log N; stars mark the minima, whose trend gives N_opt(C).</p>"
                     + fig("isoflop", "IsoFLOP profiles", figures.isoflop_figure(data.isoflop_groups)))
    if law is not None and C_range is not None:
        ranges = None if has_pts else _nd_ranges(fit3, C_range)
        parts.append(f"<h2>Fitted law and compute-optimal frontiers ({esc(', '.join(ran))})</h2><p class='lead'>"
                     "L(N, D) = E + A/N<sup>α</sup> + B/D<sup>β</sup> (approach 3) as contours"
                     + ("; white dots are the runs" if has_pts else "")
                     + "; the red line is its compute-optimal frontier, long dashes the other approaches' frontiers, "
                     "green dashed Chinchilla's published law, purple dotted Kaplan et al.'s N ∝ C<sup>0.73</sup>; "
                     "grey dotted lines are budgets.</p>"
                     + fig("law-contours", "Fitted law and frontiers", figures.contour_figure(
                         law, pts if has_pts else None, C_max=C_range[1], ranges=ranges, frontiers=frontiers)))
        alt = " an alternative to the forecast above" if data.forecast is not None else ""
        parts.append(f"<h2>Compute-optimal loss L_opt(C) (approach 3{',' + alt if alt else ''})</h2><p class='lead'>The loss of the "
                     f"compute-optimal model at each budget, extrapolated to {EXTEND:g}× the largest budget, with the "
                     f"{100 * level:.0f}% band over the bootstrap fits"
                     + ("; stars are the held-out / target runs with their predicted intervals" if heldout is not None else "")
                     + ".</p>" + fig("loss-opt", "L_opt(C)", figures_paper.loss_opt_figure(
                         fit3, pts if has_pts else None, heldout, C_range, level=level, extend=EXTEND)))
    if fit3 is not None:
        parts.append("<h2>Parameters (approach 3)</h2>" + parameter_table(fit3))
        meta = [f"{fit3.n_points_ or '–'} points", f"Huber δ = {fit3.delta_}",
                f"N convention: {fit3.n_convention_}", f"FLOPs: {fit3.flops_convention_}"]
        nb = len(getattr(fit3, "bootstrap_params_", {}).get("E", []))
        if nb:
            meta.append(f"intervals from {nb} bootstrap fits")
        parts.append(f"<p class='note'>{esc('; '.join(meta))}.</p>")
        if nb:
            parts.append("<p class='lead'>Each dot is one bootstrap fit's exponents; their spread is the uncertainty "
                         "of the frontier's a = β/(α+β).</p>"
                         + fig("exponents", "Bootstrap cloud of alpha and beta", figures_paper.exponents_figure(fit3)))
        if C_range is not None:
            budgets = [C_range[1] * f for f in (1, 10, 100, 1000, 1e4)]
            parts.append("<h2>Compute-optimal plans (approach 3)</h2>" + plan_rows(fit3, budgets))
    if law is not None and has_pts:
        parts.append("<h2>Predicted vs observed (approach 3)</h2>"
                     + fig("predicted-vs-observed", "Predicted vs observed", figures_paper.predicted_figure(pts, law, heldout)))
        parts.append("<h2>Residuals (approach 3)</h2><p class='lead'>Relative residual of each point under the fitted law; "
                     "a trend with compute, model size or tokens per parameter means the law bends where the data do "
                     "not.</p>" + fig("residuals", "Residuals vs compute", figures.residuals_figure(pts, law, data.fitted_mask))
                     + fig("residuals-n-dn", "Residuals vs N and D/N", figures_paper.residuals_nd_figure(pts, law)))
    if data.backtest:
        bt = data.backtest
        ceiling = (bt.get("fit") or {}).get("ceiling")   # Kaplan's law bounded by ln V says so
        bounded = "" if ceiling is None else f", bounded by ln V = {float(ceiling):.4f}"
        parts.append(f"<h2>Backtest (approach {esc(bt.get('approach', ''))}{esc(bounded)})</h2>" + backtest_html(bt)
                     + fig("backtest", "Backtest", figures.backtest_figure(heldout, bt.get("interval_level") or 0.95)))
    if data.forecasts is not None and len(data.forecasts):
        f = data.forecasts
        parts.append("<h2>Leave-one-budget-out forecasts</h2><p class='lead'>Each fold refits without one budget and "
                     f"forecasts the compute-optimal model at {f['target_C'].iloc[0]:.3g} FLOPs; the spread shows how "
                     "much one budget moves the plan.</p>"
                     + fig("leave-one-budget-out", "Leave-one-budget-out", figures.forecast_figure(f)))
    if data.hparams is not None:
        from analysis.hparams.figures import hparams_section

        parts.append(hparams_section(data.hparams, fig))
    data.figures = [{"name": n, "title": t} for n, t, _ in drawn]
    page = page_html(data.title, f"Source: <code>{esc(data.source)}</code>. Losses in nats/token; N in parameters; D in "
                     "tokens; C in FLOPs (6ND).", "".join(parts),
                     "analysis.report. Figures are interactive: hover for run ids and values, drag to zoom, "
                     "double-click to reset")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, page)
    if static is not None:
        data.static_files = [str(p) for p in write_static([(n, f) for n, _, f in drawn], *static)]
    return out


def write_static(figs: Sequence[tuple[str, Any]], fmt: str, folder: str | Path, *, scale: float = 2.0) -> list[Path]:
    """Each (name, plotly figure) as folder/NN-name.fmt through plotly's static export (kaleido, which
    drives a headless Chrome or Chromium: the system's, found on PATH). One InputError line when the
    format is unknown or the exporter is missing."""
    if fmt not in STATIC_FORMATS:
        raise InputError(f"--static: {fmt!r} is not one of {', '.join(STATIC_FORMATS)}")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise InputError('--static needs plotly\'s exporter: pip install "scaling-orchestrator[static]" '
                         "(kaleido; it drives the system's Chromium)") from None
    for exe in ("chromium", "chromium-browser", "google-chrome"):
        if "BROWSER_PATH" not in os.environ and shutil.which(exe):
            os.environ["BROWSER_PATH"] = shutil.which(exe)
    import plotly.io as pio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:02d}-{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.{fmt}" for i, (name, _) in enumerate(figs, 1)]
    tmps = [p.with_name(f".{p.name}.tmp.{fmt}") for p in paths]
    # one browser for all figures (plotly.io.write_images), then each file moved into place whole
    pio.write_images([f for _, f in figs], tmps, format=fmt, scale=scale if fmt == "png" else 1,
                     width=[int(f.layout.width or 1100) for _, f in figs],
                     height=[int(f.layout.height or 520) for _, f in figs])
    for tmp, path in zip(tmps, paths):
        os.replace(tmp, path)
    return paths


def _c_range(pts, fit3, fit2, fit1) -> tuple[float, float] | None:
    """The budgets the data spanned: the points', else what the fit recorded (data_range C)."""
    if pts is not None and len(pts):
        return float(pts["C"].min()), float(pts["C"].max())
    for f in (fit3, fit2, fit1):
        c = (getattr(f, "data_range_", None) or {}).get("C") if f is not None else None
        if c and c[0] and c[1]:
            return float(c[0]), float(c[1])
    return None


def _nd_ranges(fit3, C_range) -> dict[str, list[float]]:
    """N and D ranges for a report without points: the fit's recorded ranges, else the law's optima."""
    dr = getattr(fit3, "data_range_", None) or {}
    if dr.get("N") and dr.get("D"):
        return {"N": list(dr["N"]), "D": list(dr["D"])}
    (n0, n1), (d0, d1) = (fit3.law_.compute_optimal(np.array(C_range)))
    return {"N": [float(n0), float(n1)], "D": [float(d0), float(d1)]}


# --------------------------------------------------------------------------------------------------
# from a source to a page


def isoflop_groups(points: pd.DataFrame, fit2: Mapping[str, Any], *, budget: np.ndarray | None = None,
                   budget_rtol: float = 0.1) -> list[dict]:
    """The approach-2 budgets with their points, for `figures.isoflop_figure`.

    Points are grouped as `analysis.fit.IsoFLOPFit` groups them (`analysis.frontier.group_budgets`); each
    group is matched to the fit's budget entry by C, and the drawn parabola is the least-squares
    quadratic in log10 N over the fit's window around the lowest loss (`frontier.parabola_window`),
    whose minimum is the fit's N_opt.
    """
    settings = fit2.get("settings") or {}
    idx, budget_C = group_budgets(points["C"].to_numpy(), budget, budget_rtol)
    entries = [b for b in fit2.get("budgets", []) if b.get("used")]
    groups = []
    for g, Cg in zip(idx, budget_C):
        match = [b for b in entries if abs(math.log(b["C"] / Cg)) < 1e-6]
        if not match:
            continue
        b = match[0]
        sub = points.iloc[g]
        w = sub.iloc[parabola_window(np.log(sub["N"].to_numpy()), sub["loss"].to_numpy(),
                                     int(settings.get("window", 5)), settings.get("window_span"))]
        coef = np.polyfit(np.log10(w["N"].to_numpy()), w["loss"].to_numpy(), 2) if w["N"].nunique() >= 3 else None
        groups.append({"C": b["C"], "points": sub, "coef": coef, "N_opt": b["N_opt"], "loss_opt": b["loss_opt"]})
    return groups


def build_report(source: str | Path, out: str | Path, *, static: tuple[str, str | Path] | None = None,
                 **kwargs: Any) -> Path:
    """Read `source` (sweep folder, run folder, CSV/Parquet table, or a fit JSON), fit what it allows,
    and write the report to `out` (`prepare_report` then `render_report`; the keywords are
    `prepare_report`'s)."""
    return render_report(prepare_report(source, **kwargs), out, static=static)


def prepare_report(
    source: str | Path,
    *,
    fit: str | Path | Mapping[str, Any] | ChinchillaFit | None = None,
    columns: Mapping[str, str | None] | None = None,
    n_convention: str | None = None,
    drop_highest: int = 0,
    bootstrap: int = 200,
    random_state: int = 0,
    budget_rtol: float = 0.1,
    holdout: str | None = None,
    targets: str | Path | None = None,
    lobo: bool = False,
    title: str | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    backtest_json: str | Path | Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    best_of: Any = None,
    allow_mixed: bool = False,
    level: float = 0.95,
    exclude: str | None = None,
    progress: bool = False,
    forecast: Any = None,
    hparams: str | Path | None = None,
) -> ReportData:
    """What the report of `source` shows. `fit` uses a given approach-3 fit (estimator, fit JSON path or
    dict) instead of fitting; `backtest_json` shows a backtest already made (its rows' intervals as
    given: the demo passes the interval it printed); `notes` are shown at the top of the page;
    `best_of` keeps the best row of each setting (`analysis.io.best_of_rows`); `exclude` leaves out the
    rows an `analysis.holdout` expression matches before anything is fitted; `level` is the level of
    every interval on the page; `progress` shows bars for the bootstraps and the refits; `forecast` is the
    fitted `analysis.forecast.Forecaster` (or its fit JSON) to show, else the forecaster is fitted on the
    table (along budgets, as `scaling plan --budget`, with min(`bootstrap`, 200) resamples). `hparams`: a
    `scaling hparams --out` JSON to draw; a folder whose runs vary the LR (or batch) gets its laws fitted."""
    if not 0 < level < 1:
        raise InputError(f"level: {level} is not in (0, 1)")
    source = Path(source)
    data = ReportData(source=str(source), title=title or f"Scaling-law report: {source.name}", notes=list(notes))
    fit3 = None if fit is None else read_fit(fit, approach=3, purpose="a report's --fit")
    forecast_fit = None if forecast is None else read_fit(forecast, approach="auto", purpose="a report's --forecast")
    if source.suffix.lower() == ".json":
        data.fit3 = read_fit(source, approach=3, purpose="a report from a fit JSON")
        data.notes.append("Report drawn from the fit JSON alone: the law, its frontier, contours and plans; "
                          "no data points.")
        data.hparams = _hparams(source, hparams, bootstrap, random_state, level, data.notes)
        return data

    notes_: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        frame, pts = load_frame(source, columns, n_convention=n_convention, best_of=best_of,
                                 allow_mixed=allow_mixed)
        if drop_highest:
            keep = np.sort(np.argsort(frame["loss"].to_numpy(), kind="stable")[: len(frame) - drop_highest])
            mask = np.zeros(len(frame), dtype=bool)
            mask[keep] = True
            frame, pts = frame[mask].reset_index(drop=True), pts.subset(mask)
            notes_.append(f"{drop_highest} highest-loss points dropped before fitting.")
        if exclude:
            mask = ~holdout_mask(frame, exclude)
            if mask.sum() == len(frame):
                notes_.append(f"--exclude {exclude!r} matched no rows.")
            frame, pts = frame[mask].reset_index(drop=True), pts.subset(np.asarray(mask))
            notes_.append(f"{int((~mask).sum())} rows matching {exclude!r} left out before fitting.")
        data.points = figures.points_frame(frame[["run_id", "N", "D", "C", "loss"]])

        if source.is_dir():
            try:
                cv = load_curves(source, n_convention=n_convention)
                cdf = pd.DataFrame({"run_id": cv.run, "N": cv.N, "tokens": cv.D, "flops": cv.C, "loss": cv.loss})
                data.curves = cdf.sort_values(["run_id", "tokens"]).reset_index(drop=True)
                try:
                    f1 = EnvelopeFit().fit(cv)
                    data.fit1 = f1
                    env = f1.envelope_
                    data.envelope = pd.DataFrame({"C": env["C"], "loss": env["loss"], "N": env["N_opt"], "run_id": env["run"]})
                except InputError as exc:
                    notes_.append(f"Approach 1 did not run: {exc}")
            except InputError as exc:
                notes_.append(f"No training curves, so approach 1 did not run: {exc}")

        if fit3 is None:
            fit3 = ChinchillaFit(bootstrap=bootstrap, random_state=random_state, interval_level=level,
                                 progress=progress, **dict(fit_kwargs or {})).fit(pts)
        data.fit3 = fit3
        try:
            f2 = IsoFLOPFit(budget_rtol=budget_rtol, bootstrap=bootstrap, random_state=random_state,
                            interval_level=level, progress=progress).fit(pts)
            data.fit2 = f2
            data.isoflop_groups = isoflop_groups(data.points, f2.to_dict(), budget=pts.budget, budget_rtol=budget_rtol)
        except InputError as exc:
            notes_.append(f"Approach 2 did not run: {exc}")
        if backtest_json is not None and not holdout:
            bt_d = backtest_json if isinstance(backtest_json, Mapping) else read_json_object(
                backtest_json, "backtest", error=InputError)
            if "rows" not in bt_d:
                raise InputError(f"{backtest_json}: not a backtest JSON (no 'rows'); write one with `scaling backtest --out`")
            data.backtest = dict(bt_d)
        if holdout:
            bt = backtest(frame, holdout, columns={"n": "N", "d": "D", "loss": "loss"}, targets=targets,
                          target_columns=columns, bootstrap=bootstrap, random_state=random_state, fit_kwargs=fit_kwargs,
                          level=level, progress=progress)
            data.backtest = bt.to_dict()
        if forecast_fit is not None:
            data.forecast = forecast_fit
        else:
            try:
                data.forecast = Forecaster(axis="budget", bootstrap=min(bootstrap, DEFAULT_BOOTSTRAP),
                                           random_state=random_state, fit_kwargs=fit_kwargs).fit(pts)
            except InputError as exc:
                notes_.append(f"The forecaster did not run: {exc}")
        if data.forecast is not None:
            data.auto = forecast_summary(data.forecast)
        if lobo:
            try:
                data.forecasts = leave_one_budget_out(frame, columns={"n": "N", "d": "D", "loss": "loss"},
                                                      fit_kwargs=fit_kwargs, progress=progress)
            except InputError as exc:
                notes_.append(f"Leave-one-budget-out skipped: {exc}")
        data.hparams = _hparams(source, hparams, bootstrap, random_state, level, notes_)
    data.warnings = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, FitWarning)))
    data.notes = notes_ + data.notes
    return data


def _hparams(source: Path, path: str | Path | None, bootstrap: int, random_state: int, level: float,
             notes: list[str]) -> Any:
    """The LR/batch laws to draw: read from `path`, or fitted on a folder whose runs vary an LR or batch
    multiplier (a note says why not when that fit fails)."""
    from analysis.hparams import fit_hparams, read_hparams

    if path is not None:
        return read_hparams(path)
    if not source.is_dir():
        return None
    try:
        frame, _, _ = folder_table(source, "points")
    except InputError:
        return None
    if not any(c in frame.columns and frame[c].nunique() > 1 for c in ("lr_multiplier", "batch_multiplier")):
        return None
    try:
        return fit_hparams(source, bootstrap=max(bootstrap, 200), level=level, random_state=random_state)
    except InputError as exc:
        notes.append(f"The LR/batch laws did not fit: {exc}")
        return None

"""One self-contained HTML page on a scaling study: figures, fitted parameters, plans, backtest.

`build_report(source, out)` reads a sweep folder (points/curves/trials Parquet), a CSV or Parquet
table (with a column map), or a fit JSON (`analysis.fitjson.read_fit`), fits what the data allows (approach 3 with bootstrap
intervals, approach 2 on IsoFLOP groups, the approach-1 envelope from training curves), optionally
runs a backtest, and writes one HTML file. plotly's JavaScript is inlined, so the page opens offline.

`render_report(data, out)` draws a `ReportData` that the caller has filled in.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from analysis import figures
from analysis.backtest import backtest, leave_one_budget_out, load_frame
from analysis.chinchilla import ChinchillaFit
from analysis.errors import InputError
from analysis.estimator import FitEstimator
from analysis.fitjson import read_fit
from analysis.frontier import EnvelopeFit, IsoFLOPFit, group_budgets
from analysis.io import FitWarning, load_curves
from analysis.plan import Planner
from contracts.counts import format_count
from contracts.jsonio import read_json_object

PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "svg"}}


@dataclass
class ReportData:
    """What a report shows; every part is optional except a title and a source description."""

    source: str
    points: pd.DataFrame | None = None          # points_frame(): run_id, N, D, C, loss
    curves: pd.DataFrame | None = None          # curves_frame(): run_id, N, tokens, flops, loss
    fit3: ChinchillaFit | dict | None = None    # approach-3 fit (chinchilla law): the estimator or its JSON
    fit2: dict | None = None                    # approach-2 fit JSON
    isoflop_groups: list[dict] | None = None    # for the parabola figure (see figures.isoflop_figure)
    envelope: pd.DataFrame | None = None        # approach-1 lower envelope (C, loss, N, run_id)
    fit1: dict | None = None                    # approach-1 fit JSON
    fitted_mask: np.ndarray | None = None       # which points entered the approach-3 fit
    backtest: dict | None = None                # BacktestResult.to_dict()
    forecasts: pd.DataFrame | None = None       # leave-one-budget-out folds
    notes: list[str] = field(default_factory=list)
    title: str = "Scaling-law report"


# --------------------------------------------------------------------------------------------------
# HTML pieces

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; background: white; }
h1 { font-size: 26px; margin: 8px 0 4px; } h2 { font-size: 20px; margin: 34px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.lead, p.note { color: #555; margin: 4px 0 10px; max-width: 980px; line-height: 1.45; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 5px 12px; text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f5f7; } td:first-child, th:first-child { text-align: left; }
.warn { color: #a15c00; } .bad { color: #c0392b; font-weight: 600; } .good { color: #1e7b34; }
.kpis { display: flex; gap: 14px; flex-wrap: wrap; margin: 14px 0; }
.kpi { border: 1px solid #ddd; border-radius: 6px; padding: 10px 14px; min-width: 170px; background: #fcfcfd; }
.kpi b { display: block; font-size: 20px; } .kpi span { color: #666; font-size: 13px; }
#report-errors { display: none; background: #fdecea; color: #8a1f11; padding: 8px 12px; border: 1px solid #f5c2bb; }
details.note { margin: 6px 0 10px; color: #555; } details.note li { margin: 3px 0; }
footer { color: #888; font-size: 12px; margin-top: 40px; }
"""

# Shows any script error on the page (and records it for automated checks) instead of failing silently.
_ERROR_HOOK = """
window.reportErrors = [];
function reportError(msg) {
  window.reportErrors.push(String(msg));
  document.documentElement.setAttribute('data-report-errors', window.reportErrors.length);
  var box = document.getElementById('report-errors');
  if (box) { box.style.display = 'block'; box.textContent = 'Script error: ' + window.reportErrors.join(' | '); }
}
window.addEventListener('error', function (e) { reportError(e.message); });
window.addEventListener('unhandledrejection', function (e) { reportError(e.reason); });
"""

_DONE_HOOK = """
window.addEventListener('load', function () {
  var plots = document.querySelectorAll('.plotly-graph-div');
  var drawn = 0;
  plots.forEach(function (p) { if (p.querySelector('.main-svg')) drawn += 1; });
  document.documentElement.setAttribute('data-plots', plots.length);
  document.documentElement.setAttribute('data-plots-drawn', drawn);
});
"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _num(x: Any, fmt: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(float(x), fmt)


def _table(header: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure_html(fig) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG)


def _fit3(fit3: FitEstimator | Mapping[str, Any]) -> ChinchillaFit:
    """The approach-3 fit a report shows, read once by the one fit-JSON reader."""
    return read_fit(fit3, approach=3, purpose="the report's approach-3 section")


_PARAM_DOC = {
    "E": ("irreducible loss", "nats/token"),
    "A": ("model-size coefficient", ""),
    "B": ("data-size coefficient", ""),
    "alpha": ("exponent of N", ""),
    "beta": ("exponent of D", ""),
    "a": ("N_opt ∝ C^a", ""),
    "b": ("D_opt ∝ C^b", ""),
    "G": ("frontier constant (αA/βB)^(1/(α+β))", ""),
}


def parameter_table(fit3: ChinchillaFit | Mapping[str, Any]) -> str:
    fit3 = _fit3(fit3)
    iv = getattr(fit3, "intervals_", {})
    lvl = getattr(fit3, "interval_level_", 0.95)
    rows = []
    for p, (what, unit) in _PARAM_DOC.items():
        value = getattr(fit3, f"{p}_")
        lo_hi = iv.get(p)
        rows.append([f"<b>{p}</b>", _esc(what), _num(value), "–" if not lo_hi else f"{_num(lo_hi[0])} – {_num(lo_hi[1])}", unit])
    head = ["parameter", "meaning", "estimate", f"{100 * lvl:.0f}% interval", "unit"]
    return _table(head, rows)


def plan_rows(fit3: ChinchillaFit | Mapping[str, Any], budgets: list[float]) -> str:
    fit3 = _fit3(fit3)
    planner = Planner.from_fit(fit3)
    rows = []
    for C in budgets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = planner.budget(C)
        iv = p.intervals

        def cell(key, fmt):
            s = fmt(getattr(p, key))
            if key in iv:
                s += f' <span style="color:#777">({fmt(iv[key][0])} – {fmt(iv[key][1])})</span>'
            return s

        far = p.extrapolation_factor is not None and p.extrapolation_factor > 100
        rows.append([
            f"{C:.3g}" + (' <span class="warn" title="more than 100x beyond the data">⚠</span>' if far else ""),
            cell("N", format_count), cell("D", format_count), cell("tokens_per_param", lambda v: f"{v:.1f}"),
            cell("loss", lambda v: f"{v:.4f}"),
            "–" if p.extrapolation_factor is None else (f"{p.extrapolation_factor:,.0f}×" if p.extrapolation_factor >= 1
                                                         else f"{p.extrapolation_factor:.2g}×"),
        ])
    lvl = planner.interval_level
    return _table(["budget C (FLOPs)", "N (params)", "D (tokens)", "tokens / param", "loss (nats/token)",
                   "× largest budget in data"], rows) + (
        f'<p class="note">Intervals in grey: {100 * lvl:.0f}% percentile over the bootstrap fits. '
        "⚠ marks plans more than 100× beyond the largest budget in the data.</p>")


def backtest_html(bt: Mapping[str, Any]) -> str:
    rows = []
    for r in bt["rows"]:
        inside = r.get("in_interval")
        rows.append([
            _esc(r.get("run_id", "")), format_count(r["N"]), format_count(r["D"]), f"{r['C']:.3g}", _num(r["loss"]),
            _num(r["predicted"]),
            "–" if r.get("lower") is None else f"{_num(r['lower'])} – {_num(r['upper'])}",
            f"{100 * r['rel_error']:+.2f}%",
            "–" if inside is None else ('<span class="good">yes</span>' if inside else '<span class="bad">no</span>'),
        ])
    lvl = bt.get("interval_level") or 0.95
    head = ["run", "N", "D", "C (FLOPs)", "truth (nats/token)", "predicted", f"{100 * lvl:.0f}% interval",
            "error", "inside"]
    summary = (
        f'<div class="kpis"><div class="kpi"><b>{100 * bt["mean_abs_rel_error"]:.2f}%</b><span>mean |relative error|</span></div>'
        f'<div class="kpi"><b>{100 * bt["max_abs_rel_error"]:.2f}%</b><span>largest |relative error|</span></div>'
        + (f'<div class="kpi"><b>{bt["n_inside"]} / {bt["n_holdout"]}</b><span>truths inside the {100 * lvl:.0f}% interval</span></div>'
           if bt.get("n_inside") is not None else "")
        + f'<div class="kpi"><b>{bt["n_train"]} → {bt["n_holdout"]}</b><span>runs fitted → held out</span></div></div>'
    )
    desc = (f'<p class="note">Held out: <code>{_esc(bt["holdout"])}</code>; fitted with approach {_esc(bt["approach"])} '
            f'on the rest; interval: {_esc(bt.get("interval_kind", ""))}.</p>')
    return desc + summary + _table(head, rows)


def render_report(data: ReportData, out: str | Path) -> Path:
    """Write the page for `data` to `out` (one HTML file, plotly inlined)."""
    from plotly.offline import get_plotlyjs

    out = Path(out)
    parts: list[str] = []
    pts = data.points
    fit3 = _fit3(data.fit3) if data.fit3 is not None else None
    law = fit3.law_ if fit3 is not None else None

    kpis = []
    if pts is not None and len(pts):
        kpis += [(f"{len(pts)}", "points"), (f"{pts['N'].nunique()}", "model sizes"),
                 (f"{format_count(pts['N'].min())} – {format_count(pts['N'].max())}", "N (parameters)"),
                 (f"{pts['C'].min():.2g} – {pts['C'].max():.2g}", "C (FLOPs)")]
    if fit3 is not None:
        kpis += [(f"{fit3.a_:.3f}", "a: N_opt ∝ C^a (approach 3)")]
    if data.fit2 and data.fit2.get("a") is not None:
        kpis += [(f"{float(data.fit2['a']):.3f}", "a (approach 2)")]
    if kpis:
        parts.append('<div class="kpis">' + "".join(f'<div class="kpi"><b>{_esc(v)}</b><span>{_esc(k)}</span></div>'
                                                    for v, k in kpis) + "</div>")
    warn_notes = [n for n in data.notes if n.startswith("Fit warning: ")]
    for note in data.notes:
        if note not in warn_notes:
            parts.append(f'<p class="note warn">{_esc(note)}</p>')
    if warn_notes:
        items = "".join(f"<li>{_esc(n[len('Fit warning: '):])}</li>" for n in warn_notes)
        parts.append(f'<details class="note"><summary class="warn">{len(warn_notes)} fit warning(s)</summary>'
                     f'<ul class="note">{items}</ul></details>')

    if data.curves is not None and len(data.curves):
        parts.append("<h2>Training curves</h2><p class='lead'>Validation loss against tokens for every run, "
                     "coloured by model size.</p>" + _figure_html(figures.curves_figure(data.curves)))
    if pts is not None and len(pts):
        has_env = (data.curves is not None and len(data.curves)) or (data.envelope is not None and len(data.envelope))
        parts.append("<h2>Loss vs compute (approach 1)</h2><p class='lead'>Loss against training FLOPs"
                     + ("; the black line is the lower envelope of the training curves (the best loss any run reached "
                        "at each budget, Hoffmann et al. 2022 §3.1)" if has_env else
                        " for each run's final point (no training curves in the source, so no approach-1 envelope)")
                     + ("; the dashed red line is the approach-3 law along its compute-optimal frontier." if law else ".")
                     + "</p>" + _figure_html(figures.flops_figure(pts, data.curves, law, data.envelope)))
        if data.fit1 and data.fit1.get("a") is not None:
            parts.append(f"<p class='note'>Approach-1 frontier: N_opt ∝ C^{float(data.fit1['a']):.3f}"
                         + (f", D_opt ∝ C^{float(data.fit1['b']):.3f}" if data.fit1.get("b") is not None else "") + ".</p>")
    if data.isoflop_groups:
        parts.append("<h2>IsoFLOP profiles (approach 2)</h2><p class='lead'>At each budget, loss against model size "
                     "with a parabola in log N; stars mark the minima, whose trend gives N_opt(C).</p>"
                     + _figure_html(figures.isoflop_figure(data.isoflop_groups)))
        if data.fit2:
            f2 = data.fit2
            parts.append("<p class='note'>Approach 2: " + ", ".join(
                f"{k} = {float(f2[k]):.3f}" + (f" ({_num(f2['intervals'][k][0], '.3f')} – {_num(f2['intervals'][k][1], '.3f')})"
                                                if (f2.get("intervals") or {}).get(k) else "")
                for k in ("a", "b") if f2.get(k) is not None) + ".</p>")
    if law is not None and pts is not None and len(pts):
        parts.append("<h2>Fitted law and compute-optimal frontier (approach 3)</h2><p class='lead'>"
                     "L(N, D) = E + A/N<sup>α</sup> + B/D<sup>β</sup> as contours; white dots are the runs; the red "
                     "line is this fit's compute-optimal frontier, green dashed Chinchilla's published law, purple "
                     "dotted Kaplan et al.'s N ∝ C<sup>0.73</sup>; grey dotted lines are budgets.</p>"
                     + _figure_html(figures.contour_figure(law, pts, C_max=float(pts["C"].max()))))
    if fit3 is not None:
        parts.append("<h2>Parameters</h2>" + parameter_table(fit3))
        meta = [f"{fit3.n_points_ or '–'} points", f"Huber δ = {fit3.delta_}",
                f"N convention: {fit3.n_convention_}", f"FLOPs: {fit3.flops_convention_}"]
        nb = len(getattr(fit3, "bootstrap_params_", {}).get("E", []))
        if nb:
            meta.append(f"intervals from {nb} bootstrap fits")
        parts.append(f"<p class='note'>{_esc('; '.join(meta))}.</p>")
        cmax = (fit3.data_range_.get("C") or [None, None])[1]
        if cmax is None and pts is not None and len(pts):
            cmax = float(pts["C"].max())
        if cmax:
            budgets = [cmax * f for f in (1, 10, 100, 1000, 1e4)]
            parts.append("<h2>Compute-optimal plans</h2>" + plan_rows(fit3, budgets))
    if law is not None and pts is not None and len(pts):
        parts.append("<h2>Residuals</h2><p class='lead'>Relative residual of each point under the fitted law; "
                     "a trend with compute means the law bends where the data do not.</p>"
                     + _figure_html(figures.residuals_figure(pts, law, data.fitted_mask)))
    if data.backtest:
        bt = data.backtest
        rows = pd.DataFrame(bt["rows"])
        parts.append("<h2>Backtest</h2>" + backtest_html(bt)
                     + _figure_html(figures.backtest_figure(rows, bt.get("interval_level") or 0.95)))
    if data.forecasts is not None and len(data.forecasts):
        f = data.forecasts
        parts.append("<h2>Leave-one-budget-out forecasts</h2><p class='lead'>Each fold refits without one budget and "
                     f"forecasts the compute-optimal model at {f['target_C'].iloc[0]:.3g} FLOPs; the spread shows how "
                     "much one budget moves the plan.</p>" + _figure_html(figures.forecast_figure(f)))

    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(data.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style>
<script>{_ERROR_HOOK}</script>
<script type="text/javascript">{get_plotlyjs()}</script>
<script>{_DONE_HOOK}</script>
</head><body><main>
<div id="report-errors"></div>
<h1>{_esc(data.title)}</h1>
<p class="lead">Source: <code>{_esc(data.source)}</code>. Losses in nats/token; N in parameters; D in tokens; C in FLOPs (6ND).</p>
{''.join(parts)}
<footer>Generated {stamp} by scaling (analysis.report). Figures are interactive: hover for run ids and values, drag to zoom, double-click to reset.</footer>
</main></body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


# --------------------------------------------------------------------------------------------------
# from a source to a page


def isoflop_groups(points: pd.DataFrame, fit2: Mapping[str, Any], *, budget: np.ndarray | None = None,
                   budget_rtol: float = 0.1) -> list[dict]:
    """The approach-2 budgets with their points, for `figures.isoflop_figure`.

    Points are grouped as `analysis.fit.IsoFLOPFit` groups them (`analysis.frontier.group_budgets`); each
    group is matched to the fit's budget entry by C, and the drawn parabola is the least-squares
    quadratic in log10 N, whose minimum is the fit's N_opt.
    """
    idx, budget_C = group_budgets(points["C"].to_numpy(), budget, budget_rtol)
    entries = [b for b in fit2.get("budgets", []) if b.get("used")]
    groups = []
    for g, Cg in zip(idx, budget_C):
        match = [b for b in entries if abs(math.log(b["C"] / Cg)) < 1e-6]
        if not match:
            continue
        b = match[0]
        sub = points.iloc[g]
        coef = np.polyfit(np.log10(sub["N"].to_numpy()), sub["loss"].to_numpy(), 2) if sub["N"].nunique() >= 3 else None
        groups.append({"C": b["C"], "points": sub, "coef": coef, "N_opt": b["N_opt"], "loss_opt": b["loss_opt"]})
    return groups


def build_report(
    source: str | Path,
    out: str | Path,
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
) -> Path:
    """Read `source` (sweep folder, run folder, CSV/Parquet table, or a fit JSON), fit what it allows,
    and write the report to `out`. `fit` uses a given approach-3 fit (estimator, fit JSON path or
    dict) instead of fitting."""
    source = Path(source)
    notes: list[str] = []
    data = ReportData(source=str(source), title=title or f"Scaling-law report: {source.name}")
    fit3 = None if fit is None else read_fit(fit, approach=3, purpose="a report's --fit")
    if source.suffix.lower() == ".json":
        data.fit3 = read_fit(source, approach=3, purpose="a report from a fit JSON")
        data.notes.append("Report drawn from the fit JSON alone: no points, so no data figures.")
        return render_report(data, out)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        frame, pts = load_frame(source, columns, n_convention=n_convention)
        if drop_highest:
            keep = np.sort(np.argsort(frame["loss"].to_numpy(), kind="stable")[: len(frame) - drop_highest])
            mask = np.zeros(len(frame), dtype=bool)
            mask[keep] = True
            frame, pts = frame[mask].reset_index(drop=True), pts.subset(mask)
            notes.append(f"{drop_highest} highest-loss points dropped before fitting.")
        data.points = figures.points_frame(frame[["run_id", "N", "D", "C", "loss"]])

        if source.is_dir():
            try:
                cv = load_curves(source, n_convention=n_convention)
                cdf = pd.DataFrame({"run_id": cv.run, "N": cv.N, "tokens": cv.D, "flops": cv.C, "loss": cv.loss})
                data.curves = cdf.sort_values(["run_id", "tokens"]).reset_index(drop=True)
                try:
                    f1 = EnvelopeFit().fit(cv)
                    data.fit1 = f1.to_dict()
                    env = f1.envelope_
                    data.envelope = pd.DataFrame({"C": env["C"], "loss": env["loss"], "N": env["N_opt"], "run_id": env["run"]})
                except InputError as exc:
                    notes.append(f"Approach 1 not possible: {exc}")
            except InputError as exc:
                notes.append(f"No training curves: {exc}")

        if fit3 is None:
            fit3 = ChinchillaFit(bootstrap=bootstrap, random_state=random_state, **dict(fit_kwargs or {})).fit(pts)
        data.fit3 = fit3
        try:
            f2 = IsoFLOPFit(budget_rtol=budget_rtol).fit(pts)
            data.fit2 = f2.to_dict()
            data.isoflop_groups = isoflop_groups(data.points, data.fit2, budget=pts.budget, budget_rtol=budget_rtol)
        except InputError as exc:
            notes.append(f"Approach 2 not possible: {exc}")
        if backtest_json is not None and not holdout:
            bt_d = backtest_json if isinstance(backtest_json, Mapping) else read_json_object(
                backtest_json, "backtest", error=InputError)
            if "rows" not in bt_d:
                raise InputError(f"{backtest_json}: not a backtest JSON (no 'rows'); write one with `scaling backtest --out`")
            data.backtest = dict(bt_d)
        if holdout:
            bt = backtest(frame, holdout, columns={"n": "N", "d": "D", "loss": "loss"}, targets=targets,
                          target_columns=columns, bootstrap=bootstrap, random_state=random_state, fit_kwargs=fit_kwargs)
            data.backtest = bt.to_dict()
        if lobo:
            try:
                data.forecasts = leave_one_budget_out(frame, columns={"n": "N", "d": "D", "loss": "loss"},
                                                      fit_kwargs=fit_kwargs)
            except InputError as exc:
                notes.append(f"Leave-one-budget-out skipped: {exc}")
    seen = set()
    for w in caught:
        if issubclass(w.category, FitWarning):
            msg = str(w.message)
            if msg not in seen and len(seen) < 8:
                seen.add(msg)
                notes.append(f"Fit warning: {msg}")
    data.notes = notes + data.notes
    return render_report(data, out)


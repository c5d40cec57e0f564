"""The report's HTML pieces: page style, script hooks, and the tables (parameters, plans, backtest).

The hooks record what automated checks read: `data-report-errors` on <html> counts script errors
(shown in a red box on the page too), `data-plots` / `data-plots-drawn` / `data-plots-with-data`
count the plotly figures, those that drew their SVG and those with at least one data value
(`data-plots-empty` lists the others by id).
"""

from __future__ import annotations

import html
import math
import warnings
from typing import Any, Mapping

from analysis.chinchilla import ChinchillaFit
from analysis.estimator import FitEstimator
from analysis.fitjson import read_fit
from analysis.plan import Planner
from contracts.counts import format_count

PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "svg"}}


# --------------------------------------------------------------------------------------------------
# HTML pieces

CSS = """
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
ERROR_HOOK = """
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

DONE_HOOK = """
window.addEventListener('load', function () {
  var plots = document.querySelectorAll('.plotly-graph-div');
  var drawn = 0;
  var withData = 0, empty = [];
  plots.forEach(function (p) {
    if (p.querySelector('.main-svg')) drawn += 1;
    var n = 0;
    (p._fullData || p.data || []).forEach(function (t) {
      ['x', 'z'].forEach(function (k) {
        var v = t[k] || [];
        for (var i = 0; i < v.length; i++) { if (v[i] !== null && v[i] !== undefined) { n += 1; break; } }
      });
    });
    if (n > 0) withData += 1; else empty.push(p.id);
  });
  document.documentElement.setAttribute('data-plots', plots.length);
  document.documentElement.setAttribute('data-plots-drawn', drawn);
  document.documentElement.setAttribute('data-plots-with-data', withData);
  document.documentElement.setAttribute('data-plots-empty', empty.join(' '));
});
"""


def esc(x: Any) -> str:
    return html.escape(str(x))


def num(x: Any, fmt: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(float(x), fmt)


def table(header: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def figure_html(fig) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG)


def fit3_of(fit3: FitEstimator | Mapping[str, Any]) -> ChinchillaFit:
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
    fit3 = fit3_of(fit3)
    iv = getattr(fit3, "intervals_", {})
    lvl = getattr(fit3, "interval_level_", 0.95)
    rows = []
    for p, (what, unit) in _PARAM_DOC.items():
        value = getattr(fit3, f"{p}_")
        lo_hi = iv.get(p)
        rows.append([f"<b>{p}</b>", esc(what), num(value), "–" if not lo_hi else f"{num(lo_hi[0])} – {num(lo_hi[1])}", unit])
    head = ["parameter", "meaning", "estimate", f"{100 * lvl:.0f}% interval", "unit"]
    return table(head, rows)


def plan_rows(fit3: ChinchillaFit | Mapping[str, Any], budgets: list[float]) -> str:
    fit3 = fit3_of(fit3)
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
    return table(["budget C (FLOPs)", "N (params)", "D (tokens)", "tokens / param", "loss (nats/token)",
                   "× largest budget in data"], rows) + (
        f'<p class="note">Intervals in grey: {100 * lvl:.0f}% percentile over the bootstrap fits. '
        "⚠ marks plans more than 100× beyond the largest budget in the data.</p>")


def backtest_html(bt: Mapping[str, Any]) -> str:
    rows = []
    for r in bt["rows"]:
        inside = r.get("in_interval")
        rows.append([
            esc(r.get("run_id", "")), format_count(r["N"]), format_count(r["D"]), f"{r['C']:.3g}", num(r["loss"]),
            num(r["predicted"]),
            "–" if row_interval(r) is None else f"{num(row_interval(r)[0])} – {num(row_interval(r)[1])}",
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
    what = (f'Held out: <code>{esc(bt["holdout"])}</code>; fitted with approach {esc(bt["approach"])} on the rest'
            if bt.get("holdout") else f'Target runs predicted by approach {esc(bt["approach"])} fitted to every run')
    desc = f'<p class="note">{what}; interval: {esc(bt.get("interval_kind", ""))}.</p>'
    return desc + summary + table(head, rows)




def row_interval(row: Mapping[str, Any]) -> tuple[float, float] | None:
    """A backtest row's predicted interval: "interval": [lo, hi] (version 2), or lower/upper (version 1)."""
    iv = row.get("interval") if "interval" in row else [row.get("lower"), row.get("upper")]
    if iv is None or iv[0] is None or iv[1] is None:
        return None
    lo, hi = float(iv[0]), float(iv[1])
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def warnings_html(messages: list[str]) -> str:
    """Every fit warning, grouped by kind (the message with its numbers and names blanked) and counted:
    a collapsed list per kind, the kinds with the most warnings first."""
    import re

    groups: dict[str, list[str]] = {}
    for m in messages:
        key = re.sub(r"'[^']*'|\"[^\"]*\"|[-+]?\d[\d.eE+-]*[kMBT]?", "…", m)
        groups.setdefault(key, []).append(m)
    parts = []
    for key, msgs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        items = "".join(f"<li>{esc(m)}</li>" for m in msgs)
        parts.append(f'<details class="note"><summary class="warn">{len(msgs)} × {esc(msgs[0] if len(msgs) == 1 else key)}'
                     f'</summary><ul class="note">{items}</ul></details>')
    return (f'<p class="note warn"><b>{len(messages)} fit warning(s)</b> in {len(groups)} kind(s):</p>' + "".join(parts))


def checklist_html(items: list[Mapping[str, Any]], title: str = "Reporting checklist") -> str:
    """The reporting checklist (`analysis.checklist`, Li et al. 2025) as a table; unrecorded answers in amber."""
    rows = [[esc(r["item"].replace("_", " ")),
             f'<span class="{"" if r["recorded"] else "warn"}" style="text-align:left;display:block">{esc(r["answer"])}</span>']
            for r in items]
    return (f"<h2>{esc(title)}</h2><p class='lead'>What a scaling-law study must state (Li et al. 2025, \"(Mis)fitting: "
            "a survey of scaling laws\"), answered from the data and the fit; what the data do not record says so.</p>"
            + table(["item", "answer"], rows))


def page_html(title: str, lead: str, body: str, footer: str) -> str:
    """One self-contained page: the style, the script hooks, plotly.js inlined (opens offline), `lead` (HTML)
    under the title, `body`, and `footer` after the generation time."""
    import datetime as _dt

    from plotly.offline import get_plotlyjs

    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{CSS}</style>
<script>{ERROR_HOOK}</script>
<script type="text/javascript">{get_plotlyjs()}</script>
<script>{DONE_HOOK}</script>
</head><body><main>
<div id="report-errors"></div>
<h1>{esc(title)}</h1>
<p class="lead">{lead}</p>
{body}
<footer>Generated {stamp} by scaling ({footer}).</footer>
</main></body></html>
"""


"""The HTML report: contents from a sweep folder, a CSV, a fit JSON; rendered in real headless Chromium."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from analysis import figures
from analysis.backtest import backtest
from analysis.chinchilla import ChinchillaFit
from analysis.errors import InputError
from analysis.fitjson import write_fit
from analysis.frontier import IsoFLOPFit
from analysis.report import ReportData, build_report, isoflop_groups, prepare_report, render_report
from chromium import chromium_path, render
from pngio import read_png
from synthetic_sweep import SMALL_GRID, TRUE_LAW, synthetic_points, write_sweep

FAST = {"init_grid": SMALL_GRID}
TRUE_LAW_FIT = {"approach": "3", "law": "chinchilla", **TRUE_LAW.to_dict(), "data_range": {"C": [1e16, 1e18]}}


@pytest.fixture(scope="module")
def sweep_data(tmp_path_factory):
    """A report of a synthetic sweep folder (points, curves, trials; one diverged run) with a backtest."""
    tmp = tmp_path_factory.mktemp("report")
    folder = write_sweep(tmp / "sweep")
    data = prepare_report(folder, bootstrap=40, holdout="largest C", lobo=True, fit_kwargs=FAST, title="Synthetic sweep")
    out = render_report(data, tmp / "report.html")
    return data, out


@pytest.fixture(scope="module")
def sweep_report(sweep_data):
    return sweep_data[1]


SWEEP_FIGURES = ["forecast-loss-opt", "forecast-cuts", "fig3", "curves", "loss-vs-compute", "isoflop", "law-contours",
                 "loss-opt", "exponents",
                 "predicted-vs-observed", "residuals", "residuals-n-dn", "backtest", "leave-one-budget-out"]


def _plot_specs(html: str) -> list[str]:
    return re.findall(r'Plotly\.newPlot\(\s*"([^"]+)"', html)


def test_report_is_one_self_contained_file_with_every_section(sweep_data):
    data, sweep_report = sweep_data
    html = sweep_report.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r'<script[^>]+src=', html), "no external scripts: the page must open offline"
    assert "plotly.js" in html or "Plotly" in html  # the library itself is inlined
    for section in ("Compute-optimal scaling (approach 1, approach 2, approach 3; Chinchilla Fig. 3)",
                    "Training curves", "Loss vs compute (approach 1)", "IsoFLOP profiles (approach 2)",
                    "Fitted law and compute-optimal frontiers (approach 1, approach 2, approach 3)",
                    "Compute-optimal loss L_opt(C) (approach 3, an alternative to the forecast above)",
                    "Parameters (approach 3)", "Compute-optimal plans",
                    "Predicted vs observed", "Residuals", "Backtest (approach auto)", "Leave-one-budget-out",
                    "Forecast (the law every command uses)", "The cut table"):
        assert section in html, section
    # the page's forecast is the forecaster's, along budgets, as `scaling plan --budget` fits it
    assert data.auto["chosen"] == data.forecast.chosen_ and data.forecast.axis_ == "budget" and data.auto["reason"]
    assert [f["name"] for f in data.figures] == SWEEP_FIGURES
    assert len(_plot_specs(html)) == len(SWEEP_FIGURES)
    # hover text carries run ids and units
    assert "iso-1e+18-n" in html and "nats/token" in html and "FLOPs" in html and "params" in html
    # the diverged run is left out, and the page says so
    assert "diverged-run" not in html and "not completed" in html
    # Chinchilla's and Kaplan's frontiers are drawn for reference, beside every approach's
    assert "Chinchilla (Hoffmann et al. 2022)" in html and "Kaplan et al. 2020" in html
    assert "approach 1 (envelope) frontier" in html and "approach 2 (IsoFLOP) frontier" in html


def test_report_figures_hold_the_fitted_numbers(tmp_path):
    points = figures.points_frame(synthetic_points(noise=0.0))
    fit2 = {"budgets": []}
    from analysis.fit import IsoFLOPFit

    fit2 = IsoFLOPFit().fit(points[["N", "D", "loss"]].rename(columns={"N": "params", "D": "tokens"})).to_dict()
    groups = isoflop_groups(points, fit2)
    assert len(groups) == 5
    for g in groups:
        # the drawn parabola's vertex is the fit's N_opt
        c2, c1, _ = g["coef"]
        assert 10 ** (-c1 / (2 * c2)) == pytest.approx(g["N_opt"], rel=1e-6)
        assert len(g["points"]) == 6


def test_lower_envelope_is_the_best_loss_at_each_budget():
    curves = pd.DataFrame({
        "run_id": ["a"] * 3 + ["b"] * 3, "N": [1.0] * 3 + [2.0] * 3,
        "flops": [1e10, 1e11, 1e12, 1e10, 1e11, 1e12], "loss": [3.0, 2.5, 2.4, 3.5, 2.4, 2.2],
    })
    env = figures.lower_envelope(curves, n_grid=3)
    assert env["loss"].tolist() == pytest.approx([3.0, 2.4, 2.2])
    assert env["run_id"].tolist() == ["a", "b", "b"]


def test_report_from_a_csv_with_a_column_map(tmp_path):
    pts = synthetic_points().rename(columns={"params": "Model Size", "flops_6nd": "Training FLOP"})
    csv = tmp_path / "runs.csv"
    pts[["Model Size", "Training FLOP", "loss"]].to_csv(csv, index=False)
    out = build_report(csv, tmp_path / "r.html", columns={"n": "Model Size", "c": "Training FLOP", "loss": "loss"},
                       bootstrap=20, fit_kwargs=FAST)
    html = out.read_text()
    assert "no training curves in the source" in html and "Training curves" not in html
    assert "Loss vs compute (approach 1)" not in html and "Loss vs compute" in html   # titles say what ran
    # forecast L_opt and cuts, fig3, flops, isoflop, contour, L_opt, exponents, predicted, residuals x2
    assert len(_plot_specs(html)) == 11
    assert "row 1" in html  # run ids fall back to row numbers
    # the reporting checklist (Li et al. 2025): a plain CSV records no eval data hash, and says so
    assert "Reporting checklist" in html and "eval data hash" in html and "not recorded" in html


def test_report_from_a_fit_json_alone(tmp_path):
    fit = {"approach": 3, "law": "chinchilla", **TRUE_LAW.to_dict(), "data_range": {"C": [1e16, 1e18]}}
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fit))
    data = prepare_report(path)
    html = render_report(data, tmp_path / "r.html").read_text()
    assert "Parameters" in html and "Compute-optimal plans" in html and "1e+21" in html
    # the law is drawn: the Fig. 3 row, its frontier over the contours, L_opt(C)
    assert [f["name"] for f in data.figures] == ["fig3", "law-contours", "loss-opt"]
    assert len(_plot_specs(html)) == 3
    (tmp_path / "a2.json").write_text(json.dumps({"approach": 2}))
    with pytest.raises(InputError, match="approach-3 fit"):
        build_report(tmp_path / "a2.json", tmp_path / "x.html")
    with pytest.raises(InputError, match="no such file"):
        build_report(tmp_path / "missing.csv", tmp_path / "x.html")


# ---- real headless Chromium


needs_chromium = pytest.mark.skipif(chromium_path() is None, reason="chromium not installed (apt-get install chromium)")


def _check_in_chromium(page, png=None, **kw):
    """Render `page`; every plotly figure drew its SVG and holds data, and no script error happened."""
    shot = render(page, png, **kw)
    root = re.search(r"<html[^>]*>", shot.dom).group(0)
    n_plots = int(re.search(r'data-plots="(\d+)"', root).group(1))
    n_drawn = int(re.search(r'data-plots-drawn="(\d+)"', root).group(1))
    n_data = int(re.search(r'data-plots-with-data="(\d+)"', root).group(1))
    assert n_plots == len(_plot_specs(page.read_text())) and n_drawn == n_plots and n_data == n_plots, root
    assert "data-report-errors" not in root
    assert not [c for c in shot.console if "Uncaught" in c or "Error" in c], shot.console
    assert shot.dom.count('class="main-svg"') >= 2 * n_plots
    return shot, n_plots


@pytest.fixture(scope="module")
def report_kinds(sweep_report, tmp_path_factory):
    """One page of each kind: a sweep folder (fixture), a CSV, a fit JSON alone, and the demo's (a given
    fit, a backtest of a target run carrying the interval the demo printed, and a note on its law)."""
    tmp = tmp_path_factory.mktemp("kinds")
    pts = synthetic_points()
    pts[["params", "tokens", "loss"]].to_csv(tmp / "runs.csv", index=False)
    csv = build_report(tmp / "runs.csv", tmp / "csv.html", bootstrap=20, fit_kwargs=FAST)
    fit = ChinchillaFit(init_grid=SMALL_GRID, bootstrap=20, random_state=0).fit(pts)
    write_fit(fit, tmp / "fit.json")
    fit_only = build_report(tmp / "fit.json", tmp / "fit.html")
    folder = write_sweep(tmp / "sweep", with_diverged=False)
    target = synthetic_points(budgets=(1e19,), sizes_per_budget=1, seed=3)
    target.to_csv(tmp / "target.csv", index=False)
    bt = backtest(folder, holdout=None, targets=tmp / "target.csv", approach=3, bootstrap=20, random_state=0,
                  fit_kwargs=FAST).to_dict()   # the demo's backtest names its law (approach 3 here)
    bt["rows"][0]["interval"] = DEMO_INTERVAL
    bt["interval_kind"] = "prediction, widened by the law's measured extrapolation error"
    demo = build_report(folder, tmp / "demo.html", fit=fit, backtest_json=bt, bootstrap=20,
                        notes=["The demo forecast the held-out run with approach 3."])
    return {"sweep folder": sweep_report, "CSV": csv, "fit JSON only": fit_only, "demo": demo}


DEMO_INTERVAL = [2.61234, 2.71234]


def test_the_demo_report_shows_the_interval_the_demo_printed(report_kinds):
    html = report_kinds["demo"].read_text()
    assert "2.612 – 2.712" in html and "widened by the law" in html
    assert "Target runs predicted by approach 3 fitted to every run" in html
    assert "The demo forecast the held-out run with approach 3." in html


@needs_chromium
@pytest.mark.parametrize("kind", ["sweep folder", "CSV", "fit JSON only", "demo"])
def test_every_report_kind_renders_in_headless_chromium_with_data_in_every_figure(report_kinds, kind):
    _, n_plots = _check_in_chromium(report_kinds[kind])
    assert n_plots >= 3


@needs_chromium
def test_report_screenshot_is_not_blank(sweep_report, tmp_path):
    shot, n_plots = _check_in_chromium(sweep_report, tmp_path / "report.png", width=1280, height=1800)
    assert n_plots == len(SWEEP_FIGURES)
    # the screenshot is not blank: varied pixels, and a good share of them not background white
    img = read_png(shot.screenshot)[:, :, :3].astype(float)
    assert img.shape[:2] == (1800, 1280)
    assert img.std() > 20
    assert (img.mean(axis=2) < 200).mean() > 0.03


def _has_kaleido() -> bool:
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    return True


@needs_chromium
@pytest.mark.skipif(not _has_kaleido(), reason='kaleido not installed (pip install -e ".[dev]" or ".[static]")')
def test_static_export_writes_every_figure_as_a_file(tmp_path, capsys):
    from orchestrator.cli import main

    fit = {"approach": "3", "law": "chinchilla", **TRUE_LAW.to_dict(), "data_range": {"C": [1e16, 1e18]}}
    (tmp_path / "fit.json").write_text(json.dumps(fit))
    assert main(["report", str(tmp_path / "fit.json"), "--out", str(tmp_path / "r.html"), "--static", "svg",
                 str(tmp_path / "figs"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    files = [tmp_path / "figs" / f"{i:02d}-{f['name']}.svg" for i, f in enumerate(d["figures"], 1)]
    assert d["static"]["files"] == [str(f) for f in files] and len(files) == 3
    for f in files:
        text = f.read_text()
        assert text.lstrip().startswith("<svg") and text.count("<path") > 10   # a drawn figure, not an empty frame
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(f.name for f in files)  # no temp files left
    assert main(["report", str(tmp_path / "fit.json"), "--out", str(tmp_path / "r.html"), "--static", "jpg",
                 str(tmp_path / "figs")]) == 2
    assert "--static: 'jpg' is not one of png, svg, pdf" in capsys.readouterr().err


@needs_chromium
def test_chromium_check_catches_a_script_error(tmp_path):
    # the negative control: a page whose script fails must be caught by the same checks
    data = ReportData(source="broken", points=figures.points_frame(synthetic_points()))
    out = render_report(data, tmp_path / "broken.html")
    html = out.read_text().replace("</main>", "<script>undefinedFunctionCall();</script></main>")
    out.write_text(html)
    shot = render(out, None)
    root = re.search(r"<html[^>]*>", shot.dom).group(0)
    assert 'data-report-errors="1"' in root
    assert any("undefinedFunctionCall" in c for c in shot.console)
    # and a figure without data is counted as such
    import plotly.graph_objects as go

    from analysis.report_html import figure_html

    empty = figure_html(go.Figure(go.Scatter(x=[None], y=[None])))
    out.write_text(out.read_text().replace("</main>", empty + "</main>"))
    root = re.search(r"<html[^>]*>", render(out, None).dom).group(0)
    n_plots = int(re.search(r'data-plots="(\d+)"', root).group(1))
    assert int(re.search(r'data-plots-with-data="(\d+)"', root).group(1)) == n_plots - 1


def test_envelope_drawn_never_steps_up_and_clipping_is_said_on_the_figure():
    pts = figures.points_frame(synthetic_points())
    env = pd.DataFrame({"C": [1e16, 2e16, 4e16, 8e16], "loss": [3.0, 2.8, 2.9, 2.7], "N": [1e6, 2e6, 3e6, 4e6],
                        "run_id": ["a", "b", "c", "d"]})
    pts.loc[0, "loss"] = 50.0   # one run far above the rest: outside the drawn y range
    fig = figures.flops_figure(pts, None, None, env)
    drawn = next(t for t in fig.data if t.name == "lower envelope (approach 1)")
    assert list(drawn.y) == [3.0, 2.8, 2.8, 2.7]                       # the running minimum
    assert [c[1] for c in drawn.customdata] == ["a", "b", "b", "d"]     # the run that reached it
    notes = [a.text for a in fig.layout.annotations]
    assert any("1 above (up to 50)" in n for n in notes), notes


def test_isoflop_figure_uses_a_colour_bar_past_eight_budgets():
    budgets = np.logspace(16, 19, 12)
    points = figures.points_frame(synthetic_points(budgets=budgets, sizes_per_budget=4))
    fit2 = IsoFLOPFit(min_sizes=3).fit(points[["N", "D", "loss"]].rename(columns={"N": "params", "D": "tokens"})).to_dict()
    fig = figures.isoflop_figure(isoflop_groups(points, fit2))
    assert not any(t.showlegend for t in fig.data if t.showlegend is not None)
    assert any(getattr(t.marker, "showscale", False) for t in fig.data)
    few = figures.isoflop_figure(isoflop_groups(points, fit2)[:5])
    assert sum(bool(t.showlegend) for t in few.data) == 5


def test_every_fit_warning_is_kept_grouped_and_counted(tmp_path):
    msgs = [f"runs.csv: budget C={c:.3g} FLOPs has 2 model size(s), fewer than 3; skipped" for c in np.logspace(16, 19, 30)]
    msgs += [f"runs.csv: the fitted minimum N={n} lies outside the sizes run" for n in range(5)]
    data = ReportData(source="x", fit3=TRUE_LAW_FIT, warnings=msgs)
    html = render_report(data, tmp_path / "w.html").read_text()
    assert "35 fit warning(s)</b> in 2 kind(s)" in html and "30 × " in html and "5 × " in html
    assert all(m in html for m in msgs)


def test_fig3_draws_every_approach_to_100x_with_bands_that_hold_the_line():
    from analysis import figures_paper

    pts = synthetic_points(noise=0.004)
    fit3 = ChinchillaFit(init_grid=SMALL_GRID, bootstrap=30, random_state=0).fit(pts)
    fit2 = IsoFLOPFit(bootstrap=30, random_state=0).fit(pts)
    frontiers = figures_paper.frontiers_of(None, fit2, fit3)
    assert [f.approach for f in frontiers] == ["2", "3"] and all(f.band is not None for f in frontiers)
    c_hi = float(pts["flops_6nd"].max())
    fig = figures_paper.fig3_figure(frontiers, None, fit3.law_, (float(pts["flops_6nd"].min()), c_hi))
    lines = [t for t in fig.data if t.mode == "lines" and t.name and "∝" in t.name]
    assert len(lines) == 4                                        # N_opt and D_opt of each approach
    for t in lines:
        assert max(t.x) == pytest.approx(100 * c_hi)              # extrapolated to 100x the largest budget
    n3 = next(t for t in lines if t.name.startswith("approach 3") and t.xaxis == "x2")
    C = np.asarray(n3.x)
    assert np.asarray(n3.y) == pytest.approx(fit3.compute_optimal(C)[0], rel=1e-9)
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 4
    # the band of L_opt(C) holds the line, and is wider 100x out than at the data
    lo, hi = figures_paper.loss_opt_band(fit3, np.array([c_hi, 100 * c_hi]), 0.95)
    mid = fit3.law_.optimal_loss(np.array([c_hi, 100 * c_hi]))
    assert (lo < mid).all() and (mid < hi).all() and (hi - lo)[1] > (hi - lo)[0]


def test_report_forecast_names_the_form_that_forecasts_and_exclude_leaves_rows_out(tmp_path):
    pts = synthetic_points()                      # drawn from a Chinchilla law: approach 3 should forecast best
    csv = tmp_path / "runs.csv"
    pts.to_csv(csv, index=False)
    n_small = int((pts["params"] < pts["params"].min() * 1.01).sum())
    data = prepare_report(csv, bootstrap=0, exclude=f"N < {pts['params'].min() * 1.01:g}",
                          fit_kwargs=FAST, level=0.9)
    assert data.auto is not None and data.auto["chosen"] == "chinchilla"
    assert {r["candidate"] for r in data.auto["table"]} >= {"chinchilla", "kaplan_nd"}
    assert len(data.points) == len(pts) - n_small and any("left out before fitting" in n for n in data.notes)
    html = render_report(data, tmp_path / "r.html").read_text()
    assert "Forecast (the law every command uses)" in html and "chinchilla <b>(heaviest)</b>" in html
    # a forecaster fit JSON is shown as given, not refitted
    fc_json = tmp_path / "fc.json"
    data.forecast.to_json(fc_json)
    again = prepare_report(csv, bootstrap=0, forecast=fc_json, fit_kwargs=FAST)
    assert again.forecast.weights_ == pytest.approx(data.forecast.weights_)
    with pytest.raises(InputError, match="level"):
        prepare_report(csv, level=1.5)

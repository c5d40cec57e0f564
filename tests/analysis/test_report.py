"""The HTML report: contents from a sweep folder, a CSV, a fit JSON; rendered in real headless Chromium."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from analysis import figures
from analysis.backtest import backtest
from analysis.chinchilla import ChinchillaFit
from analysis.errors import InputError
from analysis.fitjson import write_fit
from analysis.report import ReportData, build_report, isoflop_groups, prepare_report, render_report
from chromium import chromium_path, render
from pngio import read_png
from synthetic_sweep import SMALL_GRID, TRUE_LAW, synthetic_points, write_sweep

FAST = {"init_grid": SMALL_GRID}


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


SWEEP_FIGURES = ["fig3", "curves", "loss-vs-compute", "isoflop", "law-contours", "loss-opt", "exponents",
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
                    "Compute-optimal loss L_opt(C) (approach 3)", "Parameters (approach 3)", "Compute-optimal plans",
                    "Predicted vs observed", "Residuals", "Backtest (approach 3)", "Leave-one-budget-out"):
        assert section in html, section
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
    # fig3, flops, isoflop, contour, L_opt, exponents, predicted, residuals x2
    assert len(_plot_specs(html)) == 9
    assert "row 1" in html  # run ids fall back to row numbers


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
    bt = backtest(folder, holdout=None, targets=tmp / "target.csv", bootstrap=20, random_state=0,
                  fit_kwargs=FAST).to_dict()
    bt["rows"][0]["interval"] = DEMO_INTERVAL
    bt["interval_kind"] = "prediction, widened by the law's measured extrapolation error"
    demo = build_report(folder, tmp / "demo.html", fit=fit, backtest_json=bt, bootstrap=20,
                        notes=["The demo forecast the held-out run with approach 3."])
    return {"sweep folder": sweep_report, "CSV": csv, "fit JSON only": fit_only, "demo": demo}


DEMO_INTERVAL = [2.61234, 2.71234]


def test_the_demo_report_shows_the_interval_the_demo_printed(report_kinds):
    html = report_kinds["demo"].read_text()
    assert "2.612 – 2.712" in html and "widened by the law" in html
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

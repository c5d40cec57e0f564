"""Backtests: fit a law on some runs, predict others, and score the predictions.

`backtest(data, holdout)` holds out the rows matching `holdout` (see `analysis.holdout`: an expression
such as ``"N >= 2e9"``, ``"largest N"``, ``"largest C"``, ``"rows 3,5"``), fits the rest with `auto` (the
default: the forecaster of `analysis.forecast`, whose candidates are weighed by forecasting the table's
own held-out parts along the axis this backtest extrapolates: budgets when every predicted run lies
beyond the fitted budgets, sizes when beyond the fitted sizes, tokens per parameter when beyond those),
approach 3 (Chinchilla's L(N, D)) or Kaplan's L(N, D), predicts the held-out losses and reports, per row, the
relative error (predicted - truth) / truth and whether the truth lies in the predicted interval; then
the mean and largest absolute relative error and the interval coverage. Extra `targets` (runs not in
the table, e.g. published large models) are predicted and scored alongside the held-out rows.

Intervals (`interval=`):
- "prediction" (default): the spread of a new observation. With `auto`, exp(+-z s sigma(x)) around the
  forecast, s measured on the held-out cuts (`analysis.forecast`). With approach 3 or kaplan, combining the bootstrap fits (parameter
  uncertainty) with the fit's own residuals in log loss (the scatter of single runs about the law):
  quantiles of log L_b(N, D) + r_j over all bootstrap laws b and training residuals r_j.
- "confidence": the bootstrap fits only (uncertainty of the mean law), narrower.

`leave_one_budget_out(data)` refits once per compute budget left out and forecasts the compute-optimal
(N, D, loss) at a larger budget from each fold: the spread says how much one budget moves a forecast
(Open-Athena's forecast-sensitivity check; user-needs §4.3).

Sample weights (`weights=`) are part of the method under test: "compute" weights each run by its share of
log-compute above the smallest run (log C - log C_min + 1), "size" gives every model size the same
total weight, or pass an array.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from analysis.bootstrap import percentile_interval
from analysis.chinchilla import ChinchillaFit
from analysis.errors import InputError
from analysis.estimator import progress_bar
from analysis.frontier import group_budgets
from analysis.holdout import holdout_mask
from analysis.io import Points, load_points_frame, warn_repeated_data
from analysis.kaplan import KaplanFit
from analysis.plan import Planner
from contracts.counts import format_count

APPROACHES = ("auto", "3", "kaplan")


# --------------------------------------------------------------------------------------------------
# loading a table with its run ids


def load_frame(data: Any, columns: Mapping[str, str | None] | None = None, *,
               n_convention: str | None = None, best_of: Any = None,
               allow_mixed: bool = False) -> tuple[pd.DataFrame, Points]:
    """(frame, points): the rows `analysis.io.load_points_frame` keeps (same file, folder and status
    rules as every fit), with canonical columns N, D, C, loss and run_id added, and their validated
    `Points` in the same order.

    `data`: a CSV/Parquet file, a sweep folder (points.parquet) or run folder (points.csv), or a DataFrame.
    A table without run ids gets its `run` column or the row number ("row 3") as run_id.
    """
    df, pts = load_points_frame(data, columns, n_convention=n_convention, best_of=best_of, allow_mixed=allow_mixed)
    frame = df.copy()
    if "run_id" not in frame.columns:
        frame["run_id"] = [str(r) for r in df["run"]] if "run" in df.columns else [f"row {i + 1}" for i in range(len(df))]
    frame["run_id"] = frame["run_id"].astype(str)
    frame["N"], frame["D"], frame["C"], frame["loss"] = pts.N, pts.D, pts.C, pts.loss
    if pts.U is not None:
        frame["U"] = pts.U
    for convention, (_, values) in pts.other_n.items():   # N under another convention: N_nonembedding
        frame[f"N_{convention}"] = values
    return frame, pts


# --------------------------------------------------------------------------------------------------
# fitting and predicting with one approach


def sample_weights(frame: pd.DataFrame, how: Any) -> np.ndarray | None:
    """None, "compute" (1 + log C/C_min), "size" (each distinct N gets equal total weight), or an array."""
    if how is None or (isinstance(how, str) and how in ("", "none", "equal")):
        return None
    if isinstance(how, str):
        if how == "compute":
            logc = np.log(frame["C"].to_numpy())
            return 1.0 + logc - logc.min()
        if how == "size":
            counts = frame.groupby("N")["N"].transform("count").to_numpy()
            return len(frame) / counts / frame["N"].nunique()
        raise InputError(f"weights: {how!r} is not one of none, compute, size")
    w = np.asarray(how, dtype=float)
    if w.shape != (len(frame),):
        raise InputError(f"weights: {w.size} weights for {len(frame)} rows")
    return w


@dataclass
class _Fitted:
    approach: str
    estimator: Any
    fit_dict: dict

    @property
    def n_convention(self) -> str:
        """The N convention the law takes (auto may choose another than the table's)."""
        return str(getattr(self.estimator, "n_convention_", "total"))

    def predict(self, N, D, U=None) -> np.ndarray:
        """Losses at (N, D); U (unique tokens per row) reaches a law that prices repetition (auto's
        data-constrained choice), every other law ignores it."""
        if U is not None and self.approach == "auto":
            return np.asarray(self.estimator.predict(N, D, U), dtype=float)
        return np.asarray(self.estimator.predict(N, D), dtype=float)

    def bootstrap_predictions(self, N, D) -> np.ndarray | None:
        """(B, n) predicted losses, one row per bootstrap law; None without a bootstrap
        (`analysis.forecast.candidates.log_draws`, the one place that evaluates a fit's bootstrap laws)."""
        from analysis.forecast.candidates import log_draws

        draws = log_draws(self.estimator, np.asarray(N, dtype=float), np.asarray(D, dtype=float))
        return None if draws is None else np.exp(draws)


def fit_approach(pts: Any, approach: Any = 3, *, bootstrap: int = 200, random_state: int | None = 0,
                 sample_weight: np.ndarray | None = None, fit_kwargs: Mapping[str, Any] | None = None,
                 progress: bool = False, exclude: Mapping[str, str] | None = None, axis: str = "auto",
                 vocab_size: int | None = None, keep_all: bool = False) -> _Fitted:
    """Fit `pts` (analysis.io.Points) with auto, approach 3 or kaplan (the laws that predict L(N, D));
    `progress` shows the bootstrap's bar. For auto (`analysis.forecast.Forecaster`): `axis` the question
    extrapolates, `exclude` ({candidate: reason}) candidates left out, `vocab_size` V of L0 = ln V when
    the points do not record it, `keep_all` no domain rules."""
    approach = str(approach).lower()
    kw = dict(fit_kwargs or {})
    kw.setdefault("progress", progress)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if approach == "auto":
            if sample_weight is not None:
                raise InputError("weights: auto (the default) compares unweighted fits; give approach 3 with weights")
            from analysis.forecast import Forecaster

            est = Forecaster(axis=axis, bootstrap=bootstrap, random_state=random_state, fit_kwargs=kw, exclude=exclude,
                             vocab_size=vocab_size, keep_all=keep_all).fit(pts)
        elif approach == "3":
            est = ChinchillaFit(bootstrap=bootstrap, random_state=random_state, **kw).fit(pts, sample_weight=sample_weight)
        elif approach == "kaplan":
            if sample_weight is not None:
                raise InputError("weights: the Kaplan fit takes no sample weights; use approach 3")
            est = KaplanFit(form="nd", bootstrap=bootstrap, random_state=random_state, **kw).fit(pts)
        elif approach in ("1", "2"):
            raise InputError(f"approach {approach} gives N_opt(C), not the loss of a given (N, D): backtest with "
                             "approach 3 or kaplan")
        else:
            raise InputError(f"approach: {approach!r} is not auto, 3 or kaplan")
    return _Fitted(approach, est, est.to_dict())


# --------------------------------------------------------------------------------------------------
# the backtest


def _targets_lacking(test: pd.DataFrame, pts: Points) -> dict[str, str]:
    """{candidate: reason} for auto's candidates under another N convention that some predicted row
    (a targets file without the column) cannot be given: they are skipped, not forecast with the wrong N."""
    from analysis.forecast.candidates import CANDIDATES

    out = {}
    for name, convention in ((c.name, c.n_convention) for c in CANDIDATES.values() if c.n_convention):
        col = f"N_{convention}"
        if convention in pts.other_n and (col not in test.columns or test[col].isna().any()):
            out[name] = (f"the targets have no {pts.other_n[convention][0]!r} column to forecast them with "
                         f"{convention} N")
    return out


def question_axis(train: pd.DataFrame, test: pd.DataFrame) -> str:
    """The axis a backtest extrapolates: "budget" when every predicted run lies beyond the largest fitted
    budget, else "size" beyond the largest fitted model, else "tokens_per_param" beyond the largest fitted
    D/N, else "auto" (`analysis.forecast.cuts.choose_axis`)."""
    if test.empty or train.empty:
        return "auto"
    if float(test["C"].min()) > float(train["C"].max()):
        return "budget"
    if float(test["N"].min()) > float(train["N"].max()):
        return "size"
    if float((test["D"] / test["N"]).min()) > float((train["D"] / train["N"]).max()):
        return "tokens_per_param"
    return "auto"


@dataclass
class BacktestResult:
    """Per-row predictions of held-out runs and their scores; `rows` columns: run_id, N, D, C, loss,
    predicted, lower, upper, rel_error, abs_rel_error, in_interval, target (True for extra targets)."""

    approach: str
    holdout: str | None                    # the --holdout expression; None when only targets are predicted
    n_train: int
    n_holdout: int
    rows: pd.DataFrame
    interval_kind: str
    interval_level: float
    weights: str
    fit: dict = field(repr=False, default_factory=dict)
    train_mask: np.ndarray | None = field(repr=False, default=None)

    @property
    def mean_abs_rel_error(self) -> float:
        return float(self.rows["abs_rel_error"].mean())

    @property
    def max_abs_rel_error(self) -> float:
        return float(self.rows["abs_rel_error"].max())

    @property
    def n_inside(self) -> int | None:
        if self.rows["in_interval"].isna().all():
            return None
        return int(self.rows["in_interval"].fillna(False).astype(bool).sum())

    @property
    def coverage(self) -> float | None:
        n = self.n_inside
        return None if n is None else n / len(self.rows)

    def to_dict(self) -> dict[str, Any]:
        """The backtest JSON (`contracts.outputs` version 2): each row's interval as [lower, upper] (or
        null), the fit compact (`analysis.fitjson.fit_json`)."""
        from analysis.fitjson import fit_json
        from contracts.outputs import OUTPUT_SCHEMA_VERSION

        rows = []
        for r in self.rows.replace({np.nan: None}).to_dict(orient="records"):
            lo, hi = r.pop("lower", None), r.pop("upper", None)
            rows.append({**r, "interval": None if lo is None or hi is None else [lo, hi]})
        return {
            "schema_version": OUTPUT_SCHEMA_VERSION, "approach": str(self.approach), "holdout": self.holdout, "weights": self.weights,
            "n_train": self.n_train, "n_holdout": self.n_holdout,
            "interval_kind": self.interval_kind, "interval_level": self.interval_level,
            "mean_abs_rel_error": self.mean_abs_rel_error, "max_abs_rel_error": self.max_abs_rel_error,
            "n_inside": self.n_inside, "coverage": self.coverage, "rows": rows,
            "fit": fit_json(self.fit),
            "units": {"N": "parameters", "D": "tokens", "C": "FLOPs", "loss": "nats/token",
                      "rel_error": "(predicted - truth) / truth"},
        }

    def summary(self) -> str:
        lvl = f"{100 * self.interval_level:.0f}%"
        ceiling = self.fit.get("ceiling")   # Kaplan's law bounded by ln V says so
        bounded = "" if ceiling is None else f" bounded by ln V = {float(ceiling):.4f}"
        lines = [f"backtest: approach {self.approach}{bounded}, weights {self.weights}; fitted {self.n_train} runs, "
                 f"predicted {self.n_holdout} (held out: {self.holdout})",
                 f"{'run':<28}{'N':>10}{'D':>10}{'truth':>9}{'pred':>9}   {lvl + ' ' + self.interval_kind + ' interval':<30}{'error':>8}"]
        for r in self.rows.itertuples():
            iv = "" if r.lower is None or not np.isfinite(r.lower) else f"{r.lower:.4f} .. {r.upper:.4f}"
            mark = "" if r.in_interval is None or (isinstance(r.in_interval, float) and np.isnan(r.in_interval)) else (
                " in" if r.in_interval else " OUT")
            lines.append(f"{str(r.run_id)[:27]:<28}{format_count(r.N):>10}{format_count(r.D):>10}{r.loss:>9.4f}{r.predicted:>9.4f}   "
                         f"{iv + mark:<30}{100 * r.rel_error:>+7.2f}%")
        lines.append(f"mean |relative error| {100 * self.mean_abs_rel_error:.2f}%, largest {100 * self.max_abs_rel_error:.2f}%"
                     + ("" if self.n_inside is None else f"; {self.n_inside}/{len(self.rows)} truths inside the {lvl} interval"))
        lines.append("losses in nats/token; N in parameters; D in tokens")
        sel = self.fit.get("selection")
        if self.approach == "auto" and sel:
            lines.append(f"auto: {sel['method']} ({sel.get('axis', '')}): "
                         + ", ".join(f"{r['candidate']} RMS log error "
                                     + (f"{r['rms_log_error']:.4f}" if r.get('rms_log_error') is not None else "-")
                                     for r in sel["table"]))
            lines.append(f"  why: {sel.get('reason', '')}")
            if self.fit.get("n_convention") == "nonembedding":
                lines.append(f"  forecast with non-embedding N (column {self.fit.get('columns', {}).get('n')!r}); "
                             "the N column above is the table's own")
            for skip in sel.get("skipped", []):
                lines.append(f"  not tried: {skip['candidate']}: {skip['reason']}")
            if self.fit.get("interval_scale") is not None:
                lines.append(f"  interval: exp(+-z s sigma) around the forecast, s = {self.fit['interval_scale']:.3f} measured "
                             f"on {len(self.fit.get('interval_scores', []))} held-out runs (analysis.forecast)")
        return "\n".join(lines)


def backtest(
    data: Any,
    holdout: Any,
    *,
    approach: Any = "auto",
    columns: Mapping[str, str | None] | None = None,
    targets: Any = None,
    target_columns: Mapping[str, str | None] | None = None,
    n_convention: str | None = None,
    interval: str = "prediction",
    level: float = 0.95,
    bootstrap: int = 200,
    weights: Any = None,
    random_state: int | None = 0,
    fit_kwargs: Mapping[str, Any] | None = None,
    best_of: Any = None,
    progress: bool = False,
    vocab_size: int | None = None,
    keep_all: bool = False,
    allow_mixed: bool = False,
) -> BacktestResult:
    """Fit on the rows not matching `holdout`, predict the rest (and `targets`), score the predictions.
    `vocab_size` and `keep_all` reach the forecaster (approach auto); `allow_mixed` as for `analysis.io.load_points`."""
    if interval not in ("prediction", "confidence", "none"):
        raise InputError(f"interval: {interval!r} is not prediction, confidence or none")
    if not 0 < level < 1:
        raise InputError(f"level: {level} is not in (0, 1)")
    frame, pts = load_frame(data, columns, n_convention=n_convention, best_of=best_of, allow_mixed=allow_mixed)
    if str(approach).lower() != "auto":
        warn_repeated_data(pts, f"approach {approach}")
    held = holdout_mask(frame, holdout) if holdout is not None else np.zeros(len(frame), dtype=bool)
    train = ~held
    if train.sum() < 6:
        raise InputError(f"holdout {holdout!r} leaves {int(train.sum())} runs to fit; at least 6 are needed")
    test = frame[held].assign(target=False)
    if targets is not None:
        tframe, _ = load_frame(targets, target_columns if target_columns is not None else columns, n_convention=n_convention)
        test = pd.concat([test, tframe.assign(target=True)], ignore_index=True)
    if test.empty:
        raise InputError(f"holdout {holdout!r} matches no rows and no targets were given: nothing to predict")

    w_all = sample_weights(frame, weights)
    w = None if w_all is None else w_all[train]
    fitted = fit_approach(pts.subset(train), approach, bootstrap=0 if interval == "none" else bootstrap,
                          random_state=random_state, sample_weight=w, fit_kwargs=fit_kwargs, progress=progress,
                          exclude=_targets_lacking(test, pts), axis=question_axis(frame[train], test),
                          vocab_size=vocab_size, keep_all=keep_all)
    N, D, truth = test["N"].to_numpy(), test["D"].to_numpy(), test["loss"].to_numpy()
    N_fit = N if fitted.n_convention == pts.n_convention else test[f"N_{fitted.n_convention}"].to_numpy()
    # unique tokens of each predicted run; a target without the count is taken as single-epoch (U = D)
    U = None if "U" not in test.columns else np.where(np.isfinite(test["U"].to_numpy(dtype=float)),
                                                      test["U"].to_numpy(dtype=float), D)
    pred = fitted.predict(N_fit, D, U)
    lower = upper = np.full(len(test), np.nan)
    boot = fitted.bootstrap_predictions(N, D) if interval != "none" and fitted.approach != "auto" else None
    if fitted.approach == "auto" and interval == "prediction":
        _, lower, upper = fitted.estimator.predict(N_fit, D, U, interval=level)
    elif fitted.approach == "auto" and interval == "confidence":
        boot = fitted.estimator.bootstrap_log_predictions(N_fit, D)
        boot = None if boot is None else np.exp(boot)
    if boot is not None:
        log_draws = np.log(boot)  # (B, n)
        if interval == "prediction":
            tr = frame[train]
            resid = np.log(tr["loss"].to_numpy()) - np.log(fitted.predict(tr["N"].to_numpy(), tr["D"].to_numpy()))
            log_draws = (log_draws[:, None, :] + resid[None, :, None]).reshape(-1, len(test))
        lo, hi = percentile_interval(log_draws, level)
        lower, upper = np.exp(lo), np.exp(hi)
    rel = (pred - truth) / truth
    rows = pd.DataFrame({
        "run_id": test["run_id"].astype(str).to_numpy(), "N": N, "D": D, "C": test["C"].to_numpy(), "loss": truth,
        "predicted": pred, "lower": lower, "upper": upper, "rel_error": rel, "abs_rel_error": np.abs(rel),
        "in_interval": pd.array([None if not np.isfinite(lo) else bool(lo <= t <= hi)
                                 for lo, hi, t in zip(lower, upper, truth)], dtype="boolean"),
        "target": test["target"].to_numpy(dtype=bool),
    })
    rows["in_interval"] = rows["in_interval"].astype(object).where(rows["in_interval"].notna(), None)
    return BacktestResult(
        approach=str(approach), holdout=None if holdout is None else str(holdout),
        n_train=int(train.sum()), n_holdout=len(test), rows=rows, interval_kind=interval, interval_level=level,
        weights="none" if weights is None else (weights if isinstance(weights, str) else "custom"),
        fit=fitted.fit_dict, train_mask=train,
    )


# --------------------------------------------------------------------------------------------------
# leave one budget out


def budget_groups(frame: pd.DataFrame, rtol: float = 0.05, max_groups: int = 12) -> np.ndarray:
    """An integer group per row: the IsoFLOP budgets of `analysis.frontier.group_budgets` (a budget
    column, or the rows within a factor 1 + `rtol` of a budget's smallest C); if that gives more than
    `max_groups` groups without a budget column (a continuum of budgets), bins of equal width in log C."""
    budget = frame["budget"].to_numpy() if "budget" in frame.columns else None
    idx, _ = group_budgets(None if budget is not None else frame["C"].to_numpy(), budget, rtol)
    g = np.zeros(len(frame), dtype=int)
    for gid, rows in enumerate(idx):
        g[rows] = gid
    if budget is None and len(idx) > max_groups:
        logc = np.log(frame["C"].to_numpy())
        edges = np.linspace(logc.min(), logc.max() + 1e-9, max_groups + 1)
        g = np.clip(np.searchsorted(edges, logc, side="right") - 1, 0, max_groups - 1)
        _, g = np.unique(g, return_inverse=True)
    return g


def leave_one_budget_out(
    data: Any,
    *,
    target_C: float | None = None,
    approach: Any = 3,
    columns: Mapping[str, str | None] | None = None,
    n_convention: str | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    min_groups: int = 3,
    best_of: Any = None,
    progress: bool = False,
    allow_mixed: bool = False,
) -> pd.DataFrame:
    """One row per fold (a budget left out) plus one for all data ("all"): the compute-optimal
    N_opt, D_opt, loss_opt forecast at `target_C` (default 100x the largest budget) by an approach-3 fit.

    Columns: left_out_C (FLOPs, nan for "all"), n_left_out, N_opt (params), D_opt (tokens), loss_opt
    (nats/token), target_C, N_opt_rel (relative to the all-data forecast). A `budget` column (or the
    column `columns["budget"]` names) says which budget each row belongs to; else budgets are grouped
    by C. `progress` shows a bar over the folds.
    """
    frame, pts = load_frame(data, columns, n_convention=n_convention, best_of=best_of, allow_mixed=allow_mixed)
    if pts.budget is not None:
        frame = frame.assign(budget=pts.budget)
    groups = budget_groups(frame)
    ids = np.unique(groups)
    if len(ids) < min_groups:
        raise InputError(f"leave-one-budget-out needs at least {min_groups} budgets; the data have {len(ids)}")
    target = float(target_C) if target_C is not None else 100.0 * float(frame["C"].max())
    out = []
    bar = progress_bar(len(ids) + 1, "leave-one-budget-out", progress, unit="fit")
    for gid in [None, *ids]:
        keep = np.ones(len(frame), dtype=bool) if gid is None else groups != gid
        fitted = fit_approach(pts.subset(keep), approach, bootstrap=0, fit_kwargs=fit_kwargs)
        if bar is not None:
            bar.update(1)
        plan = Planner.from_fit(fitted.estimator).budget(target)
        out.append({
            "left_out_C": math.nan if gid is None else float(np.exp(np.log(frame["C"][groups == gid]).mean())),
            "n_left_out": 0 if gid is None else int((groups == gid).sum()),
            "N_opt": plan.N, "D_opt": plan.D, "loss_opt": plan.loss if plan.loss is not None else math.nan,
            "target_C": target,
        })
    if bar is not None:
        bar.close()
    df = pd.DataFrame(out)
    df["N_opt_rel"] = df["N_opt"] / df["N_opt"].iloc[0] - 1
    return df

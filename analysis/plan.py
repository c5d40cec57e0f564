"""Plan a training run from a fitted law: compute-optimal (N, D, loss) for a budget, and its relatives.

Five questions, one `Planner` method each (C = k N D training FLOPs, k = 6 by default):

- `budget(C)`: the (N, D) minimising L(N, D) subject to k N D = C. For Chinchilla's law the closed form
  of Hoffmann et al. 2022 eq. (4): N = G (C/k)^a, D = G^-1 (C/k)^b, G = (alpha A / (beta B))^(1/(alpha+beta)).
- `params(N)`: the token count D at which a model of N parameters is compute-optimal (the budget at
  which N_opt(C) = N). Training longer still lowers the loss, but each FLOP then buys less than a
  bigger model would.
- `tokens(D)`: the model size that is compute-optimal for D training tokens.
- `target_loss(L)`: the cheapest (N, D) that reaches loss L. On Chinchilla's law the frontier loss is
  L_opt(C) = E + K (C/k)^-gamma with gamma = alpha beta / (alpha + beta), K = A G^-alpha + B G^beta.
- `inference(D_inf, budget=C | target_loss=L)`: inference-aware sizing (Sardana et al. 2024, "Beyond
  Chinchilla-Optimal"): minimise training + inference FLOPs k N D_train + 2 N D_inf subject to
  L(N, D_train) = L, where L is the given target or the loss of the compute-optimal plan at C.

For Chinchilla's law all five are closed forms or one-dimensional bisections vectorised over the
bootstrap fits, so a 4,000-sample interval costs milliseconds. Any other law L(N, D) (Kaplan's, or a
user callable) goes through the numeric solvers, which the tests check against the closed forms.

With bootstrap fits (the fitted estimator's bootstrap draws), every planned number gets a
percentile interval: the same plan is computed for each resampled law. A plan warns when its budget
lies more than 100x beyond the largest budget in the fit's `data_range`.

The solvers live in `analysis.solvers`, the `Plan` record and its summary in `analysis.plan_result`;
this module is the `Planner` that ties them to a fit. Pure numpy/scipy: model shapes (which need
`scaling`) are attached by the CLI.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from analysis.bootstrap import finite_interval
from analysis.errors import InputError
from analysis.estimator import FitEstimator
from analysis.fitjson import read_fit
from analysis.laws import PowerLaw
from analysis.plan_result import Plan
from analysis.solvers import INFERENCE_FLOPS_PER_PARAM_TOKEN, Law, laws_from_samples, surface_for
from contracts.conventions import FLOPS_6ND, FLOPS_PER_PARAM_TOKEN

EXTRAPOLATION_WARN_FACTOR = 100.0
"""Warn when a plan's training FLOPs exceed the largest budget in the fit's data by more than this."""

FIXED_BY_THE_QUESTION = {"params": "N", "tokens": "D", "budget": "C", "target_loss": "loss"}
"""The planned quantity each question fixes, so it gets no interval."""


class Planner:
    """Plans from one fitted law (+ optional bootstrap laws, + the range of the data it was fitted on).

    >>> from analysis.laws import EPOCH_2024
    >>> p = Planner(EPOCH_2024).budget(5.76e23)
    >>> round(p.N / 1e9), round(p.tokens_per_param)
    (73, 18)
    """

    def __init__(
        self,
        law: Law | PowerLaw,
        *,
        bootstrap: Mapping[str, Any] | list[Law] | None = None,
        data_range: Mapping[str, Any] | None = None,
        interval_level: float = 0.95,
        flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN,
        n_convention: str = "total",
        flops_convention: str = FLOPS_6ND,
        d_opt_law: PowerLaw | None = None,
        method: str = "auto",
    ):
        if not 0 < interval_level < 1:
            raise InputError(f"interval_level: {interval_level} is not in (0, 1)")
        self.law = law
        self.data_range = dict(data_range or {})
        self.interval_level = interval_level
        self.k = flops_per_param_token
        self.n_convention = n_convention
        self.flops_convention = flops_convention
        self.surface = surface_for(law, bootstrap, self.k, d_opt_law=d_opt_law, method=method)
        self.forecast: Any = None            # an `analysis.forecast.Forecaster`: the planned loss's interval is its forecast's
        self.unique_tokens: float | None = None

    @classmethod
    def from_fit(cls, fit: FitEstimator | Mapping[str, Any] | str | Path, *, unique_tokens: float | None = None,
                 **kwargs) -> "Planner":
        """From a fitted estimator, or a fit JSON (path or dict) read into one by
        `analysis.fitjson.read_fit`: approach 3 (Chinchilla's law, closed forms), kaplan (its L(N, D),
        numeric), 1 or 2 (the frontier N_opt(C)); with the fit's bootstrap draws, data range and
        conventions. `kwargs` override the Planner's settings.

        A data-constrained fit (Muennighoff et al. 2023) plans on L(N, D, U) with U = `unique_tokens`
        (numerically: D > U repeats data, priced by eqs. 5-6), or on its base law when U is None."""
        est = read_fit(fit)
        if est.approach == "auto":
            return cls._from_forecast(est, unique_tokens, **kwargs)
        if unique_tokens is not None:
            _positive("unique_tokens", unique_tokens)
            if est.approach != "data_constrained":
                raise InputError(f"{est.source_ or 'fit'}: --unique-tokens needs a data-constrained fit (a table "
                                 f"with a unique-tokens column, `scaling fit --u-col`); this is approach {est.approach!r}")
        boot = getattr(est, "bootstrap_params_", None)
        common = dict(data_range=est.data_range_, interval_level=getattr(est, "interval_level_", est.interval_level),
                      n_convention=est.n_convention_, flops_convention=est.flops_convention_)
        common.update(kwargs)
        if est.approach == 3:
            return cls(est.law_, bootstrap=boot, **common)
        if est.approach == "data_constrained":
            if unique_tokens is None:
                return cls(est.law_.base, **common)
            dc_law, U = est.law_, float(unique_tokens)
            planner = cls(lambda N, D: dc_law(N, D, U), **common)
            planner.surface.method = (f"data-constrained L(N, D, U) (Muennighoff et al. 2023), U = {U:.4g} unique "
                                      f"tokens, R*_N = {dc_law.R_N:.3g}, R*_D = {dc_law.R_D:.3g}")
            return planner
        if est.approach == "kaplan":
            if est.form_ != "nd":
                raise InputError(f"{est.source_ or 'fit'}: a Kaplan L({est.form_.upper()}) fit cannot plan N and D; "
                                 "fit the joint law L(N, D) (--kaplan-form nd) or approach 3")
            return cls(est.law_, bootstrap=laws_from_samples(est.law_, boot) if boot else None, **common)
        flags = list(getattr(est, "flags_", None) or [])
        if flags:
            raise InputError(f"{est.source_ or 'fit'}: approach-{est.approach} fit is not a frontier "
                             f"({'; '.join(flags)}): no plan from it")
        n_law = est.N_opt_law_
        planner = cls(n_law, d_opt_law=est.D_opt_law_, bootstrap=boot, **common)
        planner.surface.method = f"approach-{est.approach} frontier N_opt(C) = {n_law.k:.4g} C^{n_law.p:.4f}"
        return planner

    @classmethod
    def _from_forecast(cls, fc: Any, unique_tokens: float | None, **kwargs) -> "Planner":
        """From an `analysis.forecast.Forecaster`: with one member, that law's own planner (closed forms for
        approach 3); with several, their combined law log L = sum w_c log L_c, planned numerically with one
        combined law per bootstrap draw. The planned loss's interval is always the forecaster's."""
        if len(fc.weights_) == 1:
            planner = cls.from_fit(fc.members_[fc.chosen_], unique_tokens=unique_tokens, **kwargs)
            planner.surface.method += f" ({fc.chosen_}, the forecaster's one member)"
        else:
            if unique_tokens is not None:
                _positive("unique_tokens", unique_tokens)
            common = dict(data_range=fc.data_range_, interval_level=0.95, n_convention=fc.n_convention_,
                          flops_convention=fc.flops_convention_)
            common.update(kwargs)
            U = None if unique_tokens is None else float(unique_tokens)
            planner = cls(fc.law_for(U), bootstrap=fc.bootstrap_laws(U) or None, **common)
            planner.surface.method = ("the forecaster's combined law, log L = "
                                      + " + ".join(f"{w:.2f} log L[{n}]" for n, w in fc.weights_.items()))
        planner.forecast = fc
        planner.unique_tokens = unique_tokens
        return planner

    # ---- the five plans --------------------------------------------------------------------------

    def budget(self, C: float, **hw) -> Plan:
        """Compute-optimal (N, D) for C training FLOPs."""
        _positive("budget", C)
        return self._plan("budget", C, None, {"budget": C}, **hw)

    def params(self, N: float, **hw) -> Plan:
        """The data size that makes a model of N parameters compute-optimal."""
        _positive("params", N)
        return self._plan("params", N, None, {"params": N}, **hw)

    def tokens(self, D: float, **hw) -> Plan:
        """The model size that is compute-optimal for D tokens."""
        _positive("tokens", D)
        return self._plan("tokens", D, None, {"tokens": D}, **hw)

    def target_loss(self, L: float, **hw) -> Plan:
        """The cheapest (N, D) reaching loss L (nats/token)."""
        _positive("target_loss", L)
        return self._plan("target_loss", L, None, {"target_loss": L}, **hw)

    def inference(self, inference_tokens: float, *, budget: float | None = None, target_loss: float | None = None, **hw) -> Plan:
        """Sardana et al. 2024: minimise k N D + 2 N D_inf at the loss of `target_loss`, or of the
        compute-optimal plan at `budget`. `reference` holds that compute-optimal plan for comparison."""
        _positive("inference_tokens", inference_tokens)
        if (budget is None) == (target_loss is None):
            raise InputError("inference plan: give exactly one of budget (FLOPs) or target_loss (nats/token)")
        if not self.surface.has_loss:
            raise InputError("an inference-aware plan needs a loss surface L(N, D); this fit has only the "
                             "compute-optimal frontier (approach 1/2): fit approach 3 or kaplan")
        ref = self.budget(budget) if budget is not None else self.target_loss(target_loss)
        L = ref.loss
        if L is None or not math.isfinite(L):
            raise InputError(f"target_loss: {target_loss} nats/token is unreachable under this law")
        inputs = {"inference_tokens": inference_tokens, **({"budget": budget} if budget is not None else {"target_loss": target_loss})}
        return self._plan("inference", L, inference_tokens, inputs, reference=ref, **hw)

    # ---- machinery -------------------------------------------------------------------------------

    def _plan(self, kind, value, extra, inputs, *, reference: Plan | None = None,
              flops_per_s: float | None = None, mfu: float | None = None, devices: float = 1.0) -> Plan:
        N, D, loss = (float(np.asarray(x, dtype=float)) for x in self.surface.solve(kind, value, extra, "central"))
        if kind == "target_loss" and not math.isfinite(N):
            raise InputError(f"target_loss: {value} nats/token is unreachable: it is at or below the law's "
                             f"irreducible loss {_irreducible(self.law)}")
        if not (math.isfinite(N) and math.isfinite(D)):
            raise InputError(f"{kind}: no finite plan for {value:g} under this law")
        C = self.k * N * D
        boot, warn = self._bootstrap_columns(kind, value, extra, inputs)
        intervals = {key: iv for key, col in boot.items() if (iv := finite_interval(col, self.interval_level))}
        auto = None
        if self.forecast is not None:
            auto = _auto_block(self.forecast)
            if math.isfinite(loss):
                _, lo, hi = self.forecast.predict(N, D, U=self.unique_tokens, interval=self.interval_level)
                intervals["loss"] = [float(lo[0]), float(hi[0])]
        intervals.pop(FIXED_BY_THE_QUESTION.get(kind, ""), None)

        plan_kw: dict[str, Any] = {}
        if kind == "inference":
            inf = INFERENCE_FLOPS_PER_PARAM_TOKEN * N * extra
            plan_kw.update(inference_tokens=extra, inference_flops=inf, total_flops=C + inf)
            ref_total = reference.C + INFERENCE_FLOPS_PER_PARAM_TOKEN * reference.N * extra
            plan_kw["reference"] = {"N": reference.N, "D": reference.D, "C": reference.C, "loss": reference.loss,
                                    "total_flops": ref_total, "total_flops_saved": 1.0 - (C + inf) / ref_total}
            if boot and (iv := finite_interval(boot["C"] + INFERENCE_FLOPS_PER_PARAM_TOKEN * boot["N"] * extra,
                                               self.interval_level)):
                intervals["total_flops"] = iv
            intervals.pop("loss", None)  # equal to the reference loss by construction
        if flops_per_s is not None or mfu is not None:
            plan_kw.update(_wall_clock(C, intervals, flops_per_s, mfu, devices))

        cmax = _largest_budget(self.data_range)
        factor = None if not cmax else C / cmax
        if factor is None:
            warn.append("the fit has no data_range, so the extrapolation distance is unknown")
        elif factor > EXTRAPOLATION_WARN_FACTOR:
            warn.insert(0, f"extrapolation: the plan's {C:.3g} FLOPs are {factor:,.0f}x the largest budget in the "
                           f"fit's data ({cmax:.3g} FLOPs); laws often bend beyond their data")
        if not self.surface.has_loss:
            warn.append("approach 1/2 fits give no loss surface: no predicted loss")
        nb = self.surface.n_bootstrap
        return Plan(
            kind=kind, N=N, D=D, C=C, loss=loss if math.isfinite(loss) else None, tokens_per_param=D / N,
            inputs={k: float(v) for k, v in inputs.items()}, intervals=intervals,
            interval_level=self.interval_level if nb else None, n_bootstrap=nb,
            method=self.surface.method, n_convention=self.n_convention, flops_convention=self.flops_convention,
            extrapolation_factor=factor, largest_budget_in_data=cmax, auto=auto, warnings=warn, **plan_kw,
        )

    def _bootstrap_columns(self, kind, value, extra, inputs) -> tuple[dict[str, np.ndarray], list[str]]:
        """The same plan for every bootstrap law, as columns N, D, C, loss, tokens_per_param (empty
        without a bootstrap), and the warnings it gives. An inference plan re-plans each law's own
        reference loss (the same budget or target) first."""
        nb = self.surface.n_bootstrap
        if not nb:
            return {}, []
        if kind == "inference":
            rk = "budget" if "budget" in inputs else "target_loss"
            _, _, Lb = self.surface.solve(rk, inputs[rk], None, "bootstrap")
            bN, bD, bL = self.surface.bootstrap_inference(np.asarray(Lb), extra)
        else:
            bN, bD, bL = self.surface.solve(kind, value, extra, "bootstrap")
        bN, bD, bL = (np.broadcast_to(np.asarray(x, dtype=float), (nb,)) for x in (bN, bD, bL))
        warn = []
        bad = int(np.sum(~np.isfinite(bN)))
        if bad:
            warn.append(f"{bad} of {nb} bootstrap fits have no finite plan (e.g. the target loss is below their E); "
                        "the intervals use the rest")
        return {"N": bN, "D": bD, "C": self.k * bN * bD, "loss": bL, "tokens_per_param": bD / bN}, warn


def _auto_block(fit: Any) -> dict[str, Any]:
    """What a plan from the forecaster records: its members and weights, the axis, why, each candidate's
    out-of-sample error, the interval scale s and the bend check (`analysis.forecast`)."""
    sel = fit.selection_
    return {"chosen": fit.chosen_, "weights": dict(fit.weights_), "axis": getattr(fit, "axis_", sel.get("axis")),
            "reason": sel.get("reason", ""), "method": sel.get("method", ""),
            "interval_scale": float(fit.interval_scale_), "n_cuts": int(getattr(fit, "n_cuts_", 0)),
            "bend": getattr(fit, "bend_", None),
            "table": [{"candidate": r["candidate"], "rms_log_error": r["rms_log_error"], "weight": r.get("weight", 0.0),
                       "rms_log_error_by_cut": r.get("rms_log_error_by_cut", [])} for r in sel.get("table", [])]}


def _wall_clock(C: float, intervals: dict[str, list[float]], flops_per_s: float | None, mfu: float | None,
                devices: float) -> dict[str, Any]:
    """wall_clock_s, device_hours and hardware of a plan of C FLOPs (and their intervals, from C's)."""
    if flops_per_s is None or mfu is None:
        raise InputError("wall clock: give both flops_per_s (peak FLOP/s per device) and mfu (0-1)")
    _positive("flops_per_s", flops_per_s)
    _positive("devices", devices)
    if not 0 < mfu <= 1:
        raise InputError(f"mfu: {mfu} is not a fraction in (0, 1]")
    rate = flops_per_s * mfu * devices
    if "C" in intervals:
        intervals["wall_clock_s"] = [c / rate for c in intervals["C"]]
        intervals["device_hours"] = [c / rate * devices / 3600.0 for c in intervals["C"]]
    return {"wall_clock_s": C / rate, "device_hours": C / rate * devices / 3600.0,
            "hardware": {"flops_per_s": flops_per_s, "mfu": mfu, "devices": devices}}


def _positive(name: str, x: float) -> None:
    if x is None or not math.isfinite(float(x)) or float(x) <= 0:
        raise InputError(f"{name}: {x!r} is not a positive finite number")


def _irreducible(law) -> str:
    E = getattr(law, "E", None)
    return f"E = {E:.4f} nats/token" if E is not None else "(none)"


def _largest_budget(data_range: Mapping[str, Any]) -> float | None:
    """The largest C in the fit's data; None without one (the largest N need not have seen the largest D)."""
    c = data_range.get("C") if data_range else None
    return float(c[1]) if c is not None else None

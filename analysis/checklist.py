"""The reporting checklist of a fit: what a scaling-law study must state (Li et al. 2025, "(Mis)fitting: a
survey of scaling laws", their checklist), answered from the fit JSON, and "not recorded" where the data
do not say.

    form            the law and its equation (the forecaster: its members and weights)
    n_convention    which parameter count N is, and the column it came from
    flop_count      how C was counted (6 N D, or a FLOPs column)
    loss            the loss's definition
    eval_data_hash  the hash identifying the eval data (`analysis.provenance`)
    tokenizer_hash  the tokenizer's hash
    checkpoint      which checkpoint each point is (the end of a run / a WSD cool-down branch)
    lr_schedule     the learning-rate schedule
    objective       what the fit minimises (Huber delta, on log loss)
    initialisation  the starts of the optimiser
    bootstrap       the number of bootstrap resamples behind the intervals
    rows_set_aside  rows left out, and why
    form_selection  the cuts used to choose the form

`checklist(d)` gives [{item, answer, recorded}] (compact: one sentence each); `fit_json` carries it in
every fit JSON, the report shows it as a table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from analysis.kaplan import N_STARTS, START_EXPONENTS, START_OFFSETS

NOT_RECORDED = "not recorded"

EQUATIONS = {
    "3": "L = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022 eq. 2)",
    "chinchilla": "L = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022 eq. 2)",
    "chinchilla_nonembedding": "L = E + A / N^alpha + B / D^beta, N non-embedding (Pearce & Song 2024)",
    "kaplan_nd": "L = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D (Kaplan et al. 2020 eq. 1.5)",
    "kaplan_bounded": "L = ln V / (1 + 1/K), K = Kaplan's eq. 1.5 (Alabdulmohsin et al. 2022, M4)",
    "data_constrained": "L = E + A / N'^alpha + B / D'^beta, N', D' discounted for repeats (Muennighoff et al. 2023 "
                        "eqs. 5-7)",
    "2": "IsoFLOP parabolas in log N per budget, N_opt = k_N C^a, D_opt = k_D C^b (Hoffmann et al. 2022, approach 2)",
    "1": "lower envelope of training curves, N_opt = k_N C^a, D_opt = k_D C^b (Hoffmann et al. 2022, approach 1)",
}

LOSS_OF_RUNS_TABLE = ("mean cross-entropy in nats per token on held-out validation text, column {col} "
                      "(contracts.runs_table)")


def _form(d: Mapping[str, Any]) -> tuple[str, bool]:
    approach = str(d.get("approach"))
    if approach == "auto":
        members = d.get("weights") or {}
        return ("the forecaster's combination log L = sum w_c log L_c of " + "; ".join(
            f"{n} (w = {w:.2f}): {EQUATIONS.get(n, n)}" for n, w in members.items()), True)
    if approach == "kaplan":
        form = str(d.get("form") or "nd")
        if form == "nd":
            return (EQUATIONS["kaplan_bounded" if d.get("ceiling") is not None else "kaplan_nd"], True)
        return (f"Kaplan et al. 2020 L({form.upper()})", True)
    return (EQUATIONS.get(approach, f"approach {approach}"), True)


def _member(d: Mapping[str, Any]) -> Mapping[str, Any]:
    """The fit whose objective and starts stand for the fit: the forecaster's heaviest member, else d."""
    if str(d.get("approach")) == "auto" and isinstance(d.get("fit"), Mapping):
        return d["fit"]
    return d


def _objective(d: Mapping[str, Any]) -> tuple[str, bool]:
    m = _member(d)
    kind = str(m.get("law") or m.get("approach"))
    if "delta" in m and kind in ("chinchilla", "3", "data_constrained"):
        return (f"sum of Huber(delta = {float(m['delta']):g}) of log-loss residuals (Hoffmann et al. 2022 eq. 2)"
                + (" for each member; weights from forecast errors at the cuts" if str(d.get("approach")) == "auto"
                   else ""), True)
    if str(m.get("approach")) == "kaplan" or kind.startswith("kaplan"):
        return ("sum of squared log-loss residuals (Kaplan et al. 2020)", True)
    if str(d.get("approach")) in ("1", "2"):
        return ("least squares of log N_opt and log D_opt on log C (per-budget parabolas / envelope minima)", True)
    if d.get("objective_kind"):
        return (str(d["objective_kind"]), True)
    return (NOT_RECORDED, False)


def _starts(d: Mapping[str, Any]) -> tuple[str, bool]:
    m = _member(d)
    if m.get("n_starts"):
        return (f"{int(m['n_starts'])} starts on a grid of (E, A, B, alpha, beta) (Hoffmann et al. 2022 §D.2), "
                f"{int(m.get('n_starts_at_optimum', 0))} reached the best objective", True)
    if str(d.get("approach")) in ("1", "2"):
        return ("none: closed-form least squares", True)
    if str(m.get("law") or "").startswith("kaplan"):
        return (f"{N_STARTS} starts (alpha_N, alpha_D in {{{', '.join(f'{v:g}' for v in START_EXPONENTS)}}}, log N_c "
                f"and log D_c {' or '.join(f'{v:g}' for v in START_OFFSETS)} beyond the data) for scipy least_squares "
                "(analysis.kaplan; bootstrap refits warm-started at the full-data optimum)", True)
    return (NOT_RECORDED, False)


def _set_aside(d: Mapping[str, Any]) -> tuple[str, bool]:
    parts = []
    dom = d.get("domain") or {}
    for r in dom.get("set_aside", []) if isinstance(dom, Mapping) else []:
        parts.append(f"row {r.get('row')}: {r.get('rule')}" if isinstance(r, Mapping) else str(r))
    notes = re.search(r"\(\d+ points; (.*)\)$", str(d.get("source") or ""))
    if notes:
        parts.append(notes.group(1))
    for b in d.get("budgets") or []:
        if isinstance(b, Mapping) and not b.get("used", True):
            parts.append(f"budget {b.get('C'):.3g}: {b.get('reason') or 'not used'}")
    return ("; ".join(parts) if parts else "none (rows whose status is not completed are never fitted)", True)


def _selection(d: Mapping[str, Any]) -> tuple[str, bool]:
    sel = d.get("selection")
    if str(d.get("approach")) == "auto" and isinstance(sel, Mapping):
        cuts = ", ".join(f"{c:.3g}" for c in sel.get("cuts") or [] if isinstance(c, (int, float)))
        return (f"{sel.get('method', '')}" + (f" at {cuts}" if cuts else "") + f"; {sel.get('rule', '')}", True)
    return ("none: the one form asked for was fitted (no cuts chose it)", True)


def _provenance(p: Mapping[str, Any], key: str) -> tuple[str, bool]:
    v = p.get(key)
    if v in (None, "", {}):
        return (NOT_RECORDED, False)
    if isinstance(v, Mapping):
        return (", ".join(f"{k}: {n} points" for k, n in v.items()), True)
    return (str(v), True)


def checklist(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    """[{item, answer, recorded}] for a fit JSON dict (module docstring)."""
    p = d.get("provenance") or {}
    cols = d.get("columns") or {}
    conv = str(d.get("n_convention") or "total")
    flops = str(d.get("flops_convention") or "6ND")
    loss_col = cols.get("loss", "loss")
    loss = ((LOSS_OF_RUNS_TABLE.format(col=loss_col), True) if p.get("runs_table") else
            (f"column {loss_col} as the table gives it (its definition {NOT_RECORDED})", False))
    checkpoint = _provenance(p, "checkpoints")
    if checkpoint[1]:
        checkpoint = (checkpoint[0] + " (final: the end of a run with its own schedule; cooldown: a WSD cool-down "
                      "branch)", True)
    n_boot = int(d.get("n_bootstrap") or 0)
    member = _member(d)
    if not n_boot and member is not d:
        n_boot = len(next(iter((member.get("bootstrap") or {}).values()), []))
    items = {
        "form": _form(d),
        "n_convention": (f"{conv} parameters (column {cols.get('n', '?')})", True),
        "flop_count": ("C = 6 N D" if flops == "6ND" else f"column {flops}", True),
        "loss": loss,
        "eval_data_hash": _provenance(p, "eval_data_hash"),
        "tokenizer_hash": _provenance(p, "tokenizer_hash"),
        "checkpoint": checkpoint,
        "lr_schedule": _provenance(p, "lr_schedule"),
        "objective": _objective(d),
        "initialisation": _starts(d),
        "bootstrap": (f"{n_boot} resamples of the rows" if n_boot else "none (no intervals)", True),
        "rows_set_aside": _set_aside(d),
        "form_selection": _selection(d),
    }
    return [{"item": k, "answer": a, "recorded": bool(r)} for k, (a, r) in items.items()]


__all__ = ["NOT_RECORDED", "checklist"]

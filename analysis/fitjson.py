"""The fit JSON: written by one function (`write_fit`) and read back by one (`read_fit`).

`scaling fit --out`, the demo and any caller write a fit with `write_fit(fit, path)`; `scaling plan`,
`scaling report`, `Planner.from_fit` and the demo read it with `read_fit(path)`, which returns the
fitted estimator the file came from (`ChinchillaFit`, `KaplanFit`, `IsoFLOPFit`, `EnvelopeFit`, by
"approach"), bootstrap draws included, so a plan or a report works on the estimator, never on the
JSON's keys.

The fields common to every fit (schema_version, approach, intervals, interval_level, bootstrap,
n_points, n_convention, flops_convention, data_range, source, columns) are described in
`analysis.estimator`; each fitter adds its own:

    approach 3       law "chinchilla", E, A, B, alpha, beta (L = E + A/N^alpha + B/D^beta), a, b, G
                     (the frontier N_opt = G (C/6)^a), objective, delta, n_starts, n_starts_at_optimum
    approach "kaplan"  law "kaplan_<form>", form (n, d, c, nd), its parameters (alpha_N, N_c, alpha_D,
                     D_c, alpha_C, C_c), rss; a law bounded by ln V (form nd) adds ceiling (nats/token,
                     checked above every fitted loss) and ceiling_meaning. Added within version 2 (additive:
                     a file without them is an unbounded law; an older reader would drop the bound)
    approach 2       a, b, N_opt_law {k, p}, D_opt_law {k, p} (N_opt = k C^p), budgets (one per IsoFLOP
                     budget: C, N_opt, D_opt, loss_opt, n_points, n_sizes, position, used)
    approach 1       the same power laws, envelope (rows C, N_opt, D_opt, loss, run), n_runs
    approach "auto"  the forecaster (`analysis.forecast`): chosen (the heaviest member), axis (budget, size,
                     tokens_per_param), weights {candidate: w}, members [{candidate, weight, fit (that law's own
                     fit JSON)}], selection (axis, axis_reason, method, cuts, rule, reason, table of each
                     candidate's rms_log_error, rms_log_error_by_cut, mean_log_error, mean/max_abs_rel_error_pct,
                     weight, degenerate; skipped, degenerate lists), domain (rules, set_aside rows, counts),
                     ceiling and vocab_size (ln V and V when known), interval_scale (s), interval_scores,
                     interval_prior_weight, n_cuts, N_max, residuals, bend (the bend check or null), and fit
                     (the heaviest member's fit, for older readers). A file of the first auto (chosen and fit
                     only) reads as one member of weight 1
    approach "data_constrained"  law "data_constrained", E, A, B, alpha, beta, R_N, R_D (Muennighoff et al.
                     2023 eqs. 5-7), a, b, G of the base law, n_single_epoch, max_epochs, rss, delta

What is written (`fit_json`, version 2, `contracts.outputs`): "approach" as a string ("3", "kaplan"),
intervals {name: [lo, hi]}, n_convention "total" or "nonembedding" (a table column other than
params / params_nonembedding, such as Chinchilla's "Model Size", counts every parameter: "total";
its name stays in "columns"), a "units" block, "objective" with "objective_kind" for every fitter
(approach 3: sum of Huber_delta of log residuals, Hoffmann et al. 2022 eq. 2; kaplan: sum of squared
log residuals), "n_bootstrap" the number of draws, and the draws themselves ("bootstrap": {name:
[...]}) only with `samples=True` (files do, so `scaling plan` can propagate them; `fit --json`
prints them with `--samples`), and "checklist" (`analysis.checklist`: the reporting checklist of Li et al.
2025, [{item, answer, recorded}]). The estimator's own `to_dict()` is the in-memory layout (version 1).

A file without `schema_version` is read as version 1 (what the fitters wrote before the field).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.checklist import checklist
from analysis.chinchilla import ChinchillaFit
from analysis.data_constrained import DataConstrainedFit
from analysis.errors import InputError
from analysis.estimator import FitEstimator
from analysis.forecast import Forecaster
from analysis.frontier import EnvelopeFit, IsoFLOPFit
from analysis.kaplan import KaplanFit
from contracts import jsonio
from contracts.conventions import N_CONVENTIONS, convention_of_column
from contracts.jsonio import read_json_object
from contracts.outputs import OUTPUT_SCHEMA_VERSION, UNITS

__all__ = ["SCHEMA_VERSION", "fit_json", "read_fit", "write_fit"]

SCHEMA_VERSION = OUTPUT_SCHEMA_VERSION
"""The version `write_fit` and `fit_json` write; `read_fit` reads 1 to this."""

OBJECTIVE_KIND = {3: "sum of Huber(delta) of log-loss residuals (Hoffmann et al. 2022 eq. 2)",
                  "kaplan": "sum of squared log-loss residuals",
                  "data_constrained": "sum of squared log-loss residuals (Muennighoff et al. 2023 eq. 7)"}

FIT_CLASSES: dict[Any, type[FitEstimator]] = {3: ChinchillaFit, 2: IsoFLOPFit, 1: EnvelopeFit, "kaplan": KaplanFit,
                                              "data_constrained": DataConstrainedFit, "auto": Forecaster}
"""The fitter of each "approach"."""


def write_fit(fit: FitEstimator | Mapping[str, Any], path: str | Path, *, samples: bool = True) -> Path:
    """Write the fit JSON (`fit_json`) of a fitted estimator (or of a fit JSON dict, checked by reading
    it into its estimator first) to `path`, atomically; returns the path. Files keep the bootstrap
    draws unless `samples=False`."""
    jsonio.write_atomic(path, jsonio.dumps(fit_json(fit, samples=samples)))
    return Path(path)


def fit_json(fit: FitEstimator | Mapping[str, Any], *, samples: bool = False) -> dict[str, Any]:
    """The fit JSON (version 2) of a fitted estimator or of any fit JSON dict: compact (intervals and
    the number of draws) unless `samples`, which adds the draws ("bootstrap": {name: [...]})."""
    est = read_fit(fit)
    d = est.to_dict()
    draws = d.pop("bootstrap", None) or {}
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "approach": str(est.approach)}
    out.update((k, v) for k, v in d.items() if k not in ("schema_version", "approach"))
    conv = str(d.get("n_convention") or "total")
    out["n_convention"] = conv if conv in N_CONVENTIONS else (convention_of_column(conv) or "total")
    if "rss" in out:
        out["objective"] = out.pop("rss")
    if "objective" in out:
        out["objective_kind"] = OBJECTIVE_KIND.get(est.approach, "least squares")
    out["n_bootstrap"] = len(next(iter(draws.values()), [])) or (int(est.bootstrap) if d.get("intervals") else 0)
    if samples and draws:
        out["bootstrap"] = draws
    out["units"] = {**UNITS, "N": f"parameters ({out['n_convention']})", "C": f"FLOPs ({est.flops_convention_})"}
    out["checklist"] = checklist(out)
    return out


def read_fit(source: FitEstimator | Mapping[str, Any] | str | Path, *, approach: int | str | None = None,
             purpose: str = "this") -> FitEstimator:
    """The fitted estimator of a fit JSON file, of its dict, or `source` itself when it is one.

    With `approach` (3, "kaplan", ...), any other kind of fit is refused: "<file>: <purpose> needs an
    approach-3 fit (got approach 2)". Every problem is one `InputError` line naming the file (or the
    dict's source) and the field: no such file, not a fit JSON, a newer schema_version, an unknown
    approach, a missing field ("approach-3 fit has no field 'A'") or a bad value.
    """
    if isinstance(source, FitEstimator):
        if approach is not None and not isinstance(source, FIT_CLASSES[approach]):
            raise InputError(f"{type(source).__name__}: {purpose} needs an approach-{approach} fit "
                             f"(got approach {source.approach!r})")
        return source
    if isinstance(source, Mapping):
        where, d = str(source.get("source") or "fit JSON"), dict(source)
    else:
        where, d = str(source), read_json_object(source, "fit", error=InputError)
    kind = d.get("approach", 3 if d.get("law") == "chinchilla" else None)
    cls = FIT_CLASSES.get(_approach_key(kind))
    if approach is not None and cls is not FIT_CLASSES[approach]:
        raise InputError(f"{where}: {purpose} needs an approach-{approach} fit (got approach {kind!r})")
    if cls is None:
        raise InputError(f"{where}: field 'approach': {kind!r} is not 1, 2, 3, 'kaplan', 'data_constrained' or 'auto'")
    version = d.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise InputError(f"{where}: field 'schema_version': {version!r} is not a fit JSON version this "
                         f"reader knows (1 to {SCHEMA_VERSION})")
    if version >= 2 and cls is KaplanFit and "rss" not in d and "objective" in d:
        d["rss"] = d["objective"]
    _check_parameters(d, cls.approach, where)
    try:
        est = cls.from_dict(d)
        if not d.get("bootstrap") and isinstance(d.get("n_bootstrap"), int):
            est.bootstrap = d["n_bootstrap"]   # a compact file: intervals kept, draws left out
        return est
    except InputError:
        raise
    except KeyError as exc:
        raise InputError(f"{where}: approach-{cls.approach} fit has no field {exc.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InputError(f"{where}: bad value in fit: {exc}") from None


#: Parameters a fit JSON must carry as finite numbers, by approach: (field, lower bound, bound included).
#: E >= 0 (a loss floor; a negative E plans negative losses), A, B, alpha, beta > 0 (Hoffmann et al.
#: 2022, eq. 2: L = E + A/N^alpha + B/D^beta, each term a positive power law); the frontier exponents
#: a, b > 0 (N_opt ~ C^a, D_opt ~ C^b, eq. 4); Kaplan's critical scales and exponents > 0 (Kaplan et
#: al. 2020, eqs. 1.1-1.5).
_PARAMETERS: dict[Any, tuple[tuple[str, float, bool], ...]] = {
    3: (("E", 0.0, True), ("A", 0.0, False), ("B", 0.0, False), ("alpha", 0.0, False), ("beta", 0.0, False)),
    2: (("a", 0.0, False), ("b", 0.0, False)),
    1: (("a", 0.0, False), ("b", 0.0, False)),
    "kaplan": tuple((k, 0.0, False) for k in ("alpha_N", "N_c", "alpha_D", "D_c", "alpha_C", "C_c")),
}


def _check_parameters(d: Mapping[str, Any], approach: Any, where: str) -> None:
    """Refuse, before anything is planned from it, a fit whose parameters are not finite or out of
    range (`_PARAMETERS`); a missing one is left to the fitter's reader ("has no field ...").

    An approach-1/2 fit that recorded its own `flags` (a or b outside (0, 1): not a frontier) is read
    with its exponents as they are, finite; `analysis.plan.Planner` refuses to plan from it."""
    flagged = approach in (1, 2) and bool(d.get("flags"))
    for key, low, inclusive in _PARAMETERS.get(approach, ()):
        if key not in d or (approach == "kaplan" and d[key] is None):
            continue
        value = d[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and (
            flagged or (value >= low if inclusive else value > low))
        if not ok:
            bound = f">= {low:g}" if inclusive else f"> {low:g}"
            raise InputError(f"{where}: field {key!r}: {value!r} is not a finite number {bound}")
    for name in ("N_opt_law", "D_opt_law"):
        law = d.get(name)
        if isinstance(law, Mapping):
            for key in ("k", "p"):
                value = law.get(key)
                if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                        and (value > 0 or (flagged and key == "p"))):
                    raise InputError(f"{where}: field '{name}.{key}': {value!r} is not a finite number > 0")


def _approach_key(kind: Any) -> Any:
    """3, 3.0 and "3" alike, "kaplan" in any case (an approach as written by hand or an older fitter);
    None for anything else."""
    if isinstance(kind, str):
        key = kind.strip().lower()
        return int(key) if key.isdigit() else key
    return kind if isinstance(kind, (int, float)) and not isinstance(kind, bool) else None

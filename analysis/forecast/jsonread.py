"""Reading a forecaster's fields back from its fit JSON ("approach": "auto"), validated where read.

Files written before the combination (one chosen law under "fit") read as one member of weight 1,
with s = 1 where they carry no interval scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from analysis.chinchilla import ChinchillaFit
from analysis.data_constrained import DataConstrainedFit
from analysis.forecast.candidates import CANDIDATES
from analysis.kaplan import KaplanFit

MEMBER_CLASSES = {3: ChinchillaFit, "3": ChinchillaFit, "kaplan": KaplanFit, "data_constrained": DataConstrainedFit}


def _member(candidate: str, d: Any):
    if candidate not in CANDIDATES:
        raise ValueError(f"field 'members': {candidate!r} is not a candidate law ({', '.join(CANDIDATES)})")
    if not isinstance(d, Mapping) or d.get("approach") not in MEMBER_CLASSES:
        raise ValueError(f"field 'members': the fit of {candidate!r} has approach "
                         f"{(d or {}).get('approach') if isinstance(d, Mapping) else d!r}, not a candidate's")
    return MEMBER_CLASSES[d["approach"]].from_dict(d)


def read_forecaster_fields(est, d: Mapping[str, Any]) -> None:
    """Set the fitted attributes of a `Forecaster` from its JSON dict (ValueError/KeyError name the field)."""
    est.chosen_ = str(d["chosen"])
    est.selection_ = dict(d["selection"])
    members = d.get("members")
    if members is None:   # one chosen law, as the first auto wrote it
        members = [{"candidate": est.chosen_, "weight": 1.0, "fit": d["fit"]}]
    if not isinstance(members, list) or not members:
        raise ValueError("field 'members': not a non-empty list")
    est.members_, est.weights_, est.spread_weights_ = {}, {}, {}
    for m in members:
        if not isinstance(m, Mapping):
            raise ValueError(f"field 'members': {m!r} is not an object")
        name = str(m["candidate"])
        w, v = m.get("weight"), m.get("spread_weight", m.get("weight"))
        for key, x in (("weight", w), ("spread_weight", v)):
            if not (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and 0 <= x <= 1):
                raise ValueError(f"field 'members': {key} {x!r} of {name!r} is not in [0, 1]")
        est.members_[name] = _member(name, m["fit"])
        if w > 0:
            est.weights_[name] = float(w)
        if v > 0:
            est.spread_weights_[name] = float(v)
    for key, ws in (("weight", est.weights_), ("spread_weight", est.spread_weights_)):
        if abs(sum(ws.values()) - 1.0) > 1e-6:
            raise ValueError(f"field 'members': the {key}s sum to {sum(ws.values()):.6g}, not 1")
    if est.chosen_ not in est.members_:
        raise ValueError(f"field 'chosen': {est.chosen_!r} is not one of the members")
    est.axis_ = str(d.get("axis") or est.selection_.get("axis") or "size")
    est.domain_ = dict(d.get("domain") or {})
    est.ceiling_ = d.get("ceiling")
    est.vocab_size_ = d.get("vocab_size")
    est.interval_scale_ = float(d.get("interval_scale", 1.0))
    if not (math.isfinite(est.interval_scale_) and est.interval_scale_ > 0):
        raise ValueError(f"field 'interval_scale': {est.interval_scale_!r} is not a finite number > 0")
    est.interval_scores_ = np.asarray(d.get("interval_scores", []), dtype=float)
    est.n_cuts_ = int(d.get("n_cuts", len(est.selection_.get("table", [{}])[0].get("rms_log_error_by_cut", []))
                            if est.selection_.get("table") else 0))
    est.N_max_ = float(d["N_max"])
    est.residuals_ = np.asarray(d.get("residuals", []), dtype=float)
    est.bend_ = d.get("bend")
    est.noise_ = float(est.selection_.get("noise_rms_log", 0.0) or 0.0)

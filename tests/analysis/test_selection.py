"""The demo's extrapolation term: the in-sweep backtest error, grown with the distance in log C."""

from __future__ import annotations

import math

import pytest

from analysis.selection import extrapolation_error


def _selection(law: str, rms: float, step_ln: float) -> dict:
    return {"law": law, "step_ln": step_ln,
            "errors": {"chinchilla": {"rms_log_error": 0.5}, "kaplan": {"rms_log_error": rms}}}


def test_it_scales_the_chosen_laws_error_with_the_extrapolation_distance():
    sel = _selection("kaplan", rms=0.02, step_ln=math.log(10 / 3))
    assert extrapolation_error(sel, 10) == pytest.approx(0.02 * math.log(10) / math.log(10 / 3))
    assert extrapolation_error(sel, 100) == pytest.approx(2 * extrapolation_error(sel, 10))
    sel["law"] = "3"  # approach 3 chosen: its own error counts
    assert extrapolation_error(sel, 10) == pytest.approx(0.5 * math.log(10) / math.log(10 / 3))


def test_no_extrapolation_or_no_backtest_adds_nothing():
    assert extrapolation_error(_selection("kaplan", 0.02, 1.2), 1.0) == 0.0
    assert extrapolation_error({"law": "3", "errors": {}, "reason": "fewer than 3 budgets"}, 10) == 0.0

"""The forecaster: candidate laws, the law's domain, cuts along the question's axis, the weights of the
combination and its calibrated interval. Every command that forecasts goes through `Forecaster`.

    candidates.py  the forms, their equations, fitting and degeneracy
    domain.py      rows no law describes, set aside by written rules
    cuts.py        groups and cuts along budget, size or tokens per parameter
    combine.py     the combined law log L = sum w_c log L_c
    bend.py        the frontier's steepening against the law's
    forecaster.py  `Forecaster`: fit, weights, forecast and interval, JSON
    jsonread.py    its fit JSON read back
    describe.py    the choice in words
"""

from analysis.forecast.forecaster import DEFAULT_BOOTSTRAP, Forecaster
from analysis.forecast.describe import describe_forecast

__all__ = ["DEFAULT_BOOTSTRAP", "Forecaster", "describe_forecast"]

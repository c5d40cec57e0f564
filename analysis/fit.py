"""Scaling-law fitters in scikit-learn style: Chinchilla approaches 1, 2, 3 and Kaplan's laws.

    ChinchillaFit   approach 3: L(N, D) = E + A/N^alpha + B/D^beta by sum-Huber on log loss  (analysis.chinchilla)
    IsoFLOPFit      approach 2: a parabola per IsoFLOP budget, then N_opt = k C^a, D_opt = k' C^b  (analysis.frontier)
    EnvelopeFit     approach 1: the lower envelope of training curves in FLOPs, then the same power laws
    KaplanFit       Kaplan et al. 2020: L(N), L(D), L(C) and L(N, D) (eq. 1.5) by least squares on log loss
                    (analysis.kaplan)
    DataConstrainedFit  Muennighoff et al. 2023: L(N, D, U) with repeated data (analysis.data_constrained)

Every fitter takes arrays (N, D, loss; D = C/(6N) when only C is given), a DataFrame with a column
map, or `analysis.io.Points`; `fit(...)` returns self; fitted values end in `_`; `to_dict()` is the
fit JSON (`analysis.fitjson`), `write_fit(fit, path)` writes it and `load_fit(path_or_dict)`
(`analysis.fitjson.read_fit`) turns it back into a fitted estimator.

    >>> fit = ChinchillaFit(bootstrap=1000, random_state=0).fit(df, columns={"n": "Model Size",
    ...                                                                       "c": "Training FLOP", "loss": "loss"})
    >>> fit.alpha_, fit.intervals_["a"], fit.predict(70e9, 1.4e12, interval=0.95)
"""

from __future__ import annotations

from analysis.chinchilla import ChinchillaFit
from analysis.data_constrained import DataConstrainedFit
from analysis.estimator import NotFittedError
from analysis.fitjson import read_fit, write_fit
from analysis.frontier import EnvelopeFit, IsoFLOPFit
from analysis.kaplan import KaplanFit

__all__ = ["ChinchillaFit", "DataConstrainedFit", "IsoFLOPFit", "EnvelopeFit", "KaplanFit", "NotFittedError", "load_fit", "read_fit",
           "write_fit"]

load_fit = read_fit
"""A fitted estimator from a fit JSON file (what `scaling fit --out` writes) or its dict."""

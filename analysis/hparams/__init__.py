"""Hyper-parameter laws: the optimal peak LR and batch of each (N, D) cell of a sweep, and their laws
in N, D or C (DeepSeek LLM 2024 §3.1; Li et al. 2025), with bootstrap intervals.

    cells   the optimum of one cell (quadratic in ln s, or DeepSeek's near-optimal band when flat)
    law     ln s* = a + b ln N + c ln D or a + b ln C, the form chosen on the forecaster's cuts
    study   reading a sweep, the result and its JSON (`scaling hparams`)
    text    the printout
"""

from analysis.hparams.cells import CellOptimum, cell_optimum
from analysis.hparams.law import HparamLaw
from analysis.hparams.study import HparamsResult, fit_hparams, plan_settings, read_hparams

__all__ = ["CellOptimum", "HparamLaw", "HparamsResult", "cell_optimum", "fit_hparams", "plan_settings", "read_hparams"]

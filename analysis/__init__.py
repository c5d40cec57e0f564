"""Laws, fitters, bootstrap, planning, backtests, plots and report.

Works on tables (numpy, scipy, pandas, plotly only): imports nothing of `scaling` or `sweeps`, so the
same code serves our sweeps and published CSVs.
"""

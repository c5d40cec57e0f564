"""Laws, fitters, bootstrap, the fit JSON, law selection, planning, backtests, plots and report.

Works on tables (numpy, scipy, pandas, plotly only): imports nothing of `scaling` or `sweeps`, only
`contracts`, so the same code serves our sweeps and published CSVs.
"""

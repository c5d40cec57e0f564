"""The face of the product: the `scaling` command line (`orchestrator.cli`) and the demo
(`orchestrator.demo`).

The top layer: it may import `sweeps`, `scaling`, `analysis` and `contracts`; nothing below imports
it. All behaviour lives in those packages and is callable from Python; this layer parses, calls and
prints.
"""

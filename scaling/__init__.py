"""One pretraining run: config, model, counting (params, FLOPs), data, schedules, train loop, CLI.

The public entry points are re-exported lazily so `import scaling` stays cheap (no torch import).
"""

__version__ = "0.1.0"

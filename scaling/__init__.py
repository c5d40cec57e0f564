"""One pretraining run: config, model, counting (params, FLOPs), data, schedules, train loop.

Nothing is re-exported here, so `import scaling` stays cheap (no torch import): import what you use
from its module. The entry point of a run is `scaling.train.train(cfg, out_dir) -> RunResult`; the
pieces are `scaling.config` (RunConfig), `scaling.data` (prepare_data, TokenData, TokenStream),
`scaling.model` (GPT), `scaling.counting` (N and FLOPs) and `scaling.plan` (make_plan). The command
line (`scaling train`, ...) lives in `orchestrator.cli`; this package imports no other project package
except `contracts`.
"""

__version__ = "0.1.0"

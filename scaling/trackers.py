"""Experiment trackers for one run (`scaling train --log tensorboard|wandb|mlflow`).

`open_trackers(kinds, out_dir, run_id, config)` returns a `Trackers` that is a `scaling.trainer.Reporter`:
after every evaluation it logs the same scalars to each tracker, at the run's optimiser step:

    train/loss, val/loss (nats/token), val/bpb (bits per byte), lr, tokens, flops, tokens_per_s, mfu

and, once at the start, the run's config flattened (`model.d_model`, `train.lr`, ...) with its N
(parameters), D (planned tokens) and C (6ND FLOPs) -- the names Ray Tune's logger callbacks use for a
sweep's trials (`sweeps.launch`). A WSD cool-down branch's rows go under `<branch>/` (e.g.
`cooldown@0.5/val/loss`): a branch re-runs steps the trunk then trains again.

Where each writes (nothing leaves the machine unless the tracker is configured to):

- tensorboard: event files in `<out>/tensorboard/` (tensorboardX, which Ray Tune already needs);
- wandb: `wandb.init(project=$WANDB_PROJECT or "scaling", dir=<out>)`; `WANDB_MODE=offline` keeps it local;
- mlflow: the tracking URI `$MLFLOW_TRACKING_URI`, else the local file store `<out>/mlruns`; experiment
  `$MLFLOW_EXPERIMENT_NAME` or "scaling".
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable

from scaling.errors import ConfigError

TRACKERS = ("tensorboard", "wandb", "mlflow")
#: metric key -> logged name
SCALARS = {"train_loss": "train/loss", "val_loss": "val/loss", "val_bpb": "val/bpb", "lr": "lr", "tokens": "tokens",
           "flops": "flops", "tokens_per_s": "tokens_per_s", "mfu": "mfu"}
_EXTRA = {"wandb": "wandb", "mlflow": "mlflow"}


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{"model": {"d_model": 64}} -> {"model.d_model": 64}; tuples and None become strings."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def scalars(metrics: dict) -> dict[str, float]:
    """The logged scalars of one evaluation's metrics (finite numbers only), prefixed by a branch's name."""
    prefix = "" if metrics.get("branch") in (None, "trunk") else f"{metrics['branch']}/"
    out = {}
    for key, name in SCALARS.items():
        v = metrics.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out[prefix + name] = float(v)
    return out


class _TensorBoard:
    def __init__(self, out_dir: Path, run_id: str, config: dict) -> None:
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(logdir=str(out_dir / "tensorboard"))
        self.writer.add_text("config", "\n".join(f"    {k} = {v}" for k, v in sorted(config.items())), 0)
        self._config = config

    def log(self, values: dict[str, float], step: int) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def close(self, final: dict[str, float]) -> None:
        hp = {k: v for k, v in self._config.items() if isinstance(v, (int, float, str, bool))}
        self.writer.add_hparams(hp, {f"hparam/{k}": v for k, v in final.items()}, name=".")
        self.writer.close()


class _Wandb:
    def __init__(self, out_dir: Path, run_id: str, config: dict) -> None:
        import wandb

        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "scaling"), name=run_id, config=config,
                              dir=str(out_dir), reinit="create_new")
        self.run.define_metric("*", step_metric="trainer/step")

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log({**values, "trainer/step": step})

    def close(self, final: dict[str, float]) -> None:
        self.run.summary.update(final)
        self.run.finish()


class _MLflow:
    def __init__(self, out_dir: Path, run_id: str, config: dict) -> None:
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # the local file store (MLflow 3 keeps it behind an opt-in; a database needs sqlalchemy)
            uri = (out_dir / "mlruns").absolute().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "scaling")
        exp = self.client.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(name)
        self.run_id = self.client.create_run(exp_id, run_name=run_id).info.run_id
        from mlflow.entities import Param

        params = [Param(k[:250], str(v)[:6000]) for k, v in config.items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric
        import time

        ts = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k.replace("@", "_at_"), v, ts, step)
                                                    for k, v in values.items()])

    def close(self, final: dict[str, float]) -> None:
        self.client.set_terminated(self.run_id)


_CLASSES = {"tensorboard": _TensorBoard, "wandb": _Wandb, "mlflow": _MLflow}


def check_available(kinds: Iterable[str]) -> None:
    """ConfigError naming the package and the extra to install when a tracker's package is missing."""
    import importlib.util

    for kind in kinds:
        if kind not in TRACKERS:
            raise ConfigError(f"--log: {kind!r} is not one of {', '.join(TRACKERS)}")
        module = {"tensorboard": "tensorboardX", "wandb": "wandb", "mlflow": "mlflow"}[kind]
        if importlib.util.find_spec(module) is None:
            extra = f' (pip install "scaling-orchestrator[{_EXTRA[kind]}]")' if kind in _EXTRA else ""
            raise ConfigError(f"--log {kind}: the {module} package is not installed{extra}")


class Trackers:
    """The trackers of one run, called as a `Reporter` after every evaluation; `close()` when it ends."""

    def __init__(self, kinds: Iterable[str], out_dir: str | Path, run_id: str, config: dict) -> None:
        kinds = list(dict.fromkeys(kinds))
        check_available(kinds)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.final: dict[str, float] = {}
        self.trackers = [_CLASSES[k](out_dir, run_id, config) for k in kinds]

    def __call__(self, metrics: dict, checkpoint_dir: Any = None) -> None:
        values = scalars(metrics)
        if metrics.get("branch") in (None, "trunk"):
            self.final.update(values)
        for t in self.trackers:
            t.log(values, int(metrics["step"]))

    def close(self) -> None:
        for t in self.trackers:
            t.close(self.final)


def run_config(cfg: Any, counts: dict) -> dict[str, Any]:
    """A run's config for trackers: the RunConfig flattened, with N, D and C (6ND) of the run."""
    d = flatten(cfg.model_dump(mode="json"))
    N, D = counts["params"], cfg.train.tokens
    return {**d, "N": N, "N_nonembedding": counts["params_nonembedding"], "D": D, "C": 6.0 * N * D}


def open_trackers(kinds: Iterable[str], out_dir: str | Path, cfg: Any) -> Trackers | None:
    """`Trackers` for `kinds` (None when empty), configured with `run_config(cfg, ...)`."""
    kinds = list(kinds)
    if not kinds:
        return None
    from scaling.counting import param_counts

    run_id = cfg.run_id or Path(out_dir).name
    return Trackers(kinds, out_dir, run_id, run_config(cfg, param_counts(cfg.model)))

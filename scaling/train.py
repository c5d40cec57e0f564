"""One real GPT pretraining run: `train(cfg, out_dir)` -> trial row, loss curve, fit-ready points.

The loop, in the order it happens:

1. **Plan** (`scaling.plan.make_plan`): tokens -> optimiser steps of `batch_tokens` (rounded to whole sequences per
   process), micro-batches for gradient accumulation, the LR schedule over the run's own horizon, the
   evaluation and checkpoint steps, and the WSD cool-down branches.
2. **Build**: seed, `GPT(cfg.model)`, AdamW with decoupled weight decay on the weight matrices only
   (`GPT.optimizer_groups`; fused kernel), optionally `torch.compile`, DDP or FSDP (`scaling.parallel`) when
   several processes train; the training stream (`scaling.data.TokenStream`) and the fixed validation batches.
3. **Resume** from `<out>/checkpoint` (`scaling.run_state`) when it exists: model, optimiser, stream position, RNG and the
   progress so far, so the run continues bit-identically on CPU.
4. **Train**: each step accumulates gradients over micro-batches (fp32 on CPU, bf16 autocast on CUDA),
   clips the global gradient norm, sets the scheduled LR and steps AdamW. Every `eval_interval`
   steps: validation loss, a `curves` row, `trial.json` (status `running`), a checkpoint, the
   `reporter` callback.
5. **Cool-down branches** (WSD only): when the trunk reaches the start of branch k (D_k minus its
   decay), its state is set aside, the branch decays the LR with (1 - sqrt) over decay_fraction * D_k
   tokens (the same data stream, so D_k is honest), evaluates, records a `cooldown` point at D_k,
   and the trunk's state is put back, bit for bit, to go on at the stable LR.
6. **Finish**: the trunk's own decay ends at D; its final validation loss is the `final` point.
   NaN/inf, or a training loss (EMA) above `diverge_factor` x its best, stops the run as `diverged`
   (recorded, never raised).

Files in `out_dir`: `config.json`, `trial.json`, `curves.csv`, `points.csv` (`scaling.outputs`, which
also says how `tokens_per_s` and `mfu` are measured), `checkpoint/` (`scaling.checkpoint`).

Where the parts live: `scaling.plan` (1), `scaling.trainer` (2-6, the loop of one process),
`scaling.run_state` (the state a checkpoint holds and a branch sets aside), `scaling.evaluation`
(validation loss), `scaling.outputs` (rows and files), `scaling.device`, `scaling.distributed` (several
processes: torchrun's environment, `nproc > 1`). This module is the entry point: `train` checks the data and the
out_dir and starts the processes, or joins the ones a launcher (torchrun, Slurm, Ray Train) started.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from contracts.jsonio import write_atomic
from scaling import checkpoint as ckpt
from scaling.config import RunConfig
from scaling.damage import RESTART, check_fields, read_state_json
from scaling.data import prepare_data
from scaling import distributed
from scaling.device import PEAK_FLOPS_BF16
from scaling.errors import ConfigError, DataError
from scaling.outputs import RunResult
from scaling.plan import Branch, Plan, make_plan, rounding_notes
from scaling.trainer import Reporter, run_process

__all__ = ["PEAK_FLOPS_BF16", "Branch", "Plan", "Reporter", "RunResult", "make_plan", "train"]


def train(
    cfg: RunConfig,
    out_dir: str | Path,
    *,
    data: Any = None,
    resume: bool = True,
    reporter: Reporter | None = None,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> RunResult:
    """Train `cfg` into `out_dir` (see the module docstring); returns the rows it wrote.

    `data`: a `scaling.data.TokenData` (else prepared from `cfg.data`). `resume`: continue from
    `out_dir/checkpoint` if there is one (else start over). `reporter(metrics, checkpoint_dir)` is
    called in this process after every evaluation (on every rank of a launcher's world; the folder is rank 0's). `stop_after_steps`: stop after that many optimiser
    steps of this call, with a checkpoint and status `running`. Divergence is returned, not raised.

    Processes: inside a launcher's world (`scaling.distributed.world_from_env`: torchrun, Slurm, Ray Train)
    this process trains its rank's part (rank 0 prepares `out_dir` and writes); otherwise `cfg.train.nproc > 1`
    starts that many local processes through torchrun's launcher (no `reporter` then: rank 0 is another
    process), and 1 trains here.
    """
    out_dir = Path(out_dir)
    world = distributed.world_from_env()
    if world is not None and cfg.train.nproc not in (1, world.world_size):
        raise ConfigError(f"train.nproc: {cfg.train.nproc}, but the launcher started {world.world_size} processes")
    if world is None and cfg.train.nproc > 1 and reporter is not None:
        raise ConfigError("train: a reporter (e.g. --log trackers) needs the run's rank 0 in this process: nproc 1, "
                          "or a launcher that runs train() on every rank (python -m torch.distributed.run "
                          "--nproc-per-node N -m orchestrator.cli train ..., Ray Train)")
    notes = rounding_notes(cfg, make_plan(cfg, world_size=world.world_size if world else cfg.train.nproc))
    if data is None:
        data = prepare_data(cfg.data, progress=progress)
    _check_data(cfg, data)
    if world is None or world.rank == 0:
        for note in notes:
            print(f"warning: {note}", file=sys.stderr)
    if world is None or world.rank == 0:
        _prepare_out_dir(cfg, out_dir, resume)
    if world is not None:
        return distributed.run_in_world(cfg, out_dir, data, world, reporter=reporter, progress=progress,
                                        stop_after_steps=stop_after_steps)
    if cfg.train.nproc > 1:
        return distributed.launch_local(cfg, out_dir, data, progress=progress, stop_after_steps=stop_after_steps)
    return run_process(cfg, out_dir, data, rank=0, world_size=1, reporter=reporter, progress=progress,
                       stop_after_steps=stop_after_steps)


def _prepare_out_dir(cfg: RunConfig, out_dir: Path, resume: bool) -> None:
    """Create `out_dir`, drop its checkpoint (no resume) or check it is this run's, write `config.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        ckpt.remove_checkpoint(out_dir)
    elif ckpt.find_checkpoint(out_dir) is not None:
        _check_same_run(cfg, out_dir)
    text = json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n"
    path = out_dir / "config.json"
    if not (path.is_file() and path.read_text(errors="replace") == text):  # a resumed run's is left as it was
        write_atomic(path, text)


# -------------------------------------------------------------------- checks before a run
def _check_data(cfg: RunConfig, data: Any) -> None:
    if data.vocab_size > cfg.model.vocab_size:
        raise ConfigError(
            f"model.vocab_size: {cfg.model.vocab_size} is smaller than the tokenizer's {data.vocab_size} tokens"
        )
    if data.n_train_tokens < cfg.model.context + 1:
        raise DataError(f"data: {data.root}: {data.n_train_tokens} training tokens, fewer than context + 1")


def _check_same_run(cfg: RunConfig, out_dir: Path) -> None:
    """Refuse to resume a checkpoint written by a different run (model, data, tokens, schedule...)."""
    path = out_dir / "config.json"
    if not path.exists() and not path.is_symlink():
        return
    old = read_state_json(path, RESTART, kind="run config")
    check_fields(path, old, {"model": dict, "data": dict, "train": dict}, RESTART)
    new = cfg.model_dump(mode="json")
    free = {"device", "threads", "compile", "nproc", "dtype", "checkpoint_interval", "eval_interval"}
    for section in ("model", "data", "train"):
        for key in sorted(set(old.get(section, {})) | set(new[section])):
            if section == "train" and key in free or section == "data" and key == "cache_dir":
                continue
            a, b = old.get(section, {}).get(key), new[section].get(key)
            if section == "train" and key == "parallel" and key not in old.get(section, {}):
                a = "ddp"  # written before train.parallel existed: a DDP (or one-process) run
            if a != b:
                raise ConfigError(
                    f"{out_dir}: holds a run with {section}.{key} = {a!r}, not {b!r}; "
                    f"use --no-resume (resume=False) to start over, or another --out"
                )

"""What a run reports: its rows of the runs table (`contracts.runs_table`), the files in its out_dir,
the reporter's metrics, and the timings behind `wall_s`, `tokens_per_s` and `mfu`.

    out_dir/trial.json    the `trials` row (columns of `contracts.runs_table` + extras), status `running` until done
    out_dir/curves.csv    the `curves` rows: one per evaluation (trunk and cool-down branches)
    out_dir/points.csv    the fit-ready `points` rows: one `final`, plus one `cooldown` per WSD branch

Measured: `tokens_per_s` over the training steps only (not evaluation, checkpoints, or the first step
of each call, which pays for compilation); `mfu` on CUDA = tokens_per_s x `counting.model_flops_per_token`
/ (peak bf16 FLOP/s of the GPU x processes), None on CPU.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from contracts.jsonio import write_atomic, write_json
from contracts.runs_table import CURVE_COLUMNS, POINT_COLUMNS
from scaling import counting
from scaling.config import RunConfig
from scaling.device import device_name, peak_flops
from scaling.plan import Branch, Plan
from scaling.run_state import Progress, RunState


@dataclass(frozen=True)
class RunResult:
    trial: dict  # one `trials` row (`contracts.runs_table` columns + extras)
    curves: list[dict]  # `curves` rows
    points: list[dict]  # `points` rows (one `final`, plus one `cooldown` per WSD branch)
    out_dir: Path
    stopped_by: str | None = None  # "SIGTERM" when a stop signal ended this call early (`scaling.preemption`)


class Clock:
    """Wall time of a run across its calls (resumes), and its training throughput over the timed steps."""

    def __init__(self, state: RunState, batch_tokens: int) -> None:
        self.state, self.batch_tokens = state, batch_tokens
        self.started = time.perf_counter()
        self.warm, self.first_step_seconds = False, None

    def start(self) -> None:
        """Start timing this call (a resumed run adds the wall time of its earlier calls)."""
        self.started = time.perf_counter()

    def add_step(self, seconds: float) -> None:
        """Count one training step of `seconds`; the first step of each call (compilation, allocation) is not timed."""
        p = self.state.progress
        if self.warm:
            p.train_seconds += seconds
            p.timed_tokens += self.batch_tokens
        else:
            self.first_step_seconds, self.warm = seconds, True

    def tokens_per_s(self) -> float | None:
        """Training throughput over the timed steps (evaluation, checkpoints and each call's first step excluded)."""
        p = self.state.progress
        if p.timed_tokens:
            return p.timed_tokens / p.train_seconds
        if self.first_step_seconds:  # a call that trained one step only
            return self.batch_tokens / self.first_step_seconds
        return None

    def elapsed(self) -> float:
        """Seconds of wall time of the run so far, earlier calls included."""
        return self.state.progress.wall_seconds + (time.perf_counter() - self.started)


class RunOutputs:
    """Builds one run's `curves`, `points` and `trials` rows from its state, and writes them to out_dir."""

    def __init__(self, cfg: RunConfig, plan: Plan, out_dir: Path, data: Any, *, run_id: str, counts: dict,
                 state: RunState, clock: Clock, device: torch.device, dtype: torch.dtype, world_size: int) -> None:
        self.cfg, self.plan, self.out_dir, self.data = cfg, plan, out_dir, data
        self.run_id, self.counts, self.state, self.clock = run_id, counts, state, clock
        self.device, self.dtype, self.world_size = device, dtype, world_size
        self.flops_per_token_detailed = counting.flops_per_token_detailed(cfg.model)
        self.peak_flops = peak_flops(device)
        self.unique_tokens: int | None = getattr(data, "n_train_tokens", None)
        """U: the tokens of the train split the run's stream cycles through (D / U = epochs)."""

    # ---------------------------------------------------------------- rows
    def record_evaluation(self, val_loss: float, *, final: bool = False, branch: Branch | None = None) -> dict:
        """A `curves` row for an evaluation at the current step; at a branch's end or the run's end also its
        point (and the run completes). A NaN/inf loss marks the run diverged. Returns the curves row."""
        p = self.state.progress
        p.last_val_loss = val_loss
        row = self._curve_row(val_loss, p.interval_loss_sum / max(p.interval_steps, 1),
                              branch.name if branch else "trunk")
        p.curves.append(row)
        p.interval_loss_sum, p.interval_steps = 0.0, 0
        if not math.isfinite(val_loss):
            p.status = "diverged"
            p.diverge_reason = f"validation loss is {val_loss} at step {p.step} ({row['tokens']:,} tokens)"
            return row
        if branch is not None or final:
            p.points.append(self._point("cooldown" if branch else "final", val_loss, row["train_loss"],
                                        branch.name if branch else "trunk"))
        if final:
            p.status = "completed"
        return row

    def record_divergence(self) -> dict:
        """The last curves row (added unless the step has one) and a `final` point marked diverged."""
        p = self.state.progress
        if not p.curves or p.curves[-1]["step"] != p.step:
            branch = "trunk" if p.branch is None else self.plan.branches[p.branch].name
            p.curves.append(self._curve_row(float("nan"), p.last_train_loss, branch))
        point = self._point("final", float("nan"), p.last_train_loss, "trunk")
        p.points.append(point | {"status": "diverged"})
        return p.curves[-1]

    def _curve_row(self, val_loss: float, train_loss: float | None, branch: str) -> dict:
        p = self.state.progress
        tokens = p.step * self.plan.batch_tokens
        return {
            "run_id": self.run_id, "step": p.step, "tokens": tokens, "flops": 6.0 * self.counts["params"] * tokens,
            "train_loss": train_loss, "val_loss": val_loss, "val_bpb": self.bpb(val_loss), "lr": p.last_lr, "elapsed_s": self.clock.elapsed(),
            "branch": branch, "epochs": self.state.stream.epochs,
        }

    def _point(self, kind: str, loss: float, train_loss: float | None, branch: str) -> dict:
        c, p = self.counts, self.state.progress
        tokens = p.step * self.plan.batch_tokens
        return {
            "run_id": self.run_id, "sweep": self.cfg.sweep, "kind": kind, "params": c["params"],
            "params_embedding": c["params_embedding"], "params_nonembedding": c["params_nonembedding"],
            "tokens": tokens, "flops_6nd": 6.0 * c["params"] * tokens,
            "flops_detailed": self.flops_per_token_detailed * tokens, "loss": loss, "status": "completed",
            "step": p.step, "branch": branch, "train_loss": train_loss, "epochs": self.state.stream.epochs,
            "unique_tokens": self.unique_tokens,
        }

    def bpb(self, loss: float | None) -> float | None:
        """Bits per byte of validation text: loss [nats/token] / (ln 2 x validation bytes per token), the
        tokenizer-independent measure (Gao et al. 2020, The Pile, eq. 1-2; GPT-2 and Chinchilla report it)."""
        bpt = getattr(self.data, "val_bytes_per_token", None) or getattr(self.data, "bytes_per_token", None)
        if loss is None or not bpt or not math.isfinite(loss):
            return None
        return loss / math.log(2) / bpt

    def mfu(self, tokens_per_s: float | None) -> float | None:
        """Model FLOPs utilisation: tokens/s x model FLOPs per token / (peak FLOP/s x processes)."""
        if tokens_per_s is None or self.peak_flops is None:
            return None
        return tokens_per_s * counting.model_flops_per_token(self.cfg.model) / (self.peak_flops * self.world_size)

    def metrics(self, row: dict) -> dict:
        """What the reporter receives after an evaluation (`row`: its curves row)."""
        p = self.state.progress
        tokens_per_s = self.clock.tokens_per_s()
        return {
            "step": row["step"], "tokens": row["tokens"], "flops": row["flops"], "train_loss": row["train_loss"],
            "val_loss": row["val_loss"], "val_bpb": row.get("val_bpb"), "lr": row["lr"], "elapsed_s": row["elapsed_s"],
            "tokens_per_s": tokens_per_s, "mfu": self.mfu(tokens_per_s),
            "epochs": row["epochs"], "status": p.status, "branch": row["branch"], "run_id": self.run_id,
            "params": self.counts["params"], "diverge_reason": p.diverge_reason,
        }

    def trial_row(self) -> dict:
        """The run's `trials` row as it stands."""
        cfg, p, c, plan = self.cfg, self.state.progress, self.counts, self.plan
        m, t = cfg.model, cfg.train
        tokens_per_s = self.clock.tokens_per_s()
        mfu = self.mfu(tokens_per_s)
        final = next((pt for pt in p.points if pt["kind"] == "final"), None)
        bytes_per_token = getattr(self.data, "bytes_per_token", None)
        return {
            "run_id": self.run_id, "sweep": cfg.sweep, "status": p.status,
            "n_layer": m.n_layer, "d_model": m.d_model, "n_head": m.n_head, "d_ff": m.ffw_size,
            "context": m.context, "vocab_size": m.vocab_size, **c,
            "tokens": t.tokens, "tokens_seen": p.step * plan.batch_tokens if p.branch is None else None,
            "flops_6nd": 6.0 * c["params"] * t.tokens, "flops_detailed": self.flops_per_token_detailed * t.tokens,
            "lr": plan.lr, "batch_tokens": plan.batch_tokens, "schedule": t.schedule, "seed": t.seed,
            "lr_source": t.lr_source or ("given" if t.lr is not None else "size rule (scaling.recipe.default_lr)"),
            "final_loss": final["loss"] if final else (float("nan") if p.status == "diverged" else p.last_val_loss),
            "final_train_loss": final["train_loss"] if final else p.last_train_loss,
            "epochs": self.state.stream.epochs, "wall_s": self.clock.elapsed(), "tokens_per_s": tokens_per_s,
            "mfu": mfu, "device": device_name(self.device, self.world_size), "unique_tokens": self.unique_tokens,
            # extras
            "steps": plan.steps, "step": p.step, "warmup_tokens": plan.warmup_tokens, "beta1": t.beta1,
            "beta2": t.beta2, "weight_decay": t.weight_decay, "min_lr_ratio": t.min_lr_ratio,
            "decay_fraction": t.decay_fraction if t.schedule == "wsd" else None,
            "cooldowns": ",".join(f"{b.fraction:g}" for b in plan.branches) or None,
            "micro_batch_tokens": plan.micro_batch_size * m.context, "accum_steps": plan.accum_steps,
            "nproc": self.world_size, "parallel": t.parallel if self.world_size > 1 else None, "dtype": str(self.dtype).removeprefix("torch."), "compile": t.compile,
            "positions": m.positions, "tie_embeddings": m.tie_embeddings,
            "diverge_reason": p.diverge_reason, "tokens_processed": p.tokens_processed,
            "train_s": p.train_seconds, "flops_per_token_detailed": self.flops_per_token_detailed,
            "unigram_entropy": getattr(self.data, "unigram_entropy", None),
            "bytes_per_token": bytes_per_token,
            "val_bpb": self.bpb(final["loss"]) if final else None,
            "val_bytes_per_token": getattr(self.data, "val_bytes_per_token", None),
            "data_fingerprint": getattr(self.data, "fingerprint", None),
            "tokenizer": self.cfg.data.tokenizer,
            "tokenizer_hash": getattr(self.data, "tokenizer_hash", None),
        }

    # ---------------------------------------------------------------- files
    def write(self) -> None:
        """trial.json, curves.csv and points.csv, each replaced atomically."""
        p: Progress = self.state.progress
        write_json(self.out_dir / "trial.json", self.trial_row())
        write_atomic(self.out_dir / "curves.csv", _csv(p.curves, CURVE_COLUMNS))
        write_atomic(self.out_dir / "points.csv", _csv(p.points, POINT_COLUMNS))

    def result(self) -> RunResult:
        p = self.state.progress
        return RunResult(trial=self.trial_row(), curves=list(p.curves), points=list(p.points), out_dir=self.out_dir)


def read_result(out_dir: Path, *, stopped_by: str | None = None) -> RunResult | None:
    """The rows a run folder holds (what `RunOutputs.write` wrote last) as a `RunResult`; None when it has no
    `trial.json` yet. For a run whose processes ended without handing back their result (`scaling.distributed`:
    the launcher itself was sent SIGTERM). CSV cells come back as int, float, str or None (empty)."""
    from contracts.jsonio import read_json

    trial = read_json(out_dir / "trial.json")
    if not isinstance(trial, dict):
        return None
    return RunResult(trial=trial, curves=_read_rows(out_dir / "curves.csv"), points=_read_rows(out_dir / "points.csv"),
                     out_dir=out_dir, stopped_by=stopped_by)


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _cell(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()

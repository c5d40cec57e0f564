"""The runs table: the seam between the writers (`scaling` writes a run, `sweeps` a sweep) and the
reader (`analysis`). Column names are the API: add columns freely, rename none without a
migration. Every loss is mean cross-entropy in nats per token on held-out validation
text unless its name says otherwise.

    trials   one row per run        (a run folder's trial.json; a sweep's trials.parquet)
    curves   one row per evaluation (curves.csv / curves.parquet)
    points   one row per fit-ready (N, D, loss) point: a plain run's `final` point, and one
             `cooldown` point per WSD cool-down branch (points.csv / points.parquet)
"""

from __future__ import annotations

TRIAL_COLUMNS = (
    "run_id", "sweep", "status", "n_layer", "d_model", "n_head", "d_ff", "context", "vocab_size",
    "params", "params_embedding", "params_nonembedding", "tokens", "tokens_seen", "flops_6nd",
    "flops_detailed", "lr", "batch_tokens", "schedule", "seed", "final_loss", "final_train_loss",
    "epochs", "wall_s", "tokens_per_s", "mfu", "device", "val_bpb", "tokenizer", "unique_tokens",
)
"""`trials` columns, in order; a run's trial.json has these and more (the recipe, bytes per token, ...).
`val_bpb`: `final_loss` in bits per byte; `tokenizer`: the tokenizer.json the run used (empty: its own BPE);
`unique_tokens`: see `UNIQUE_TOKENS`."""

CURVE_COLUMNS = ("run_id", "step", "tokens", "flops", "train_loss", "val_loss", "lr", "elapsed_s", "branch", "epochs",
                 "val_bpb")
"""`curves` columns: `branch` is `trunk` or the WSD cool-down branch (`cooldown@0.5`) the row belongs to;
`val_bpb` is `val_loss` in bits per byte of validation text (val_loss / (ln 2 x bytes per token)), comparable
across tokenizers."""

POINT_COLUMNS = (
    "run_id", "sweep", "kind", "params", "params_embedding", "params_nonembedding", "tokens",
    "flops_6nd", "flops_detailed", "loss", "status", "step", "branch", "train_loss", "epochs", "unique_tokens",
)
"""`points` columns: `kind` is `final` (the end of a run) or `cooldown` (a WSD branch's end at D_k);
`unique_tokens`: see `UNIQUE_TOKENS`."""

UNIQUE_TOKENS = "unique_tokens"
"""The column of U, the unique tokens a run's D training tokens were drawn from: the token count of its
corpus's train split, so D / U = `epochs` and D > U means repeated data (Muennighoff et al. 2023,
"Scaling Data-Constrained Language Models", eqs. 5-7 take U_D from it). Optional for readers: run
folders and tables written before it have no such column and load as they did."""

POINT_KINDS = ("final", "cooldown")

STATUSES = ("completed", "diverged", "failed", "running")
"""A run's status: `diverged` (NaN or exploding loss) is kept in the table and left out of fits."""

FINAL_STATUSES = ("completed", "diverged")
"""Statuses after which a run is never trained again."""

FIT_STATUS = "completed"
"""The only status whose rows the fits use."""

TABLES = ("trials", "curves", "points")


def sweep_table_file(name: str) -> str:
    """A sweep folder's table file: `points` -> `points.parquet`."""
    return f"{name}.parquet"


def run_table_file(name: str) -> str:
    """A run folder's table file: `points` -> `points.csv`; `trials` -> `trial.json` (one row)."""
    return "trial.json" if name == "trials" else f"{name}.csv"


FIT_COLUMNS = {"n": "params", "d": "tokens", "c": "flops_6nd", "loss": "loss"}
"""The `points` columns a fit reads by default, by role: N (total; `conventions.N_CONVENTION_COLUMNS`
names the non-embedding column), D, C = 6 N D, and the loss."""

CURVE_FIT_COLUMNS = {"run": "run_id", "d": "tokens", "loss": "val_loss"}
"""The `curves` columns an approach-1 fit reads by default, by role: the run, D, the validation loss."""

"""Configuration of one pretraining run, validated at the edge.

Three pydantic models, one per concern, and `RunConfig` that holds them:

- `ModelConfig`: the GPT's shape (what `scaling.model.GPT` builds and `scaling.counting` counts).
- `DataConfig`: which corpus and tokenizer (what `scaling.data.prepare_data` reads).
- `TrainConfig`: tokens, batch, optimiser, schedule, evaluation, checkpoints, device.

All are frozen and forbid unknown fields; `RunConfig.model_dump()` / `RunConfig.model_validate(d)` round-trip
through plain dicts (JSON, Ray Tune configs). `parse_config` turns pydantic's errors into one-line
`ConfigError`s that name the source, the field path and the value.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scaling.errors import ConfigError

# allow_inf_nan=False: every float field refuses inf and NaN at the edge (an infinite lr, a NaN ratio).
_FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
# Seeds go to torch.manual_seed, which takes a signed 64-bit integer.
SEED_MAX = 2**63 - 1


class ModelConfig(BaseModel):
    """Shape of a decoder-only GPT (pre-LayerNorm, causal attention, GELU MLP)."""

    model_config = _FROZEN

    n_layer: int = Field(gt=0, description="number of transformer blocks")
    d_model: int = Field(gt=0, description="residual stream width")
    n_head: int = Field(gt=0, description="attention heads; d_model must be divisible by it")
    d_ff: int | None = Field(default=None, gt=0, description="MLP hidden width; None means 4 * d_model")
    context: int = Field(default=256, gt=0, description="sequence length in tokens (n_ctx)")
    vocab_size: int = Field(default=4096, gt=0, description="must equal the tokenizer's vocabulary")
    tie_embeddings: bool = Field(default=True, description="share the token embedding with the output head")
    positions: Literal["learned", "rotary"] = "learned"
    bias: bool = Field(default=False, description="biases in Linear and LayerNorm layers")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "ModelConfig":
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if self.positions == "rotary" and (self.d_model // self.n_head) % 2:
            raise ValueError(f"rotary positions need an even head size, got {self.d_model // self.n_head}")
        return self

    @property
    def ffw_size(self) -> int:
        """The MLP hidden width actually used (4 * d_model unless `d_ff` is set)."""
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    @property
    def head_size(self) -> int:
        return self.d_model // self.n_head


class DataConfig(BaseModel):
    """Corpus and tokenizer. An empty `corpus` means the embedded default: the Python standard library;
    no `tokenizer` means a byte-level BPE trained on the corpus."""

    model_config = _FROZEN

    corpus: tuple[str, ...] = Field(
        default=(), description="files, folders, globs, .jsonl or .parquet; empty = Python stdlib source"
    )
    vocab_size: int = Field(default=4096, ge=260, le=2**32 - 1, description="byte-level BPE vocabulary size")
    val_fraction: float = Field(default=0.02, gt=0, lt=0.5, description="share of documents held out")
    text_field: str = Field(default="text", description="JSONL key / Parquet column holding the text")
    max_bytes: int | None = Field(default=None, gt=0, description="use only the first documents up to this size")
    cache_dir: str | None = Field(default=None, description="default $SCALING_CACHE or ~/.cache/scaling")
    split_seed: int = Field(default=0, description="seed of the train/validation split by document")
    doc_max_bytes: int | None = Field(
        default=None,
        ge=64,
        description="cut documents longer than this (UTF-8 bytes) at line boundaries; None = one per file/line/row",
    )
    tokenizer_max_bytes: int | None = Field(
        default=2**25,
        gt=0,
        description="train the BPE on a seeded sample of at most this many bytes of train text; None = all of it",
    )
    tokenizer: str | None = Field(
        default=None,
        description="an HF tokenizers `tokenizer.json` (e.g. GPT-2's) used as is; None = train a byte-level BPE "
                    "of vocab_size tokens on the corpus. vocab_size must hold its vocabulary",
    )


class TrainConfig(BaseModel):
    """How one run trains. Token counts are tokens, not steps; steps are derived."""

    model_config = _FROZEN

    tokens: int = Field(gt=0, description="planned training tokens D")
    batch_tokens: int = Field(default=8192, gt=0, description="tokens per optimiser step")
    micro_batch_tokens: int | None = Field(
        default=None, gt=0, description="tokens per forward/backward; gradient accumulation fills the batch"
    )
    lr: float | None = Field(default=None, gt=0, description="peak learning rate; None = size rule")
    lr_source: str | None = Field(
        default=None, description="where lr and batch_tokens came from (e.g. a `scaling hparams` law); None = "
                                  "set by hand or the size rule")
    planned_intervals: dict[Literal["lr", "batch_tokens"], tuple[float, float]] | None = Field(
        default=None, description="the planned lr / batch_tokens intervals of that law ([lo, hi] at its level)")
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1, description="final LR / peak LR")
    warmup_tokens: int | None = Field(default=None, ge=0, description="None = size rule")
    schedule: Literal["cosine", "constant", "wsd"] = "cosine"
    decay_fraction: float = Field(default=0.2, gt=0, le=1, description="WSD decay length / D")
    cooldowns: tuple[float, ...] = Field(
        default=(), description="WSD branch points as fractions of D, each in (0, 1)"
    )
    weight_decay: float = Field(default=0.1, ge=0)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.95, ge=0, lt=1)
    eps: float = Field(default=1e-8, gt=0)
    grad_clip: float | None = Field(default=1.0, gt=0)
    eval_interval: int | None = Field(default=None, gt=0, description="steps between evals; None = ~20 per run")
    eval_tokens: int = Field(default=65536, gt=0, description="validation tokens per evaluation")
    checkpoint_interval: int | None = Field(default=None, gt=0, description="steps; None = at every eval")
    seed: int = Field(default=0, ge=0, le=SEED_MAX, description="torch seed, 0 <= seed < 2^63")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N")
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    compile: bool = False
    threads: int | None = Field(default=None, gt=0, description="torch CPU threads; None = torch default")
    nproc: int = Field(default=1, gt=0, description="data-parallel processes on this node (torchrun's launcher)")
    parallel: Literal["ddp", "fsdp"] = Field(
        default="ddp", description="how several processes share the model: ddp replicates it, fsdp shards it "
                                   "(fully_shard); see scaling.parallel")
    diverge_factor: float = Field(default=3.0, gt=1, description="loss above factor x best so far = diverged")

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.micro_batch_tokens is not None and self.batch_tokens % self.micro_batch_tokens:
            raise ValueError(
                f"batch_tokens {self.batch_tokens} is not a multiple of micro_batch_tokens {self.micro_batch_tokens}"
            )
        for f in self.cooldowns:
            if not 0 < f < 1:
                raise ValueError(f"cooldowns: {f} is not a fraction in (0, 1)")
        if self.cooldowns and self.schedule != "wsd":
            raise ValueError(f"cooldowns need schedule 'wsd', got {self.schedule!r}")
        if self.warmup_tokens is not None and self.warmup_tokens >= self.tokens:
            raise ValueError(f"warmup_tokens {self.warmup_tokens} is not shorter than the run (tokens {self.tokens})")
        return self


class RunConfig(BaseModel):
    """Everything one run needs; `run_id`/`sweep` tag its rows in the runs table."""

    model_config = _FROZEN

    model: ModelConfig
    data: DataConfig = DataConfig()
    train: TrainConfig
    run_id: str | None = None
    sweep: str | None = None

    @model_validator(mode="after")
    def _vocab_matches(self) -> "RunConfig":
        if self.model.vocab_size != self.data.vocab_size:
            raise ValueError(
                f"model.vocab_size {self.model.vocab_size} differs from data.vocab_size {self.data.vocab_size}"
            )
        return self


def parse_config(cls: type[BaseModel], data: dict[str, Any], source: str = "config") -> Any:
    """Validate `data` as `cls`, turning the first pydantic error into a one-line `ConfigError`.

    >>> parse_config(ModelConfig, {"n_layer": 2, "d_model": 100, "n_head": 3})
    Traceback (most recent call last):
    ...
    scaling.errors.ConfigError: config: d_model 100 is not divisible by n_head 3
    """
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def format_validation_error(exc: ValidationError, source: str) -> str:
    """`source: field.path: value: message` for the first error of a pydantic ValidationError."""
    err = exc.errors()[0]
    path = ".".join(str(p) for p in err.get("loc", ()))
    msg = err.get("msg", "invalid").removeprefix("Value error, ")
    if err.get("type") in ("value_error", "assertion_error") and not path:
        return f"{source}: {msg}"
    value = err.get("input")
    shown = "" if isinstance(value, dict) else f"{value!r}: "
    return f"{source}: {path}: {shown}{msg}" if path else f"{source}: {shown}{msg}"

"""The sweep spec: one YAML file that says which runs a scaling-law study needs and how to run them.

    name: isoflop-cpu
    corpus: []                  # empty = the Python standard library source (always present)
    vocab_size: 512
    context: 128
    design: isoflop             # grid | isoflop | ladder
    budgets: [3e11, 1e12, 3e12] # FLOPs (C = 6 N D); isoflop only
    isoflop: {sizes_per_budget: 5, spread: 4, tokens_per_param: 20}
    batch: {rule: fixed, tokens: 2048}
    lr: {rule: fixed, value: 3e-3}
    resources: {cpus: 1, gpus: 0}
    max_concurrent_trials: 2

`load_spec(path, overrides)` reads the file, applies `--set key=value` overrides (dotted keys, YAML
values: `budgets=[1e11,3e11]`, `isoflop.spread=3`), and validates with pydantic (unknown fields are
errors). Every problem becomes one `SpecError` line naming the file, the field path and the value:

    spec.yaml: budgets[2]: -1e18 is not a positive FLOP count

Counts (params, tokens, FLOPs) accept numbers or strings with a suffix (`20k`, `1.5M`, `3e18`); PyYAML
reads `1e11` (no dot) as a string, so strings are parsed here rather than trusted to YAML.
The design itself (which N and D each trial gets) lives in `sweeps.design`.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from contracts.counts import parse_count
from scaling.config import DataConfig, ModelConfig, TrainConfig
from scaling.errors import ScalingError


class SpecError(ScalingError):
    """A sweep spec is invalid: ``spec.yaml: budgets[2]: -1e18 is not a positive FLOP count``."""


_STRICT = ConfigDict(extra="forbid", frozen=True)


def show(value: Any) -> str:
    """A value as the user wrote it: strings verbatim, floats compact (-1e18, not -1e+18)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        text = f"{value:g}"
        return text.replace("e+", "e").replace("e0", "e").replace("e-0", "e-")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return repr(value) if not isinstance(value, (int, dict)) else str(value)


def _count(what: str, *, integer: bool = False, allow_zero: bool = False):
    """A BeforeValidator turning 3e11 / '3e11' / '20M' into a positive number, or failing with one line."""

    def parse(value: Any) -> float | int:
        try:
            number: float | None = parse_count(value) if isinstance(value, (int, float, str)) else None
        except ValueError:
            number = None
        ok = number is not None and math.isfinite(number) and (number > 0 or (allow_zero and number == 0))
        if not ok:
            raise ValueError(f"{show(value)} is not a positive {what}")
        return int(round(number)) if integer else number

    return BeforeValidator(parse)


Flops = Annotated[float, _count("FLOP count")]
Params = Annotated[float, _count("parameter count")]
Tokens = Annotated[int, _count("token count", integer=True)]
Ratio = Annotated[float, _count("tokens-per-parameter ratio")]


class ShapeSpec(BaseModel):
    """An explicit model shape instead of a target size (context and vocab come from the spec)."""

    model_config = _STRICT
    n_layer: int = Field(gt=0)
    d_model: int = Field(gt=0)
    n_head: int = Field(gt=0)
    d_ff: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "ShapeSpec":
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        return self


def _size_kind(value: Any) -> str:
    return "shape" if isinstance(value, dict) else "params"


Size = Annotated[
    Union[Annotated[ShapeSpec, Tag("shape")], Annotated[Params, Tag("params")]],
    Discriminator(_size_kind),
]


class IsoflopOptions(BaseModel):
    """How `design: isoflop` places sizes around each budget's expected optimum (when `sizes: auto`).

    For budget C the expected optimum is N* = sqrt(C / (6 r)) with r = `tokens_per_param` (so that
    D* = r N* and 6 N* D* = C; Chinchilla's r is about 20). Targets are N* x spread^t for `sizes_per_budget`
    values of t evenly spaced in [-1, 1]: the largest is `spread` times N*, the smallest N*/`spread`,
    so the optimum is bracketed on both sides of the parabola in log N (Chinchilla approach 2).
    """

    model_config = _STRICT
    sizes_per_budget: int = Field(default=5, ge=3, le=25)
    spread: float = Field(default=4.0, gt=1, le=1000)
    tokens_per_param: Ratio = 20.0


class LadderOptions(BaseModel):
    """`design: ladder`: every size trained to multiples of a tokens-per-parameter base (OLMo's ladder:
    1, 2, 5, 10 x Chinchilla's 20 tokens per parameter)."""

    model_config = _STRICT
    multiples: list[Ratio] = Field(default_factory=lambda: [1.0, 2.0, 5.0, 10.0], min_length=1)
    tokens_per_param: Ratio = 20.0


class ScheduleSpec(BaseModel):
    """Learning-rate schedule of every trial (see `scaling.schedules`).

    cosine: warmup then cosine to `min_lr_ratio` over the run's own horizon (what Chinchilla needs);
    wsd: warmup, stable, (1-sqrt) decay over the last `decay_fraction` of D; `cooldowns` add branch
    points (fractions of D) where a short decay is evaluated, giving extra (N, D) points per run.
    """

    model_config = _STRICT
    kind: Literal["cosine", "wsd", "constant"] = "cosine"
    warmup_tokens: Annotated[int, _count("token count", integer=True, allow_zero=True)] | None = None
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    decay_fraction: float = Field(default=0.2, gt=0, le=1)
    cooldowns: list[float] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> "ScheduleSpec":
        for i, f in enumerate(self.cooldowns):
            if not 0 < f < 1:
                raise _FieldError(f"cooldowns[{i}]", f, "is not a fraction of D in (0, 1)")
        if self.cooldowns and self.kind != "wsd":
            raise _FieldError("kind", self.kind, "has no cool-down branches; cooldowns need kind 'wsd'")
        return self


class LRRule(BaseModel):
    """Peak learning rate of each trial as a rule of its parameter count N.

    - `default`: `scaling`'s own width rule (TrainConfig.lr = None, so `scaling.recipe.default_lr`:
      0.5 / d_model, capped at 0.0125; calibrated on the CPU corpus, see `scaling.recipe.LR_SCAN`).
    - `fixed`: `value` for every size.
    - `power`: lr(N) = value * (N / reference_params) ** exponent, e.g. exponent -0.25 lowers the rate
      for bigger models (tuned rates fall with size; Porian et al. 2024, DeepSeek LLM 2024).
    `multipliers` turns every trial into a small LR sweep (one trial per multiplier), which small models
    need because tuning one size and reusing it at another is a known bias (Lourie et al. 2025).
    """

    model_config = _STRICT
    rule: Literal["default", "fixed", "power"] = "default"
    value: float | None = Field(default=None, gt=0)
    reference_params: Params = 1e6
    exponent: float = 0.0
    multipliers: list[float] = Field(default_factory=lambda: [1.0], min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "LRRule":
        if self.rule in ("fixed", "power") and self.value is None:
            raise _FieldError("value", None, f"rule {self.rule!r} needs the peak learning rate")
        if self.rule == "default" and self.value is not None:
            raise _FieldError("value", self.value, "is ignored by rule 'default'; use rule 'fixed'")
        for i, m in enumerate(self.multipliers):
            if not (math.isfinite(m) and m > 0):
                raise _FieldError(f"multipliers[{i}]", m, "is not a positive factor")
        if len(set(self.multipliers)) != len(self.multipliers):
            raise _FieldError("multipliers", self.multipliers, "has duplicates")
        return self

    def lr_for(self, params: float) -> float | None:
        if self.rule == "default":
            return None
        if self.rule == "fixed":
            return self.value
        return self.value * (params / self.reference_params) ** self.exponent


class BatchRule(BaseModel):
    """Tokens per optimiser step.

    - `fixed`: `tokens` for every trial.
    - `power`: tokens * (D / reference_tokens) ** exponent (the batch grows with the run's data; Power
      Lines, arXiv 2505.13738, fit B_opt ~ D^0.383).
    The result is rounded to a whole number of sequences (a multiple of `context`), at least one.
    """

    model_config = _STRICT
    rule: Literal["fixed", "power"] = "fixed"
    tokens: Tokens = 8192
    reference_tokens: Tokens = 100_000_000
    exponent: float = Field(default=0.0, ge=0, le=1)

    def tokens_for(self, data_tokens: float, context: int) -> int:
        raw = self.tokens if self.rule == "fixed" else self.tokens * (data_tokens / self.reference_tokens) ** self.exponent
        return max(1, int(round(raw / context))) * context


class Resources(BaseModel):
    """What one trial asks Ray for. GPUs may be a fraction below 1 (trials share a GPU; each caps its
    memory at that fraction) or a whole number; more than one GPU runs the trial data-parallel (DDP)
    on one node with one process per GPU. Torch CPU threads per trial = floor(cpus)."""

    model_config = _STRICT
    cpus: float = Field(default=1.0, gt=0)
    gpus: float = Field(default=0.0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _check(self) -> "Resources":
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise _FieldError("gpus", self.gpus, "is neither a fraction below 1 nor a whole number of GPUs")
        if self.device == "cpu" and self.gpus > 0:
            raise _FieldError("gpus", self.gpus, "GPUs asked for with device 'cpu'")
        if self.device == "cuda" and self.gpus == 0:
            raise _FieldError("device", "cuda", "needs gpus > 0")
        return self

    @property
    def resolved_device(self) -> str:
        return ("cuda" if self.gpus > 0 else "cpu") if self.device == "auto" else self.device

    @property
    def nproc(self) -> int:
        """Data-parallel processes per trial: one per whole GPU."""
        return int(self.gpus) if self.gpus >= 1 else 1

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus))


class NodeSpec(BaseModel):
    """Capacity of one node of the target cluster (checked against `resources` before anything runs)."""

    model_config = _STRICT
    cpus: int | None = Field(default=None, gt=0)
    gpus: int | None = Field(default=None, ge=0)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SweepSpec(BaseModel):
    """A scaling-law sweep: corpus, sizes, data, budgets, design, schedule, rules, resources."""

    model_config = _STRICT

    name: str | None = Field(default=None, description="sweep name; default: the spec file's stem")
    description: str = ""
    # data
    corpus: list[str] = Field(default_factory=list, description="files/folders/globs; empty = stdlib")
    vocab_size: int = Field(default=4096, ge=260, le=2**32 - 1)
    context: int = Field(default=256, gt=0)
    data: dict[str, Any] = Field(default_factory=dict, description="other DataConfig fields")
    model: dict[str, Any] = Field(default_factory=dict, description="other ModelConfig fields")
    size_convention: Literal["total", "nonembedding"] = "total"
    # design
    design: Literal["grid", "isoflop", "ladder"]
    sizes: Annotated[
        Union[Annotated[Literal["auto"], Tag("auto")], Annotated[list[Size], Tag("list")]],
        Discriminator(lambda v: "auto" if isinstance(v, str) and v == "auto" else "list"),
    ] = "auto"
    budgets: list[Flops] = Field(default_factory=list)
    tokens: list[Tokens] = Field(default_factory=list)
    tokens_per_param: list[Ratio] = Field(default_factory=list)
    isoflop: IsoflopOptions = IsoflopOptions()
    ladder: LadderOptions = LadderOptions()
    min_steps: int = Field(default=100, ge=1, description="every trial trains at least this many steps")
    max_epochs: float | None = Field(default=None, gt=0, description="refuse trials that repeat the corpus more")
    # training
    schedule: ScheduleSpec = ScheduleSpec()
    lr: LRRule = LRRule()
    batch: BatchRule = BatchRule()
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    train: dict[str, Any] = Field(default_factory=dict, description="other TrainConfig fields")
    eval_interval: int | None = Field(default=None, gt=0, description="steps between evals; None ~ 20 per run")
    checkpoint_interval: int | None = Field(default=None, gt=0, description="steps; None = at every eval")
    checkpoint_sync_s: float = Field(
        default=60.0, ge=0,
        description="copy a checkpoint to Ray Tune's storage at most this often (the run folder always has the newest)",
    )
    # orchestration
    resources: Resources = Resources()
    node: NodeSpec = NodeSpec()
    max_concurrent_trials: int | None = Field(default=None, gt=0)
    retries: int = Field(default=2, ge=0, le=1000)

    @model_validator(mode="after")
    def _check(self) -> "SweepSpec":
        if self.name is not None and not _NAME.match(self.name):
            raise _FieldError("name", self.name, "is not a plain name (letters, digits, _ . -)")
        if isinstance(self.sizes, list) and not self.sizes:
            raise _FieldError("sizes", [], "is empty; give at least one size (target params or a shape)")
        if len(set(self.seeds)) != len(self.seeds):
            raise _FieldError("seeds", self.seeds, "has duplicates")
        if self.design == "isoflop":
            if not self.budgets:
                raise _FieldError("budgets", [], "is empty; the isoflop design needs at least one FLOP budget")
            if self.tokens or self.tokens_per_param:
                field = "tokens" if self.tokens else "tokens_per_param"
                raise _FieldError(field, getattr(self, field), "is not used by the isoflop design (D = C / 6N)")
            if isinstance(self.sizes, list) and len(self.sizes) < 3:
                raise _FieldError("sizes", len(self.sizes), "sizes are too few for an IsoFLOP profile (need >= 3)")
        else:
            if self.sizes == "auto":
                raise _FieldError("sizes", "auto", f"needs a list of sizes for the {self.design} design")
            if self.budgets:
                raise _FieldError("budgets", self.budgets, f"are not used by the {self.design} design")
        if self.design == "grid":
            if bool(self.tokens) == bool(self.tokens_per_param):
                raise _FieldError("tokens", self.tokens, "grid needs exactly one of tokens or tokens_per_param")
        if self.design == "ladder" and (self.tokens or self.tokens_per_param):
            field = "tokens" if self.tokens else "tokens_per_param"
            raise _FieldError(field, getattr(self, field), "is not used by the ladder design (see ladder.multiples)")
        for field in ("budgets", "tokens", "tokens_per_param"):
            values = getattr(self, field)
            if len(set(values)) != len(values):
                raise _FieldError(field, values, "has duplicates")
        node = self.node
        if node.gpus is not None and self.resources.gpus > node.gpus:
            raise _FieldError(
                "resources.gpus", self.resources.gpus, f"GPUs per trial but a node has {node.gpus} (node.gpus)"
            )
        if node.cpus is not None and self.resources.cpus > node.cpus:
            raise _FieldError(
                "resources.cpus", self.resources.cpus, f"CPUs per trial but a node has {node.cpus} (node.cpus)"
            )
        return self

    # --- what the design and the launcher read -------------------------------------------------
    def data_config(self) -> DataConfig:
        return DataConfig(corpus=tuple(self.corpus), vocab_size=self.vocab_size, **self.data)

    def sweep_name(self) -> str:
        return self.name or "sweep"


class _FieldError(ValueError):
    """A cross-field error that knows its own field path (formatted like pydantic's own)."""

    def __init__(self, path: str, value: Any, message: str):
        super().__init__(f"{path}: {'missing;' if value is None else show(value)} {message}")
        self.path, self.value, self.message = path, value, message


# TrainConfig fields the spec sets itself (by design, schedule, rules, resources) and so forbids in `train:`.
_MANAGED_TRAIN = {
    "tokens": "design (budgets, tokens, tokens_per_param, ladder)",
    "batch_tokens": "batch",
    "lr": "lr",
    "schedule": "schedule.kind",
    "min_lr_ratio": "schedule.min_lr_ratio",
    "decay_fraction": "schedule.decay_fraction",
    "cooldowns": "schedule.cooldowns",
    "warmup_tokens": "schedule.warmup_tokens",
    "seed": "seeds",
    "device": "resources.device",
    "threads": "resources.cpus",
    "nproc": "resources.gpus",
    "eval_interval": "eval_interval",
    "checkpoint_interval": "checkpoint_interval",
}
_MANAGED_MODEL = {
    "n_layer": "sizes",
    "d_model": "sizes",
    "n_head": "sizes",
    "d_ff": "sizes",
    "context": "context",
    "vocab_size": "vocab_size",
}
_MANAGED_DATA = {"corpus": "corpus", "vocab_size": "vocab_size"}


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> SweepSpec:
    """Read, override and validate a sweep spec; any problem raises a one-line `SpecError`."""
    path = Path(path)
    source = path.name
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such spec file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the spec ({type(exc).__name__})") from None
    raw = parse_yaml(text, source)
    raw = apply_overrides(raw, overrides, source)
    spec = validate_spec(raw, source)
    if spec.name is None:
        stem = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem) or "sweep"
        spec = spec.model_copy(update={"name": stem})
    return spec


def parse_yaml(text: str, source: str) -> dict:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{source}: {where}not valid YAML ({problem})") from None
    if raw is None:
        raise SpecError(f"{source}: the spec is empty")
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: the spec must be a mapping of fields, got a {type(raw).__name__}")
    return raw


_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?$")


def apply_overrides(raw: dict, overrides: Sequence[str], source: str) -> dict:
    """Apply `key.sub=value` overrides (values parsed as YAML; `key[i]=v` sets one list item)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"{source}: --set {item!r}: expected key=value (e.g. budgets=[1e11,3e11])")
        parts = key.split(".")
        if not all(_KEY.match(p) for p in parts):
            raise SpecError(f"{source}: --set {key}: not a field path (use dots, e.g. isoflop.spread=3)")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise SpecError(f"{source}: --set {key}: {text!r} is not a valid YAML value") from None
        node = raw
        for depth, part in enumerate(parts):
            name, _, index = part.partition("[")
            last = depth == len(parts) - 1
            if index:
                i = int(index[:-1])
                seq = node.get(name)
                if not isinstance(seq, list) or i >= len(seq):
                    raise SpecError(f"{source}: --set {key}: {name} has no item {i}")
                if last:
                    seq[i] = value
                else:
                    if not isinstance(seq[i], dict):
                        seq[i] = {}
                    node = seq[i]
            elif last:
                node[name] = value
            else:
                child = node.get(name)
                if child is None:
                    child = node[name] = {}
                if not isinstance(child, dict):
                    raise SpecError(f"{source}: --set {key}: {name} is not a mapping")
                node = child
    return raw


def validate_spec(raw: dict, source: str = "spec") -> SweepSpec:
    """Validate a spec dict (after overrides) and its pass-through blocks (`model`, `data`, `train`)."""
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(format_error(exc, source)) from None
    _check_passthrough(spec.model, ModelConfig, "model", _MANAGED_MODEL, source,
                       {"n_layer": 1, "d_model": 8, "n_head": 1, "vocab_size": spec.vocab_size})
    _check_passthrough(spec.data, DataConfig, "data", _MANAGED_DATA, source, {"vocab_size": spec.vocab_size})
    filler = {"tokens": 1, "batch_tokens": spec.batch.tokens if spec.batch.rule == "fixed" else None}
    _check_passthrough(spec.train, TrainConfig, "train", _MANAGED_TRAIN, source,
                       {k: v for k, v in filler.items() if v is not None})
    return spec


def _check_passthrough(block: dict, cls: type[BaseModel], prefix: str, managed: dict[str, str], source: str,
                       filler: dict[str, Any]) -> None:
    for key in block:
        if key in managed:
            raise SpecError(f"{source}: {prefix}.{key}: is set by the spec's {managed[key]}, not here")
        if key not in cls.model_fields:
            allowed = sorted(set(cls.model_fields) - set(managed))
            raise SpecError(f"{source}: {prefix}.{key}: unknown field{_suggest(key, allowed)}")
    try:
        cls.model_validate({**filler, **block})
    except ValidationError as exc:
        raise SpecError(format_error(exc, source, prefix=prefix)) from None


def _suggest(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_TAGS = {"shape", "params", "auto", "list"}


def format_error(exc: ValidationError, source: str, prefix: str = "") -> str:
    """`source: field[2].sub: value message` for the first pydantic error, as one line."""
    err = exc.errors()[0]
    loc = [p for p in err.get("loc", ()) if p not in _TAGS]
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    kind = err.get("type", "")
    value = err.get("input")
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _FieldError):
        full = f"{path}.{ctx_error.path}" if path else ctx_error.path
        shown = "missing;" if ctx_error.value is None else show(ctx_error.value)
        return f"{source}: {full}: {shown} {ctx_error.message}"
    msg = err.get("msg", "invalid").removeprefix("Value error, ")
    if kind == "extra_forbidden":
        parent_model = _model_at(loc[:-1]) if not prefix else None
        allowed = list(parent_model.model_fields) if parent_model else []
        return f"{source}: {path}: unknown field{_suggest(loc[-1], allowed)}"
    if kind == "missing":
        return f"{source}: {path}: missing (required)"
    if kind == "value_error":
        return f"{source}: {path}: {msg}" if path else f"{source}: {msg}"
    if kind == "literal_error":
        return f"{source}: {path}: {show(value)} is not one of {(err.get('ctx') or {}).get('expected', '')}"
    bounds = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
              "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}
    if kind in bounds:
        key, op = bounds[kind]
        limit = (err.get("ctx") or {}).get(key)
        return f"{source}: {path}: {show(value)} is out of range (must be {op} {show(limit)})"
    if kind in ("int_parsing", "float_parsing", "int_type", "float_type", "int_from_float"):
        what = "a whole number" if kind.startswith("int") else "a number"
        return f"{source}: {path}: {show(value)} is not {what}"
    shown = "" if isinstance(value, dict) else f"{show(value)}: "
    return f"{source}: {path}: {shown}{msg}" if path else f"{source}: {shown}{msg}"


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model class found at a field path of SweepSpec (for unknown-field suggestions)."""
    model: type[BaseModel] | None = SweepSpec
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else (
            ShapeSpec if str(part) == "sizes" else None
        )
    return model

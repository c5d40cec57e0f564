"""The sweep spec: one YAML file that says which runs a scaling-law study needs and how to run them.

    name: isoflop-cpu
    corpus: []                  # empty = the Python standard library source (always present)
    vocab_size: 512
    context: 128
    design: isoflop             # grid | isoflop | ladder | isoflop-branches
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

`design: isoflop-branches` (`sweeps.branches`) takes the same `budgets` and `isoflop` options as `isoflop`
but trains one warmup-stable-decay run per size of one shared ladder, to the largest D any budget needs
of it, with a cool-down branch forked at every smaller D (Hägele et al. 2024); it needs
`schedule: {kind: wsd}` (`decay_fraction`, default 0.2, is the cool-down's share of each D) and sets
the cool-downs itself (see `sweeps/examples/isoflop-branches-cpu.yaml`).
"""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, Union

import yaml
from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from scaling.config import SEED_MAX, DataConfig, ModelConfig, TrainConfig
from sweeps.spec_options import (
    STRICT,
    AdamRule,
    FieldError,
    BatchRule,
    Flops,
    IsoflopOptions,
    LadderOptions,
    LRRule,
    NodeSpec,
    Ratio,
    Resources,
    ScheduleSpec,
    ShapeSpec,
    Size,
    SpecError,
    Tokens,
    show,
)

__all__ = ["SweepSpec", "SpecError", "ShapeSpec", "load_spec", "parse_yaml", "apply_overrides", "validate_spec",
           "format_error", "show"]


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SweepSpec(BaseModel):
    """A scaling-law sweep: corpus, sizes, data, budgets, design, schedule, rules, resources."""

    model_config = STRICT

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
    design: Literal["grid", "isoflop", "ladder", "isoflop-branches"]
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
    adam: AdamRule = AdamRule()
    batch: BatchRule = BatchRule()
    seeds: list[Annotated[int, Field(ge=0, le=SEED_MAX)]] = Field(default_factory=lambda: [0], min_length=1)
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
            raise FieldError("name", self.name, "is not a plain name (letters, digits, _ . -)")
        if isinstance(self.sizes, list) and not self.sizes:
            raise FieldError("sizes", [], "is empty; give at least one size (target params or a shape)")
        if len(set(self.seeds)) != len(self.seeds):
            raise FieldError("seeds", self.seeds, "has duplicates")
        if self.design in ("isoflop", "isoflop-branches"):
            if not self.budgets:
                raise FieldError("budgets", [], f"is empty; the {self.design} design needs at least one FLOP budget")
            if self.tokens or self.tokens_per_param:
                field = "tokens" if self.tokens else "tokens_per_param"
                raise FieldError(field, getattr(self, field), f"is not used by the {self.design} design (D = C / 6N)")
            if self.design == "isoflop-branches" and self.schedule.kind != "wsd":
                raise FieldError("schedule.kind", self.schedule.kind,
                                 "cannot fork cool-down branches; the isoflop-branches design needs kind 'wsd'")
            if self.design == "isoflop-branches" and self.schedule.cooldowns:
                raise FieldError("schedule.cooldowns", self.schedule.cooldowns,
                                 "are set by the isoflop-branches design (one per budget); leave them out")
            if isinstance(self.sizes, list) and len(self.sizes) < 3:
                raise FieldError("sizes", len(self.sizes), "sizes are too few for an IsoFLOP profile (need >= 3)")
        else:
            if self.sizes == "auto":
                raise FieldError("sizes", "auto", f"needs a list of sizes for the {self.design} design")
            if self.budgets:
                raise FieldError("budgets", self.budgets, f"are not used by the {self.design} design")
        if self.design == "grid":
            if bool(self.tokens) == bool(self.tokens_per_param):
                raise FieldError("tokens", self.tokens, "grid needs exactly one of tokens or tokens_per_param")
        if self.design == "ladder" and (self.tokens or self.tokens_per_param):
            field = "tokens" if self.tokens else "tokens_per_param"
            raise FieldError(field, getattr(self, field), "is not used by the ladder design (see ladder.multiples)")
        for field in ("budgets", "tokens", "tokens_per_param"):
            values = getattr(self, field)
            if len(set(values)) != len(values):
                raise FieldError(field, values, "has duplicates")
        node = self.node
        if node.gpus is not None and self.resources.gpus > node.gpus:
            raise FieldError(
                "resources.gpus", self.resources.gpus, f"GPUs per trial but a node has {node.gpus} (node.gpus)"
            )
        if node.cpus is not None and self.resources.cpus > node.cpus:
            raise FieldError(
                "resources.cpus", self.resources.cpus, f"CPUs per trial but a node has {node.cpus} (node.cpus)"
            )
        return self

    # --- what the design and the launcher read -------------------------------------------------
    def data_config(self) -> DataConfig:
        return DataConfig(corpus=tuple(self.corpus), vocab_size=self.vocab_size, **self.data)

    def check_corpus(self, source: str) -> None:
        """Refuse, before anything is planned or started, a corpus entry that matches no file or a file
        whose format the reader cannot decode (`scaling.corpus.resolve_corpus`); `source` names the spec."""
        from scaling.corpus import resolve_corpus
        from scaling.errors import DataError

        if self.corpus:
            try:
                resolve_corpus(self.corpus)
            except DataError as exc:
                raise SpecError(f"{source}: {exc}") from None

    def sweep_name(self) -> str:
        return self.name or "sweep"


# TrainConfig fields the spec sets itself (by design, schedule, rules, resources) and so forbids in `train:`.
_MANAGED_TRAIN = {
    "tokens": "design (budgets, tokens, tokens_per_param, ladder)",
    "batch_tokens": "batch",
    "lr": "lr",
    "schedule": "schedule.kind",
    "min_lr_ratio": "schedule.min_lr_ratio",
    "decay_fraction": "schedule.decay_fraction",
    "cooldowns": "schedule.cooldowns",
    "warmup_tokens": "schedule.warmup_tokens (or schedule.warmup_fraction)",
    "beta1": "adam.beta1",
    "beta2": "adam.beta2 (or adam.beta2_half_life_tokens)",
    "seed": "seeds",
    "device": "resources.device",
    "threads": "resources.cpus",
    "nproc": "resources.workers (or resources.gpus)",
    "parallel": "resources.strategy",
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


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a mapping with the same key twice is an error (PyYAML keeps
    the last one silently, so `vocab_size: 512` ... `vocab_size: 1024` would quietly train 1024)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise SpecError(f"{self.name}: line {line}: {key}: duplicate key (it is already set above)")
            try:
                seen.add(key)
            except TypeError:
                pass
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, source: str, what: str = "") -> Any:
    """YAML text as Python values (safe loader, duplicate keys refused); `SpecError` naming `source` (and
    `what`, e.g. "--set budgets") for text that is not YAML or is nested too deeply to read."""
    loader = _UniqueKeyLoader(text)
    loader.name = f"{source}: {what}" if what else source
    try:
        return loader.get_single_data()
    except RecursionError:
        raise SpecError(f"{loader.name}: nested too deeply to read") from None
    finally:
        loader.dispose()


def parse_yaml(text: str, source: str) -> dict:
    try:
        raw = load_yaml(text, source)
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
            value = load_yaml(text, source, f"--set {key}") if text.strip() else None
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
    if isinstance(ctx_error, FieldError):
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

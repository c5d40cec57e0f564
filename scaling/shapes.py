"""Pick a GPT shape for a target parameter count, so sweeps ask for sizes, not shapes."""

from __future__ import annotations

import bisect
import math
from functools import lru_cache
from typing import Any, Literal

from scaling import counting
from scaling.config import ModelConfig, parse_config
from scaling.errors import ConfigError

ASPECT_RATIO = 64  # d_model / n_layer
HEAD_SIZE = 64
GPU_WIDTH = 512  # from this width up: d_model a multiple of 64, head size 64 (128 from LARGE_HEAD_WIDTH)
LARGE_HEAD_WIDTH = 2048
GPU_STEP = 64
MIN_LAYERS = 2  # Kaplan et al. 2020 Fig. 6: models with fewer than 2 layers fall off the trend
MAX_LAYERS = 512
MAX_RELATIVE_ERROR = 0.2  # refuse a target no shape comes within 20% of

SHAPE_RULE = """\
Shape rule: d_model ~ 64 * n_layer, at least 2 layers, head size 64, MLP width 4 * d_model.

Why. Kaplan et al. 2020 (§3.1, Fig. 5) find that at fixed non-embedding N the loss changes by only a few
percent while d_model / n_layer ranges over 20-200, so the aspect ratio is a free choice as long as it
stays in that band; we fix it at 64, which is GPT-2 small (768 / 12), close to Chinchilla's own models
(640/10 ... 3584/40 = 51-90, Hoffmann et al. 2022 Table A9), and nanochat's `model_dim = 64 * depth`.
Holding the ratio fixed makes a size sweep vary one thing (scale) rather than scale and shape together.

Never fewer than 2 layers: Kaplan et al. (Fig. 6) find that, counted without embeddings, models of every
depth fall on one trend, one-layer models being the exception; a one-layer transformer also cannot form
induction heads (Olsson et al. 2022), so mixing it into a sweep puts a kink in the law.

How. The sizes form one chain ordered by N: n_layer = L owns every width d (on the grid below) whose
parameter count lies between the geometric means of N(L-1, 64(L-1)), N(L, 64L) and N(L+1, 64(L+1)), so d
/ n_layer stays near 64 (within about 64 +- 32 for L >= 3; two layers take every width up to ~160, which
is where tiny, embedding-dominated CPU models live, d / n_layer down to 8). The shape whose N is nearest
the target (in log) is returned, so the achieved N is monotone in the target and the layer count never
decreases as the target grows. Width grid: multiples of 4 below 256, of 8 below 512, and of 64 from 512
up (GPU widths: tensor-core and memory tiles want d_model and the head size a multiple of 64, as in
GPT-2/3, Chinchilla and Llama). Heads: below width 256 four heads where the width divides by 8, else two
(head sizes stay even); from 256 to 511 the even head size dividing d_model closest to 64 and within
[32, 128] (widths with none are skipped); from 512 up head size 64, and 128 from width 2048 up (Hoffmann
et al. 2022 Table A9: 128 from d_model 2048 on; Touvron et al. 2023: 4096 / 32). Works from ~2 x 10^4
parameters (vocab 512) to 10^12. The achieved N is within ~5-10% for embedding-dominated models, where one
width step moves N by 4 x vocab_size, and within ~3% for the widths below 512. From 512 wide the sizes
climb a staircase of one more layer, then 64 more width: (L, 64(L-1)), (L, 64L), (L+1, 64L), ... (d_model
/ n_layer between 57 and 64), so neighbouring sizes differ by about (1 + 1/L)^2 and (1 + 1/L): the nearest
shape is within ~12% at d_model 512-1023, ~6.5% at 1024-2047 and ~3% from 2048 up (vocab 512 to 50257).
N is counted exactly by `scaling.counting.param_counts`, so report that number, not the target."""


def _widths(limit: int = 65536) -> list[int]:
    """The d_model grid: fine where one step changes N a lot; widths with no head size in [32, 128] skipped."""
    grid = list(range(8, 256, 4)) + list(range(256, GPU_WIDTH, 8)) + list(range(GPU_WIDTH, limit + 1, 64))
    return [d for d in grid if d < 4 * HEAD_SIZE or 32 <= d // heads_for_width(d) <= 128]


@lru_cache(maxsize=None)
def heads_for_width(d_model: int) -> int:
    """Heads for a width: the even head size dividing d_model closest to 64 (see SHAPE_RULE).

    Below width 256: four heads where the width divides by 8, else two (head sizes stay even). From
    width 256 up, head sizes in [32, 128] are preferred (the shape grid skips
    widths that have none, e.g. 424 = 4 x 106); an odd width gets a single head. GPU widths (a
    multiple of 64 from 512 up): head size 64, or 128 from width 2048 when it divides.
    """
    if d_model >= GPU_WIDTH and d_model % 64 == 0:
        return d_model // (128 if d_model >= LARGE_HEAD_WIDTH and d_model % 128 == 0 else 64)
    if 8 <= d_model < 4 * HEAD_SIZE and d_model % 4 == 0:
        return 4 if d_model % 8 == 0 else 2
    divisors = {k for i in range(1, math.isqrt(d_model) + 1) if d_model % i == 0 for k in (i, d_model // i)}
    heads = [n for n in divisors if (d_model // n) % 2 == 0] or [1]
    target = HEAD_SIZE if d_model >= 4 * HEAD_SIZE else max(d_model / 4, 1)

    def badness(n: int) -> tuple:
        size = d_model / n
        return (d_model >= 4 * HEAD_SIZE and not 32 <= size <= 128, abs(math.log(size / target)), -n)

    return min(heads, key=badness)


@lru_cache(maxsize=64)
def _chain(vocab_size: int, context: int, convention: str, frozen_kwargs: tuple) -> tuple[tuple[int, int, int], ...]:
    """All (N, n_layer, d_model) of the size chain, sorted by N (see SHAPE_RULE)."""
    kwargs = dict(frozen_kwargs)

    def count(n_layer: int, d_model: int) -> int:
        cfg = ModelConfig.model_construct(  # skip validation: only the shape is counted here
            n_layer=n_layer, d_model=d_model, n_head=heads_for_width(d_model), context=context,
            vocab_size=vocab_size, d_ff=None, **{k: kwargs.get(k, ModelConfig.model_fields[k].default)
                                                 for k in ("tie_embeddings", "positions", "bias")},
        )
        key = "params" if convention == "total" else "params_nonembedding"
        return counting.param_counts(cfg)[key]

    on_ratio = {L: count(L, ASPECT_RATIO * L) for L in range(MIN_LAYERS, MAX_LAYERS + 2)}
    # n_layer = L owns the counts in [lower(L), upper(L)): geometric midpoints between neighbours on the ratio
    def upper_bound(L: int) -> float:
        return math.sqrt(on_ratio[L] * on_ratio[L + 1])

    widths = _widths()
    chain = []
    for L in range(MIN_LAYERS, MAX_LAYERS + 1):
        lower, upper = (0.0 if L == MIN_LAYERS else upper_bound(L - 1)), upper_bound(L)
        lo, hi = 0, len(widths)  # first width with count >= lower (count grows with width)
        while lo < hi:
            mid = (lo + hi) // 2
            if count(L, widths[mid]) < lower:
                lo = mid + 1
            else:
                hi = mid
        for d in widths[lo:]:
            n = count(L, d)
            if n >= upper or d >= GPU_WIDTH:
                break
            chain.append((n, L, d))
        # GPU widths: a staircase (L, 64(L - 1)), (L, 64 L), (L + 1, 64 L), ... of +64 width and +1 layer
        chain += [(count(L, d), L, d) for d in (GPU_STEP * (L - 1), GPU_STEP * L) if d >= GPU_WIDTH]
    chain.sort()
    monotone, deepest = [], 0  # the layer count never decreases as N grows
    for n, L, d in chain:
        if L >= deepest:
            monotone.append((n, L, d))
            deepest = L
    return tuple(monotone)


def shape_for_params(
    target: float,
    *,
    vocab_size: int,
    context: int,
    convention: Literal["total", "nonembedding"] = "total",
    **model_kwargs: Any,
) -> ModelConfig:
    """The `ModelConfig` whose parameter count is nearest `target` on the size chain of `SHAPE_RULE`.

    `convention="total"` matches all parameters, `"nonembedding"` the non-embedding ones (Kaplan).
    `model_kwargs` are further `ModelConfig` fields (`tie_embeddings`, `positions`, `bias`); the shape
    fields are chosen here. Raises `ConfigError` when no shape comes within 20% of the target.
    """
    if convention not in ("total", "nonembedding"):
        raise ConfigError(f"convention: {convention!r} is not 'total' or 'nonembedding'")
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise ConfigError(f"params: {target!r} is not a positive parameter count")
    fixed = {"n_layer", "d_model", "n_head", "d_ff", "context", "vocab_size"} & set(model_kwargs)
    if fixed:
        raise ConfigError(f"shape_for_params: {sorted(fixed)[0]} is chosen by the shape rule, not passed in")
    unknown = set(model_kwargs) - {"tie_embeddings", "positions", "bias"}
    if unknown:
        raise ConfigError(f"shape_for_params: unknown model field {sorted(unknown)[0]!r}")
    chain = _chain(vocab_size, context, convention, tuple(sorted(model_kwargs.items())))
    counts = [n for n, _, _ in chain]
    i = bisect.bisect_left(counts, target)
    best = min((j for j in (i - 1, i) if 0 <= j < len(chain)), key=lambda j: abs(math.log(counts[j] / target)))
    n, n_layer, d_model = chain[best]
    if abs(n / target - 1) > MAX_RELATIVE_ERROR:
        if target < counts[0]:
            why = f"is below the smallest model the shape rule makes ({counts[0]:,} params)"
        elif target > counts[-1]:
            why = f"is above the largest model the shape rule makes ({counts[-1]:,} params)"
        else:
            why = f"has no shape within 20% (nearest: {n:,} params, {n_layer} layers, d_model {d_model})"
        raise ConfigError(f"params: {target:.4g} ({convention}) {why} at vocab {vocab_size}, context {context}")
    shape = dict(n_layer=n_layer, d_model=d_model, n_head=heads_for_width(d_model), context=context)
    return parse_config(ModelConfig, {**shape, "vocab_size": vocab_size, **model_kwargs}, "shape_for_params")


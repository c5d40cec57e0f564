"""Parameters and FLOPs of the GPT in `scaling.model`, counted from its shape alone (no torch).

Parameters, three ways (the runs table stores all three; every fit says which it used):

- ``params``: every unique trainable parameter (Hoffmann et al. 2022, "Chinchilla", count all of them).
- ``params_embedding``: the token embedding, the learned position embedding (if any) and the output
  head when it is not tied to the token embedding.
- ``params_nonembedding`` = ``params - params_embedding`` (Kaplan et al. 2020 exclude embeddings; at
  small scale this is what moves Kaplan's exponent, Pearce & Song 2024).

FLOPs per token, two ways:

- ``flops_per_token_6n`` = 6 N: 2 FLOPs per parameter per token forward (one multiply, one add), twice
  that backward (gradients with respect to activations and to weights). Kaplan et al. 2020 §2.1.
- ``flops_per_token_detailed``: Hoffmann et al. 2022 appendix F, term by term, for a sequence of length
  S = context (a full, non-causal S x S attention matrix, as the paper counts it)::

      embeddings        2 S V d
      per layer:
        Q, K, V          2 * 3 S d (k h)          k = head size, h = heads
        Q K^T logits     2 S S (k h)
        softmax          3 h S S
        softmax @ V      2 S S (k h)
        output proj      2 S (k h) d
        MLP              2 S (d f + f d)          f = MLP width
      final logits      2 S d V
      forward  = embeddings + n_layer * (attention + MLP) + logits
      backward = 2 * forward

  divided by S to get FLOPs per token. Layer norms, biases, GELU and the residual adds are not counted
  (nor are they in the paper).

  **Table A4 convention.** The paper's Table A4 (ratio of this count to 6ND for six of its models) is
  reproduced only when the embedding and final-logit terms are left out of the forward pass and N is
  the parameter count printed in the table: Karpathy's nanoGPT `scaling_laws.ipynb` notes that, per
  correspondence with the authors, those two terms were not counted for the table. So
  ``flops_per_token_detailed(cfg)`` counts all of appendix F as written (the honest cost of our model),
  and ``flops_per_token_detailed(cfg, embeddings=False, logits=False)`` is the convention that
  reproduces Table A4 (see tests/scaling/test_counting.py; five of the six rows agree within 1%, the
  1.1B row is 4% off under every convention we tried).

- ``kaplan_forward_flops_per_token`` = 2 N_nonembedding + 2 n_layer n_ctx d_model: Kaplan et al. 2020
  Table 1 (forward pass only; the attention term counts the causal half of the S x S matrix).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pure python at run time: no pydantic or torch import needed to count
    from scaling.config import ModelConfig


def param_counts(cfg: "ModelConfig") -> dict[str, int]:
    """Parameters of `scaling.model.GPT(cfg)`, counted from the shape.

    Per block: two LayerNorms (weight, + bias if `cfg.bias`), the fused Q/K/V projection d x 3d, the
    attention output projection d x d, the MLP d x f and f x d (each Linear + bias if `cfg.bias`).
    Outside the blocks: token embedding V x d, learned positions S x d (none for rotary), the final
    LayerNorm, and the output head V x d unless tied to the token embedding (no bias).
    """
    d, f, L, V, S, b = cfg.d_model, cfg.ffw_size, cfg.n_layer, cfg.vocab_size, cfg.context, int(cfg.bias)
    layer_norm = d + b * d
    attention = (d * 3 * d + b * 3 * d) + (d * d + b * d)
    mlp = (d * f + b * f) + (f * d + b * d)
    block = 2 * layer_norm + attention + mlp
    token_embedding = V * d
    position_embedding = S * d if cfg.positions == "learned" else 0
    head = 0 if cfg.tie_embeddings else V * d
    embedding = token_embedding + position_embedding + head
    nonembedding = L * block + layer_norm
    return {
        "params": embedding + nonembedding,
        "params_embedding": embedding,
        "params_nonembedding": nonembedding,
    }


def flops_per_token_6n(cfg: "ModelConfig") -> float:
    """6 N with N = all parameters (Kaplan et al. 2020 §2.1 use N non-embedding; we use total N)."""
    return 6.0 * param_counts(cfg)["params"]


def forward_flops_per_token_detailed(cfg: "ModelConfig", *, embeddings: bool = True, logits: bool = True) -> float:
    """Forward-pass FLOPs per token, Chinchilla appendix F (see the module docstring for each term)."""
    d, f, L, V, S, h = cfg.d_model, cfg.ffw_size, cfg.n_layer, cfg.vocab_size, cfg.context, cfg.n_head
    kh = cfg.head_size * h  # = d_model here; the paper writes key_size * num_heads
    attention = (
        2 * 3 * S * d * kh  # Q, K, V projections
        + 2 * S * S * kh  # Q K^T logits
        + 3 * h * S * S  # softmax
        + 2 * S * S * kh  # softmax @ V
        + 2 * S * kh * d  # output projection
    )
    mlp = 2 * S * (d * f + f * d)
    forward = L * (attention + mlp)
    if embeddings:
        forward += 2 * S * V * d
    if logits:
        forward += 2 * S * d * V
    return forward / S


def flops_per_token_detailed(cfg: "ModelConfig", *, embeddings: bool = True, logits: bool = True) -> float:
    """Forward + backward FLOPs per token, Chinchilla appendix F: 3 x the forward count (backward = 2 x forward).

    `embeddings=False, logits=False` is the convention that reproduces the paper's Table A4.
    """
    return 3.0 * forward_flops_per_token_detailed(cfg, embeddings=embeddings, logits=logits)


def kaplan_forward_flops_per_token(cfg: "ModelConfig") -> float:
    """C_forward = 2 N + 2 n_layer n_ctx d_model, N non-embedding (Kaplan et al. 2020, Table 1)."""
    return 2.0 * param_counts(cfg)["params_nonembedding"] + 2.0 * cfg.n_layer * cfg.context * cfg.d_model


def model_flops_per_token(cfg: "ModelConfig") -> float:
    """FLOPs per token used for MFU: appendix F without the embedding term (a table lookup, not a matmul).

    Comparable to PaLM's 6 N + 12 L d S (nanoGPT's `estimate_mfu`) with N counting the output head.
    """
    return flops_per_token_detailed(cfg, embeddings=False, logits=True)

"""Parameter and FLOP counts: against the module, torch's own FLOP counter, Chinchilla Table A4 and Kaplan."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from scaling import counting
from scaling.config import ModelConfig
from scaling.model import GPT

CHINCHILLA_VOCAB = 32_000  # SentencePiece vocabulary of Gopher/Chinchilla
CHINCHILLA_CONTEXT = 2048


def _table_a4(shared_data):
    with open(shared_data / "chinchilla_tableA4_flops.csv") as f:
        return list(csv.DictReader(f))


def _chinchilla_model(row) -> ModelConfig:
    return ModelConfig.model_construct(
        n_layer=int(row["num_layers"]), d_model=int(row["d_model"]), n_head=int(row["num_heads"]),
        d_ff=int(row["ffw_size"]), context=CHINCHILLA_CONTEXT, vocab_size=CHINCHILLA_VOCAB,
        tie_embeddings=True, positions="rotary", bias=False,
    )


def test_table_a4_ratios_reproduced_with_the_papers_convention(shared_data):
    """Detailed / 6ND as in Chinchilla Table A4: embedding and logit FLOPs left out, N as printed in the table.

    Five of the six rows agree within 1%. The 1.1B row does not under any convention we tried (with or
    without embeddings/logits, N from the table or counted from its shape, context 1024 or 2048): its
    printed ratio 1.04 would need N = 1.15e9, more than its shape (26 x 1792, ffw 7168) holds even with
    untied embeddings (1.12e9). We test that row for the 4.3% gap rather than loosen the tolerance.
    """
    rows = _table_a4(shared_data)
    assert len(rows) == 6
    for row in rows:
        cfg = _chinchilla_model(row)
        assert cfg.head_size == int(row["kq_size"])
        n_table = float(row["params"])
        ratio = counting.flops_per_token_detailed(cfg, embeddings=False, logits=False) / (6 * n_table)
        published = float(row["flop_ratio_ours_over_6ND"])
        if n_table == 1.1e9:
            assert ratio / published - 1 == pytest.approx(0.043, abs=0.005), (row, ratio)
        else:
            assert abs(ratio / published - 1) < 0.01, (row, ratio, published)


def test_table_a4_is_not_reproduced_when_embeddings_and_logits_are_counted(shared_data):
    """The appendix-F formula as written (our default) counts more than the table: documents the convention."""
    rows = _table_a4(shared_data)
    small = _chinchilla_model(rows[0])
    full = counting.flops_per_token_detailed(small) / (6 * float(rows[0]["params"]))
    assert full > 1.5  # 73M: the 32k x 640 embedding and logits add more than half again


def test_param_counts_three_ways_are_consistent():
    for kw in ({}, {"tie_embeddings": False}, {"positions": "rotary"}, {"bias": True, "d_ff": 100}):
        cfg = ModelConfig(n_layer=3, d_model=48, n_head=4, context=40, vocab_size=300, **kw)
        c = counting.param_counts(cfg)
        assert c["params"] == c["params_embedding"] + c["params_nonembedding"]
        expected_embedding = 300 * 48 + (40 * 48 if cfg.positions == "learned" else 0)
        expected_embedding += 0 if cfg.tie_embeddings else 300 * 48
        assert c["params_embedding"] == expected_embedding
        assert counting.flops_per_token_6n(cfg) == 6 * c["params"]


def test_kaplan_nonembedding_count_is_12_layer_d_squared_at_scale():
    """Kaplan et al. 2020: N ~ 12 n_layer d_model^2 (d_ff = 4 d, no biases; layer norms are the remainder)."""
    cfg = ModelConfig(n_layer=24, d_model=2048, n_head=16, context=1024, vocab_size=50257)
    n = counting.param_counts(cfg)["params_nonembedding"]
    assert n == pytest.approx(12 * 24 * 2048**2, rel=1e-3)


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_detailed_count_matches_torch_flop_counter(positions):
    """torch's FlopCounterMode on the real model (math attention, so the S x S products are counted) equals
    appendix F minus the terms torch does not count as matmuls: the embedding lookup and the softmax."""
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, d_model=64, n_head=4, context=32, vocab_size=512, positions=positions)
    model = GPT(cfg)
    idx = torch.randint(0, cfg.vocab_size, (3, cfg.context))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as forward:
        _, loss = model(idx, idx)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as backward:
        loss.backward()
    tokens = idx.numel()
    softmax = 3 * cfg.n_head * cfg.context * cfg.n_layer  # per token
    expected_forward = counting.forward_flops_per_token_detailed(cfg, embeddings=False) - softmax
    assert forward.get_total_flops() / tokens == pytest.approx(expected_forward, rel=1e-9)
    # backward = 2 x forward (Kaplan 2020; Chinchilla App. F), exactly for the matmuls
    assert backward.get_total_flops() == pytest.approx(2 * forward.get_total_flops(), rel=0.01)


def test_kaplan_forward_formula_against_the_model():
    """C_forward = 2 N + 2 n_layer n_ctx d_model (Kaplan Table 1): the matmuls of the blocks (2 N, N without
    layer norms) plus the causal half of the attention products. Checked against torch's count."""
    cfg = ModelConfig(n_layer=4, d_model=128, n_head=4, context=64, vocab_size=512)
    model = GPT(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.context))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        model(idx)
    measured = fc.get_total_flops() / idx.numel()
    blocks = measured - 2 * cfg.d_model * cfg.vocab_size  # drop the output head
    causal = blocks - 2 * cfg.n_layer * cfg.context * cfg.d_model  # torch counts the full S x S products
    kaplan = counting.kaplan_forward_flops_per_token(cfg)
    assert kaplan == pytest.approx(causal, rel=0.01)  # the 1% is the layer-norm gains Kaplan's N includes


def test_six_n_and_detailed_agree_for_large_models_and_not_for_tiny_ones():
    """At 6.8B params (Table A4 shape) 6N is within ~10% of appendix F (tied embedding counted once in N but
    twice in FLOPs, as lookup and logits, plus attention); for a tiny model with a big
    vocabulary the logits dominate and the two conventions differ several-fold (training.md §2)."""
    big = ModelConfig(n_layer=40, d_model=3584, n_head=28, d_ff=14336, context=2048, vocab_size=32000)
    assert 1.0 < counting.flops_per_token_detailed(big) / counting.flops_per_token_6n(big) < 1.15
    tiny = ModelConfig(n_layer=2, d_model=64, n_head=4, context=256, vocab_size=4096)
    ratio = counting.flops_per_token_detailed(tiny) / (6 * counting.param_counts(tiny)["params_nonembedding"])
    assert ratio > 3
    assert math.isclose(
        counting.model_flops_per_token(tiny),
        counting.flops_per_token_detailed(tiny) - 3 * 2 * tiny.vocab_size * tiny.d_model,
    )

"""The GPT module: counts, causality, initialisation, optimiser groups."""

from __future__ import annotations

import math

import pytest
import torch

from scaling.config import ModelConfig
from scaling.model import GPT, INIT_STD

VARIANTS = [
    {},
    {"tie_embeddings": False},
    {"positions": "rotary"},
    {"bias": True, "positions": "rotary", "tie_embeddings": False, "d_ff": 96},
]


@pytest.mark.parametrize("kw", VARIANTS)
def test_param_counts_equal_numel(kw):
    cfg = ModelConfig(n_layer=2, d_model=32, n_head=4, context=16, vocab_size=300, **kw)
    model = GPT(cfg)
    counts = model.param_counts()
    assert counts["params"] == sum(p.numel() for p in model.parameters())
    unique = {id(p): p for p in model.state_dict(keep_vars=True).values() if isinstance(p, torch.nn.Parameter)}
    assert counts["params"] == sum(p.numel() for p in unique.values())
    if cfg.tie_embeddings:
        assert model.lm_head.weight is model.transformer.wte.weight


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_forward_is_causal_and_starts_near_uniform(positions):
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, d_model=32, n_head=4, context=16, vocab_size=300, positions=positions)
    model = GPT(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.context))
    logits, loss = model(idx, torch.roll(idx, -1, dims=1))
    assert logits.shape == (2, cfg.context, cfg.vocab_size)
    assert loss.item() == pytest.approx(math.log(cfg.vocab_size), rel=0.05)  # GPT-2 init: near-uniform logits
    changed = idx.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % cfg.vocab_size
    logits2, _ = model(changed)
    assert torch.equal(logits[:, :10], logits2[:, :10])  # the future cannot leak into the past
    assert not torch.allclose(logits[:, 10:], logits2[:, 10:])
    _, none = model(idx)
    assert none is None


def test_rotary_scores_depend_only_on_relative_position():
    """RoPE: q at position i and k at position j score q_i . k_j as a function of i - j only."""
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=1, d_model=32, n_head=2, context=16, vocab_size=50, positions="rotary")
    rotary = GPT(cfg).transformer.h[0].attn.rotary
    q, k = torch.randn(16), torch.randn(16)

    def score(i: int, j: int) -> float:
        qs, ks = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
        qs[0, 0, i], ks[0, 0, j] = q, k
        return float(rotary(qs)[0, 0, i] @ rotary(ks)[0, 0, j])

    assert score(5, 2) == pytest.approx(score(12, 9), abs=1e-5)
    assert score(3, 3) == pytest.approx(float(q @ k), abs=1e-5)
    assert score(5, 2) != pytest.approx(score(5, 4), abs=1e-3)


def test_gpt2_initialisation():
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=8, d_model=256, n_head=4, context=32, vocab_size=1000)
    model = GPT(cfg)
    proj = model.transformer.h[0].mlp.c_proj.weight
    fc = model.transformer.h[0].mlp.c_fc.weight
    assert proj.std().item() == pytest.approx(INIT_STD / math.sqrt(2 * cfg.n_layer), rel=0.05)
    assert fc.std().item() == pytest.approx(INIT_STD, rel=0.05)
    assert model.transformer.wte.weight.std().item() == pytest.approx(INIT_STD, rel=0.05)
    assert torch.all(model.transformer.ln_f.weight == 1)


def test_optimizer_groups_decay_only_linear_weights():
    cfg = ModelConfig(n_layer=2, d_model=32, n_head=4, context=16, vocab_size=300, bias=True, tie_embeddings=False)
    model = GPT(cfg)
    decay, no_decay = model.optimizer_groups(0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    decayed = {id(p) for p in decay["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[i] for i in decayed} == {
        n for n, p in model.named_parameters() if n.endswith(".weight") and p.dim() == 2 and "wte" not in n and "wpe" not in n
    }
    assert id(model.lm_head.weight) in decayed  # an untied head is a Linear layer
    assert id(model.transformer.wte.weight) not in decayed
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))

"""A decoder-only GPT you can read top to bottom.

Pre-LayerNorm blocks (Radford et al. 2019, GPT-2), causal self-attention through
`F.scaled_dot_product_attention` (flash attention where the device has it), a GELU MLP, learned or rotary
positions (Su et al. 2021), the output head optionally tied to the token embedding, and GPT-2's
initialisation: N(0, 0.02) for every weight, and N(0, 0.02 / sqrt(2 n_layer)) for the two projections
that write into the residual stream, so the stream's variance does not grow with depth.

    x = wte[idx] (+ wpe[pos])
    for each block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
    logits = lm_head(ln_f(x))

The parameter count is asserted against `scaling.counting.param_counts`, the single source of N.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from scaling import counting
from scaling.config import ModelConfig

INIT_STD = 0.02  # GPT-2


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's `nn.LayerNorm` cannot drop only the bias)."""

    def __init__(self, ndim: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class Rotary(nn.Module):
    """Rotary position embedding: rotate each (even, odd) pair of q and k channels by angle pos * theta_i.

    theta_i = base^(-2i / head_size) (Su et al. 2021, RoFormer). No parameters; cos/sin are a buffer
    that is not saved in checkpoints (it is recomputed from the shape).
    """

    def __init__(self, head_size: int, context: int, base: float = 10000.0):
        super().__init__()
        inv_freq = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)
        angles = torch.outer(torch.arange(context, dtype=torch.float32), inv_freq)  # (T, hs/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.size(-2)
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, nh, T, hs/2)
        cos, sin = self.cos[:T].to(x.dtype), self.sin[:T].to(x.dtype)
        rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
        return rotated.flatten(-2)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)  # q, k, v for all heads at once
        self.c_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)  # writes into the residual stream
        self.rotary = Rotary(cfg.head_size, cfg.context) if cfg.positions == "rotary" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads side by side
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.d_model, cfg.ffw_size, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.ffw_size, cfg.d_model, bias=cfg.bias)  # writes into the residual stream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln_1 = LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(cfg.vocab_size, cfg.d_model),
                wpe=nn.Embedding(cfg.context, cfg.d_model) if cfg.positions == "learned" else None,
                h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
                ln_f=LayerNorm(cfg.d_model, bias=cfg.bias),
            )
        )
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight  # one matrix, used at both ends
        self.apply(self._init_weights)
        # GPT-2: scale the init of the projections into the residual stream by 1/sqrt(2 * n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=INIT_STD / math.sqrt(2 * cfg.n_layer))
        self.param_counts()  # asserts that the module and `scaling.counting` agree

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)

    def param_counts(self) -> dict[str, int]:
        """`{params, params_embedding, params_nonembedding}`, from the module, checked against the shape.

        Embedding = token embedding + learned positions + the output head when untied; a tied head is the
        token embedding, counted once.
        """
        total = sum(p.numel() for p in self.parameters())  # `parameters()` yields a tied matrix once
        embedding = self.transformer.wte.weight.numel()
        if self.transformer.wpe is not None:
            embedding += self.transformer.wpe.weight.numel()
        if self.lm_head.weight is not self.transformer.wte.weight:
            embedding += self.lm_head.weight.numel()
        counts = {"params": total, "params_embedding": embedding, "params_nonembedding": total - embedding}
        expected = counting.param_counts(self.cfg)
        assert counts == expected, f"module has {counts}, scaling.counting says {expected}"
        return counts

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) token ids -> (logits (B, T, V), mean cross-entropy in nats/token or None)."""
        B, T = idx.size()
        assert T <= self.cfg.context, f"sequence of {T} tokens exceeds the context of {self.cfg.context}"
        x = self.transformer.wte(idx)  # (B, T, d)
        if self.transformer.wpe is not None:
            x = x + self.transformer.wpe(torch.arange(T, device=idx.device))  # (T, d) broadcast over B
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
        return logits, loss

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """AdamW parameter groups: decay the weight matrices of Linear layers only.

        Not decayed: biases and LayerNorm gains (decaying a gain pulls it towards 0, not towards its init
        of 1) and the embeddings (token, position, and a tied head, which is the token embedding) as in
        OLMo and most recent recipes; a tiny model's parameters are mostly embedding, and decaying rare
        tokens' rows only because they are rarely updated is not regularisation we want.
        """
        embeddings = {id(self.transformer.wte.weight)}
        if self.transformer.wpe is not None:
            embeddings.add(id(self.transformer.wpe.weight))
        decay, no_decay = [], []
        for p in self.parameters():
            (decay if p.dim() >= 2 and id(p) not in embeddings else no_decay).append(p)
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

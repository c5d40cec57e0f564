"""Which N and which FLOPs: the conventions every fit records as facts, and D <-> C under C = k N D.

N is counted three ways (`scaling.counting`): `params` (every parameter; an untied output head once
more: Chinchilla's convention), `params_embedding`, and `params_nonembedding` (without token and
position embeddings: Kaplan et al. 2020's convention). A fit is made under one of two conventions,
`total` or `nonembedding`; a table's own column name is recorded separately.

C = 6 N D (Kaplan et al. 2020 §2.1: 2 N FLOPs per token forward, 4 N backward) is what budgets,
fits and plans use; `flops_detailed` is Chinchilla's appendix-F count beside it.
"""

from __future__ import annotations

N_CONVENTIONS = ("total", "nonembedding")

N_CONVENTION_COLUMNS = {"total": "params", "nonembedding": "params_nonembedding"}
"""The runs-table column that holds N under each convention."""

FLOPS_6ND = "6ND"
"""The FLOP convention C = 6 N D."""

FLOPS_PER_PARAM_TOKEN = 6.0
"""k in C = k N D: 2 forward + 4 backward FLOPs per parameter and token (Kaplan et al. 2020 §2.1)."""


def flops_6nd(N, D, k: float = FLOPS_PER_PARAM_TOKEN):
    """Training FLOPs C = k N D (numbers or numpy arrays)."""
    return k * N * D


def tokens_for_flops(C, N, k: float = FLOPS_PER_PARAM_TOKEN):
    """Training tokens D = C / (k N): the data a model of N parameters sees on a budget of C FLOPs."""
    return C / (k * N)


def params_for_flops(C, D, k: float = FLOPS_PER_PARAM_TOKEN):
    """Model size N = C / (k D)."""
    return C / (k * D)


def convention_of_column(column: str) -> str | None:
    """'params' -> 'total', 'params_nonembedding' -> 'nonembedding', any other column -> None."""
    return {v: k for k, v in N_CONVENTION_COLUMNS.items()}.get(column)

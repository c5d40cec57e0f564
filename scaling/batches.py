"""The batches a run reads from a prepared corpus (`scaling.token_data.TokenData`).

`TokenStream` serves a run its training batches: non-overlapping windows of `context + 1` tokens, in a
seeded permutation per epoch, read from the token file (`os.pread`, so resident memory does not grow
with the corpus); its position is a `state_dict`, so a resumed run sees exactly the tokens it would
have seen, and a run longer than the corpus repeats it (`epochs` > 1). `val_batches` is the fixed
validation set evaluated at every eval.
"""

from __future__ import annotations

import mmap
import os
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from scaling.errors import DataError
from scaling.token_data import TokenData

if TYPE_CHECKING:  # torch is imported where batches are made: preparing a corpus does not need it
    import torch


class TokenStream:
    """Deterministic, resumable training batches from a token array (usually `TokenData.train_tokens()`).

    The array is cut into ``W = (len(tokens) - 1) // context`` non-overlapping windows of
    ``context + 1`` tokens (window k starts at ``k * context``; x is its first `context` tokens, y the
    last `context`, so every token is a target exactly once per epoch). Epoch e visits the windows in
    the order ``np.random.default_rng([seed, e]).permutation(W)``; the stream is one global sequence of
    windows, epoch after epoch. Each `next_batch` takes the next ``batch_size * world_size`` windows of
    that sequence, of which rank r reads the r-th block of `batch_size`, so DDP ranks see disjoint
    windows and share one position.

    `state_dict()` is that position (plus what it depends on), the same on every rank; loading it into
    a fresh stream resumes exactly. `tokens_consumed` and `epochs` count all ranks together:
    ``epochs = tokens_consumed / len(tokens)``, above 1 once the run repeats the corpus.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        *,
        context: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if context < 1 or batch_size < 1:
            raise ValueError(f"context {context} and batch_size {batch_size} must be positive")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size {world_size})")
        self.tokens = tokens
        self._reader = _TokenReader(tokens)
        self.context = context
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.n_windows = (len(tokens) - 1) // context
        if self.n_windows < 1:
            raise DataError(
                f"data: the train split has {len(tokens)} tokens, fewer than context + 1 = {context + 1}; "
                f"use a bigger corpus or a shorter context"
            )
        self.position = 0  # windows consumed so far, all ranks together
        self._perms: dict[int, np.ndarray] = {}

    @property
    def tokens_consumed(self) -> int:
        """Training tokens served so far (x positions, all ranks)."""
        return self.position * self.context

    @property
    def epochs(self) -> float:
        """Passes over the train split so far: ``tokens_consumed / len(tokens)``."""
        return self.tokens_consumed / len(self.tokens)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``(x, y)``, each ``(batch_size, context)`` int64, y = x shifted by one token."""
        first = self.position + self.rank * self.batch_size
        t = self.context
        buf = np.empty((self.batch_size, t + 1), dtype=np.int64)
        for row, g in enumerate(range(first, first + self.batch_size)):
            buf[row] = self._reader.read(self._window_start(g), t + 1)
        self.position += self.batch_size * self.world_size
        return _tensor_pair(buf)

    def state_dict(self) -> dict[str, int]:
        """The stream's position (plain ints: JSON- and `torch.load(weights_only=True)`-safe)."""
        return {
            "position": self.position,
            "seed": self.seed,
            "context": self.context,
            "n_tokens": len(self.tokens),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at a saved position; DataError if it was saved for other tokens, context or seed."""
        for key, mine in (("n_tokens", len(self.tokens)), ("context", self.context), ("seed", self.seed)):
            if key in state and int(state[key]) != mine:
                raise DataError(f"data: stream state was saved with {key} {int(state[key])}, this stream has {mine}")
        self.position = int(state["position"])

    def _window_start(self, g: int) -> int:
        epoch, i = divmod(g, self.n_windows)
        perm = self._perms.get(epoch)
        if perm is None:
            if len(self._perms) >= 2:
                self._perms.pop(min(self._perms))
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_windows)
            self._perms[epoch] = perm
        return int(perm[i]) * self.context


def _tensor_pair(windows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) int64 tensors from ``(B, context + 1)`` windows: y is x shifted left by one token."""
    import torch

    return torch.from_numpy(windows[:, :-1].copy()), torch.from_numpy(windows[:, 1:].copy())


class _TokenReader:
    """Reads windows of a token array. For a whole-file `np.memmap` (what `TokenData` returns) it reads
    the file with `os.pread` instead of touching the mapping: the kernel maps up to 64 KiB around every
    page fault, so random windows read through the mapping would pull most of a corpus file into the
    process's RSS; read this way, RSS stays flat however large the corpus."""

    def __init__(self, tokens: np.ndarray) -> None:
        self.tokens = tokens
        self.fd: int | None = None
        whole_file = isinstance(tokens, np.memmap) and isinstance(tokens.base, mmap.mmap) and tokens.ndim == 1
        if whole_file and tokens.filename:
            self.fd = os.open(tokens.filename, os.O_RDONLY)
            weakref.finalize(self, os.close, self.fd)
            self.offset = int(tokens.offset)
            self.itemsize = tokens.dtype.itemsize

    def read(self, start: int, n: int) -> np.ndarray:
        """``tokens[start : start + n]`` as an in-memory array."""
        if self.fd is None:
            return np.asarray(self.tokens[start : start + n])
        raw = os.pread(self.fd, n * self.itemsize, self.offset + start * self.itemsize)
        return np.frombuffer(raw, dtype=self.tokens.dtype)


def val_batches(
    data: TokenData, *, context: int, n_tokens: int, batch_size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed validation set: the same windows at every evaluation, ``(x, y)`` int64 batches.

    ``n = max(1, n_tokens // context)`` windows of ``context + 1`` tokens, spread evenly over the
    validation split's non-overlapping windows (all of them when it holds fewer), in order, grouped
    into batches of `batch_size` (the last may be smaller: weight batch losses by their size).
    """
    tokens = data.val_tokens()
    reader = _TokenReader(tokens)
    available = (len(tokens) - 1) // context
    if available < 1:
        raise DataError(
            f"data: the validation split has {len(tokens)} tokens, fewer than context + 1 = {context + 1}; "
            f"raise data.val_fraction or use a bigger corpus"
        )
    n = min(available, max(1, n_tokens // context))
    picks = (np.arange(n, dtype=np.int64) * available) // n
    batches = []
    for lo in range(0, n, batch_size):
        starts = picks[lo : lo + batch_size] * context
        buf = np.stack([reader.read(s, context + 1).astype(np.int64) for s in starts])
        batches.append(_tensor_pair(buf))
    return batches

"""A prepared corpus, as `scaling.data.prepare_data` leaves it on disk: `TokenData` says where its token
files are and what they hold, and memory-maps them (nothing is read until sliced)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scaling.damage import DamagedStateError, check_fields, read_state_json
from scaling.errors import DataError

#: what every prepared corpus's meta.json holds
_META_FIELDS = {"vocab_size": int, "dtype": str, "eot_id": int, "n_train_tokens": int, "n_val_tokens": int,
                "n_train_docs": int, "n_val_docs": int, "fingerprint": str, "unigram_entropy": (int, float),
                "bytes_per_token": (int, float)}



class DamagedCacheError(DamagedStateError, DataError):
    """A prepared corpus in the token cache is damaged (a truncated token file, an unreadable meta.json)."""


@dataclass(frozen=True)
class TokenData:
    """A prepared corpus: where its token files are and what they hold. Cheap to pickle (Ray)."""

    root: Path
    vocab_size: int
    dtype: str  # "uint16" | "uint32"
    eot_id: int
    n_train_tokens: int
    n_val_tokens: int
    n_train_docs: int
    n_val_docs: int
    fingerprint: str
    unigram_entropy: float  # nats/token of the train tokens: the loss of the best context-free model
    bytes_per_token: float  # UTF-8 bytes of text per token (separators included), whole corpus
    n_bytes: int = 0  # UTF-8 bytes of text, whole corpus
    tokenizer_vocab_size: int = 0  # tokens the BPE actually learned (<= vocab_size on a tiny corpus)
    tokenizer_train_bytes: int = 0  # bytes of train text the BPE was trained on (see tokenizer_max_bytes)
    val_bytes: int = 0  # UTF-8 bytes of the validation documents (0: a cache older than this field)
    tokenizer_source: str | None = None  # the given tokenizer.json (None: the corpus's own BPE)
    tokenizer_hash: str | None = None  # BLAKE2b of that file's bytes

    @property
    def val_bytes_per_token(self) -> float | None:
        """UTF-8 bytes of validation text per validation token (separators included): loss [nats/token] /
        (ln 2 x this) is bits per byte."""
        return self.val_bytes / self.n_val_tokens if self.val_bytes and self.n_val_tokens else None

    def train_tokens(self) -> np.memmap:
        """The train split, read-only, memory-mapped (nothing is loaded until sliced)."""
        return self._tokens("train.bin", self.n_train_tokens)

    def val_tokens(self) -> np.memmap:
        """The validation split, read-only, memory-mapped."""
        return self._tokens("val.bin", self.n_val_tokens)

    def tokenizer(self):
        """The trained `tokenizers.Tokenizer` (decode with ``tokenizer().decode(ids)``)."""
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.root / "tokenizer.json"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (root as a string)."""
        d = asdict(self)
        d["root"] = str(self.root)
        return d

    @classmethod
    def load(cls, root: str | Path) -> "TokenData":
        """Open a prepared folder (one `prepare_data` wrote); DataError when it is missing, a
        `DamagedStateError` (delete the cache entry) when its meta.json or a token file is damaged."""
        root = Path(root)
        if not (root / "meta.json").exists() and not (root / "meta.json").is_symlink():
            raise DataError(f"data: {root}: not a prepared corpus (no meta.json)")
        remedy = f"delete the cache entry {root} and it is prepared again on the next run"
        try:
            meta = read_state_json(root / "meta.json", remedy, kind="prepared corpus meta")
            check_fields(root / "meta.json", meta, _META_FIELDS, remedy)
        except DamagedStateError as exc:
            raise DamagedCacheError(exc.path, exc.problem, exc.remedy) from None
        if meta["dtype"] not in ("uint16", "uint32"):
            raise DamagedCacheError(root / "meta.json", f"damaged (dtype {meta['dtype']!r})", remedy)
        fields = {k: meta[k] for k in cls.__dataclass_fields__ if k in meta and k != "root"}
        data = cls(root=root, **fields)
        itemsize = np.dtype(data.dtype).itemsize
        for name, n in (("train.bin", data.n_train_tokens), ("val.bin", data.n_val_tokens)):
            path = root / name
            size = path.stat().st_size if path.is_file() else -1
            if size != n * itemsize:
                found = "missing (the entry is incomplete)" if size < 0 else \
                    f"{size} bytes, expected {n * itemsize} ({n} {data.dtype} tokens): truncated or damaged"
                raise DamagedCacheError(path, found, remedy)
        return data

    def _tokens(self, name: str, n: int) -> np.memmap:
        return np.memmap(self.root / name, dtype=self.dtype, mode="r", shape=(n,))

"""Corpus -> tokens: a byte-level BPE tokenizer, token memmaps on disk, and the batches a run reads.

`prepare_data(cfg)` turns a corpus (`scaling.corpus`) into a cached folder

    <cache>/tokens/<fingerprint>/
        tokenizer.json   byte-level BPE (HF `tokenizers`), vocab_size tokens, 256-byte alphabet + <|endoftext|>
        train.bin        uint16 tokens (uint32 when vocab_size > 65,536), documents joined by <|endoftext|>
        val.bin          the same for the held-out documents
        meta.json        counts, dtype, fingerprint, unigram entropy, bytes per token (written last)

in two streaming passes and a rename (nothing holds the corpus or its tokens whole in memory):

1. read the documents once, assign each to train or validation (seeded, BY DOCUMENT, never slicing
   one) and train the BPE on the train documents -- on a seeded sample of about
   `DataConfig.tokenizer_max_bytes` of them when there are more, so BPE time and memory stay bounded;
2. read them again and encode them in chunks with `Tokenizer.encode_batch`, appending each chunk to
   train.bin or val.bin, counting train tokens for the unigram entropy;
3. write meta.json, then atomically rename the finished temporary folder into place.

The folder name is the fingerprint: a BLAKE2b hash of every corpus file's bytes (in order) and of the
settings that change the tokens (vocab size, split, byte limits, text field), so an edited corpus is
re-tokenised and an unchanged one is prepared once. Two processes preparing the same folder at once
(two Ray trials on one node) serialise on a file lock; the loser finds the folder ready and loads it.

`TokenStream` serves a run its training batches: non-overlapping windows of `context + 1` tokens, in a
seeded permutation per epoch, read from the token file (`os.pread`, so resident memory does not grow
with the corpus); its position is a `state_dict`, so a resumed run sees exactly the tokens it would
have seen, and a run longer than the corpus repeats it (`epochs` > 1). `val_batches` is the fixed
validation set evaluated at every eval.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import mmap
import os
import random
import shutil
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported where batches are made: preparing a corpus does not need it
    import torch

from scaling.config import DataConfig
from scaling.corpus import Document, default_corpus_files, file_digest, file_kind, iter_documents, resolve_corpus
from scaling.errors import DataError

__all__ = [
    "EOT",
    "MIN_VOCAB",
    "bits_per_byte",
    "TokenData",
    "TokenStream",
    "cache_root",
    "corpus_fingerprint",
    "default_corpus_files",
    "prepare_data",
    "resolve_corpus",
    "val_batches",
]

#: The special token appended after every document (GPT-2's spelling).
EOT = "<|endoftext|>"
SPECIAL_TOKENS = (EOT,)
#: The smallest vocabulary: every byte, plus the special tokens.
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)
#: Bumped whenever the on-disk layout or the tokenisation recipe changes (invalidates old caches).
FORMAT_VERSION = 1
#: Encode this many bytes of text per `encode_batch` call: enough documents to keep every core busy,
#: few enough that the encodings (~40 bytes of Python/Rust objects per byte of text) stay small.
_ENCODE_CHUNK_BYTES = 1 << 20
_TRAIN_BATCH_DOCS = 256


def cache_root(cfg: DataConfig | None = None) -> Path:
    """Where prepared corpora live: `cfg.cache_dir`, else ``$SCALING_CACHE``, else ``~/.cache/scaling``."""
    if cfg is not None and cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    env = os.environ.get("SCALING_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scaling"


def _split_settings(cfg: DataConfig) -> dict[str, Any]:
    """The settings that change the tokens (everything of DataConfig except where files live)."""
    return {
        "format": FORMAT_VERSION,
        "vocab_size": cfg.vocab_size,
        "val_fraction": cfg.val_fraction,
        "split_seed": cfg.split_seed,
        "text_field": cfg.text_field,
        "max_bytes": cfg.max_bytes,
        "doc_max_bytes": cfg.doc_max_bytes,
        "tokenizer_max_bytes": cfg.tokenizer_max_bytes,
    }


def corpus_fingerprint(cfg: DataConfig, files: Sequence[Path] | None = None) -> str:
    """BLAKE2b (32 hex digits) of the settings and of each file's kind and bytes, in corpus order.

    File names are left out on purpose: a moved but unchanged corpus keeps its fingerprint.
    """
    if files is None:
        files = resolve_corpus(cfg.corpus)
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(_split_settings(cfg), sort_keys=True).encode())
    for path in files:
        try:
            digest = file_digest(path)
        except OSError as exc:
            raise DataError(f"corpus: {path}: cannot read: {exc.strerror or exc}") from None
        h.update(f"{file_kind(path)}:{digest}\n".encode())
    return h.hexdigest()


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
        """Open a prepared folder (one `prepare_data` wrote); DataError when it is missing or incomplete."""
        root = Path(root)
        meta_path = root / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise DataError(f"data: {root}: not a prepared corpus (no meta.json)") from None
        except ValueError as exc:
            raise DataError(f"data: {meta_path}: unreadable: {exc}") from None
        fields = {k: meta[k] for k in cls.__dataclass_fields__ if k in meta and k != "root"}
        data = cls(root=root, **fields)
        itemsize = np.dtype(data.dtype).itemsize
        for name, n in (("train.bin", data.n_train_tokens), ("val.bin", data.n_val_tokens)):
            path = root / name
            size = path.stat().st_size if path.exists() else -1
            if size != n * itemsize:
                raise DataError(f"data: {path}: {size} bytes, expected {n * itemsize} ({n} {data.dtype} tokens)")
        return data

    def _tokens(self, name: str, n: int) -> np.memmap:
        return np.memmap(self.root / name, dtype=self.dtype, mode="r", shape=(n,))


def prepare_data(cfg: DataConfig, *, progress: bool = True) -> TokenData:
    """Tokenise `cfg.corpus` (or the default corpus) once and return the cached `TokenData`.

    Idempotent: a second call with the same corpus bytes and settings loads the cache in well under a
    second. Safe when several processes call it at once: they serialise on ``<key>.lock`` and the
    folder appears by atomic rename, complete or not at all.
    """
    if cfg.vocab_size < MIN_VOCAB:
        raise DataError(
            f"data.vocab_size: {cfg.vocab_size} is too small: a byte-level BPE needs at least {MIN_VOCAB} "
            f"(256 bytes + {len(SPECIAL_TOKENS)} special token)"
        )
    files = resolve_corpus(cfg.corpus)
    fingerprint = corpus_fingerprint(cfg, files)
    base = cache_root(cfg) / "tokens"
    final = base / fingerprint
    if (final / "meta.json").exists():
        return TokenData.load(final)
    base.mkdir(parents=True, exist_ok=True)
    with _file_lock(base / f"{fingerprint}.lock", progress=progress):
        if (final / "meta.json").exists():  # another process finished it while we waited
            return TokenData.load(final)
        for stale in base.glob(f".{fingerprint}.tmp-*"):  # left by a process that died holding the lock
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{fingerprint}.tmp-", dir=base))
        try:
            _build(tmp, cfg, files, fingerprint, progress=progress)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return TokenData.load(final)


@contextlib.contextmanager
def _file_lock(path: Path, *, progress: bool) -> Iterator[None]:
    """An exclusive `flock` on `path` (released by the OS if the holder dies)."""
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                print(f"data: waiting for another process preparing {path.with_suffix('')}", file=sys.stderr)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _describe(cfg: DataConfig) -> str:
    return ", ".join(cfg.corpus) if cfg.corpus else "default corpus (Python standard library)"


def _documents(cfg: DataConfig, files: Sequence[Path]) -> Iterator[tuple[Document, int]]:
    """The corpus's documents and their UTF-8 sizes, in order, stopping before `cfg.max_bytes` is exceeded."""
    total = 0
    for doc in iter_documents(files, text_field=cfg.text_field, doc_max_bytes=cfg.doc_max_bytes):
        size = len(doc.text.encode("utf-8"))
        total += size
        if cfg.max_bytes is not None and total > cfg.max_bytes:
            if total == size:
                raise DataError(f"data.max_bytes: {cfg.max_bytes} is smaller than the first document ({doc.source})")
            return
        yield doc, size


def _new_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def _progress_bar(progress: bool, desc: str, total: int | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, disable=not progress, leave=False)


def _build(tmp: Path, cfg: DataConfig, files: Sequence[Path], fingerprint: str, *, progress: bool) -> None:
    """Write tokenizer.json, train.bin, val.bin and (last) meta.json into `tmp`."""
    t0 = time.perf_counter()
    tok, is_val, n_bytes, tokenizer_bytes = _split_and_train_tokenizer(cfg, files, progress=progress)
    tok.save(str(tmp / "tokenizer.json"))
    eot_id = tok.token_to_id(EOT)
    dtype = np.dtype(np.uint16 if cfg.vocab_size <= 2**16 else np.uint32)
    n_tokens, n_docs, counts = _encode_splits(tmp, cfg, files, tok, is_val, dtype, progress=progress, n_bytes=n_bytes)
    p = counts[counts > 0] / n_tokens["train"]
    meta = {
        "vocab_size": cfg.vocab_size,
        "dtype": dtype.name,
        "eot_id": eot_id,
        "n_train_tokens": n_tokens["train"],
        "n_val_tokens": n_tokens["val"],
        "n_train_docs": n_docs["train"],
        "n_val_docs": n_docs["val"],
        "fingerprint": fingerprint,
        "unigram_entropy": float(-(p * np.log(p)).sum()),
        "bytes_per_token": n_bytes / (n_tokens["train"] + n_tokens["val"]),
        "n_bytes": n_bytes,
        "tokenizer_vocab_size": tok.get_vocab_size(),
        "tokenizer_train_bytes": tokenizer_bytes,
        "corpus": list(cfg.corpus) or "default",
        "n_files": len(files),
        "settings": _split_settings(cfg),
        "tokenizers_version": _tokenizers_version(),
        "prepare_s": round(time.perf_counter() - t0, 3),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def _split_and_train_tokenizer(cfg: DataConfig, files: Sequence[Path], *, progress: bool):
    """Pass 1: assign each document to train/val (seeded, by document) and train the BPE on train text.

    Document i goes to validation when the i-th draw of ``random.Random(split_seed)`` is below
    `val_fraction`. The BPE sees each train document with probability ``tokenizer_max_bytes / corpus
    bytes`` (a second seeded stream; file sizes estimate the corpus bytes) until it has seen
    `tokenizer_max_bytes`. Returns (tokenizer, is_val per document, corpus bytes, BPE bytes).
    """
    from tokenizers import trainers
    from tokenizers.pre_tokenizers import ByteLevel

    total_hint = sum(p.stat().st_size for p in files)
    if cfg.max_bytes is not None:
        total_hint = min(total_hint, cfg.max_bytes)
    cap = cfg.tokenizer_max_bytes
    keep_p = 1.0 if cap is None or total_hint <= cap else cap / total_hint
    split_rng = random.Random(cfg.split_seed)
    sample_rng = random.Random(f"tokenizer-sample-{cfg.split_seed}")
    is_val = bytearray()
    n_bytes = tokenizer_bytes = 0
    bar = _progress_bar(progress, "data: training tokenizer", total_hint)

    def train_texts() -> Iterator[list[str]]:
        nonlocal n_bytes, tokenizer_bytes
        batch: list[str] = []
        for doc, size in _documents(cfg, files):
            val = split_rng.random() < cfg.val_fraction
            is_val.append(val)
            n_bytes += size
            bar.update(size)
            if not val and sample_rng.random() < keep_p and (cap is None or tokenizer_bytes < cap):
                batch.append(doc.text)
                tokenizer_bytes += size
                if len(batch) >= _TRAIN_BATCH_DOCS:
                    yield batch
                    batch = []
        if batch:
            yield batch
        bar.set_postfix_str("computing merges")

    tok = _new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=ByteLevel.alphabet(),
        show_progress=False,
    )
    with bar:
        tok.train_from_iterator(train_texts(), trainer)
    n_docs = len(is_val)
    if n_docs == 0:
        raise DataError(f"corpus: {_describe(cfg)} holds no text ({len(files)} files, all empty or binary)")
    if n_docs < 2:
        raise DataError(
            f"corpus: {_describe(cfg)} is a single document; the validation split holds out whole documents: "
            f"set data.doc_max_bytes (`scaling train --doc-max-bytes`, e.g. 65536) to cut it into documents at line boundaries"
        )
    # Too few documents for val_fraction to pick one: hold one out anyway (the tokenizer has seen it;
    # with so few documents that is the lesser evil). And never hold out all of them.
    if not any(is_val):
        is_val[random.Random(cfg.split_seed).randrange(n_docs)] = 1
    if all(is_val):
        is_val[random.Random(cfg.split_seed).randrange(n_docs)] = 0
    assert tok.get_vocab_size() <= cfg.vocab_size and tok.token_to_id(EOT) is not None
    return tok, is_val, n_bytes, tokenizer_bytes


def _encode_splits(tmp: Path, cfg: DataConfig, files: Sequence[Path], tok, is_val: bytearray, dtype: np.dtype,
                   *, progress: bool, n_bytes: int):
    """Pass 2: encode the documents in ~1 MB chunks, appending ``ids + [EOT]`` to train.bin / val.bin.

    Returns (tokens per split, documents per split, unigram counts of the train tokens).
    """
    eot_id = tok.token_to_id(EOT)
    encode_batch = getattr(tok, "encode_batch_fast", tok.encode_batch)  # same ids, no offsets (tokenizers >= 0.21)
    counts = np.zeros(cfg.vocab_size, dtype=np.int64)
    n_tokens = {"train": 0, "val": 0}
    n_docs = {"train": 0, "val": 0}
    pending: dict[str, list[str]] = {"train": [], "val": []}

    def flush(split: str, out) -> None:
        texts = pending[split]
        if not texts:
            return
        encodings = encode_batch(texts, add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) + 1 for e in encodings), dtype=np.int64, count=len(encodings))
        ends = np.cumsum(lengths)
        ids = np.empty(int(ends[-1]), dtype=dtype)
        ids[ends - 1] = eot_id
        for e, end, n in zip(encodings, ends, lengths):
            ids[end - n : end - 1] = e.ids
        out.write(ids.tobytes())
        n_tokens[split] += len(ids)
        n_docs[split] += len(texts)
        if split == "train":
            counts[:] += np.bincount(ids, minlength=cfg.vocab_size)
        texts.clear()

    index = -1
    with open(tmp / "train.bin", "wb") as train_out, open(tmp / "val.bin", "wb") as val_out, \
            _progress_bar(progress, "data: encoding", n_bytes) as bar:
        outs = {"train": train_out, "val": val_out}
        pending_bytes = 0
        for index, (doc, size) in enumerate(_documents(cfg, files)):
            if index >= len(is_val):
                break
            pending["val" if is_val[index] else "train"].append(doc.text)
            pending_bytes += size
            bar.update(size)
            if pending_bytes >= _ENCODE_CHUNK_BYTES:
                for split, out in outs.items():
                    flush(split, out)
                pending_bytes = 0
        for split, out in outs.items():
            flush(split, out)
    if index + 1 != len(is_val):
        raise DataError(
            f"corpus: {_describe(cfg)} changed while being prepared ({len(is_val)} documents, then {index + 1})"
        )
    return n_tokens, n_docs, counts


def _tokenizers_version() -> str:
    import tokenizers

    return tokenizers.__version__


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


def bits_per_byte(loss_nats_per_token: float, data: TokenData) -> float:
    """Convert a loss in nats/token to bits/byte of text: ``loss / ln 2 / bytes_per_token``."""
    return loss_nats_per_token / math.log(2) / data.bytes_per_token

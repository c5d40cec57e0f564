"""Corpus -> tokens: `prepare_data` tokenises a corpus once into a cached folder, `TokenData` opens it.

`prepare_data(cfg)` turns a corpus (`scaling.corpus`) into a cached folder

    <cache>/tokens/<fingerprint>/
        tokenizer.json   byte-level BPE (HF `tokenizers`), vocab_size tokens, 256-byte alphabet + <|endoftext|>;
                         or a copy of the given `DataConfig.tokenizer` (e.g. GPT-2's), whose hash is in the key
        train.bin        uint16 tokens (uint32 when vocab_size > 65,536), documents joined by <|endoftext|>
        val.bin          the same for the held-out documents
        meta.json        counts, dtype, fingerprint, unigram entropy, bytes per token (whole corpus and
                         validation split, for bits per byte), tokenizer source and hash (written last)

in two streaming passes (`scaling.bpe`: split and train the BPE, then encode), then writes meta.json
and atomically renames the finished temporary folder into place.

The folder name is the fingerprint: a BLAKE2b hash of every corpus file's bytes (in order) and of the
settings that change the tokens (vocab size, split, byte limits, text field), so an edited corpus is
re-tokenised and an unchanged one is prepared once. Two processes preparing the same folder at once
(two Ray trials on one node) serialise on a file lock; the loser finds the folder ready and loads it.

`TokenData` (`scaling.token_data`) is a prepared folder; a run reads its batches with `TokenStream` and
`val_batches` (`scaling.batches`). All three are importable from here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from contracts.jsonio import write_atomic
from scaling.batches import TokenStream, val_batches
from scaling.bpe import EOT, EOT_CANDIDATES, MIN_VOCAB, SPECIAL_TOKENS, encode_splits, split_and_train, tokenizers_version
from scaling.config import DataConfig
from scaling.corpus import default_corpus_files, file_digest, file_kind, resolve_corpus
from scaling.errors import DataError
from scaling.token_data import TokenData

__all__ = [
    "EOT",
    "MIN_VOCAB",
    "TokenData",
    "TokenStream",
    "cache_root",
    "corpus_fingerprint",
    "default_corpus_files",
    "prepare_data",
    "resolve_corpus",
    "val_batches",
]

#: Bumped whenever the on-disk layout or the tokenisation recipe changes (invalidates old caches).
FORMAT_VERSION = 2  # 2: validation bytes (bits per byte) and a given tokenizer in meta.json


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
        "tokenizer_max_bytes": None if cfg.tokenizer else cfg.tokenizer_max_bytes,
        "tokenizer": tokenizer_digest(cfg),
    }


def tokenizer_digest(cfg: DataConfig) -> str | None:
    """BLAKE2b of the given tokenizer.json's bytes (None: the corpus's own BPE); recorded in every run."""
    if not cfg.tokenizer:
        return None
    path = Path(cfg.tokenizer).expanduser()
    try:
        return file_digest(path)
    except OSError as exc:
        raise DataError(f"data.tokenizer: {cfg.tokenizer}: cannot read: {exc.strerror or exc}") from None


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


def _build(tmp: Path, cfg: DataConfig, files: Sequence[Path], fingerprint: str, *, progress: bool) -> None:
    """Write tokenizer.json, train.bin, val.bin and (last) meta.json into `tmp`."""
    t0 = time.perf_counter()
    tok, is_val, n_bytes, tokenizer_bytes = split_and_train(cfg, files, progress=progress)
    tok.save(str(tmp / "tokenizer.json"))
    eot_id = next(tok.token_to_id(t) for t in EOT_CANDIDATES if tok.token_to_id(t) is not None)
    dtype = np.dtype(np.uint16 if cfg.vocab_size <= 2**16 else np.uint32)
    n_tokens, n_docs, split_bytes, counts = encode_splits(tmp, cfg, files, tok, is_val, dtype, progress=progress,
                                                          n_bytes=n_bytes)
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
        "val_bytes": split_bytes["val"],
        "tokenizer_source": str(cfg.tokenizer) if cfg.tokenizer else None,
        "tokenizer_hash": tokenizer_digest(cfg),
        "tokenizer_vocab_size": tok.get_vocab_size(),
        "tokenizer_train_bytes": tokenizer_bytes,
        "corpus": list(cfg.corpus) or "default",
        "n_files": len(files),
        "settings": _split_settings(cfg),
        "tokenizers_version": tokenizers_version(),
        "prepare_s": round(time.perf_counter() - t0, 3),
    }
    write_atomic(tmp / "meta.json", json.dumps(meta, indent=1) + "\n")

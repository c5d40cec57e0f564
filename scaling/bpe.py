"""The byte-level BPE of a corpus: the two streaming passes of `scaling.data.prepare_data`.

1. `split_and_train` reads the documents once, assigns each to train or validation (seeded, BY
   DOCUMENT, never slicing one) and trains the BPE (HF `tokenizers`) on the train documents -- on a
   seeded sample of about `DataConfig.tokenizer_max_bytes` of them when there are more, so BPE time
   and memory stay bounded;
2. `encode_splits` reads them again and encodes them in chunks with `Tokenizer.encode_batch`,
   appending each chunk to train.bin or val.bin, counting train tokens for the unigram entropy.

Neither pass holds the corpus or its tokens whole in memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from scaling.config import DataConfig
from scaling.corpus import Document, entry_size, iter_documents
from scaling.errors import DataError

#: The special token appended after every document (GPT-2's spelling).
EOT = "<|endoftext|>"
SPECIAL_TOKENS = (EOT,)
#: The smallest vocabulary: every byte, plus the special tokens.
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)
#: Encode this many bytes of text per `encode_batch` call: enough documents to keep every core busy,
#: few enough that the encodings (~40 bytes of Python/Rust objects per byte of text) stay small.
_ENCODE_CHUNK_BYTES = 1 << 20
_TRAIN_BATCH_DOCS = 256


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


#: End-of-document tokens looked for in a given tokenizer.json, in this order (GPT-2, Llama 3, T5/Llama 2).
EOT_CANDIDATES = (EOT, "<|end_of_text|>", "</s>", "<eos>", "<|eos|>")


def load_tokenizer(path: str):
    """An HF `tokenizers.Tokenizer` from a tokenizer.json, and its end-of-document token (DataError if none)."""
    from tokenizers import Tokenizer

    file = Path(path).expanduser()
    try:
        tok = Tokenizer.from_file(str(file))
    except FileNotFoundError:
        raise DataError(f"data.tokenizer: {path}: no such file") from None
    except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
        raise DataError(f"data.tokenizer: {path}: not a tokenizers tokenizer.json ({str(exc)[:120]})") from None
    eot = next((t for t in EOT_CANDIDATES if tok.token_to_id(t) is not None), None)
    if eot is None:
        raise DataError(f"data.tokenizer: {path}: has none of the end-of-document tokens {', '.join(EOT_CANDIDATES)}")
    if tok.get_vocab_size() > 2**32 - 1:
        raise DataError(f"data.tokenizer: {path}: {tok.get_vocab_size()} tokens do not fit in uint32")
    return tok, eot


def split_and_train(cfg: DataConfig, files: Sequence[Path], *, progress: bool):
    """Pass 1: assign each document to train/val (seeded, by document) and train the BPE on train text.

    Document i goes to validation when the i-th draw of ``random.Random(split_seed)`` is below
    `val_fraction`. The BPE sees each train document with probability ``tokenizer_max_bytes / corpus
    bytes`` (a second seeded stream; file sizes estimate the corpus bytes) until it has seen
    `tokenizer_max_bytes`. Returns (tokenizer, is_val per document, corpus bytes, BPE bytes).
    """
    from tokenizers import trainers
    from tokenizers.pre_tokenizers import ByteLevel

    total_hint = sum(entry_size(p) for p in files)
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

    if cfg.tokenizer:  # a given tokenizer: split only
        tok, _ = load_tokenizer(cfg.tokenizer)
        if tok.get_vocab_size() > cfg.vocab_size:
            raise DataError(f"data.vocab_size: {cfg.vocab_size} is smaller than the {tok.get_vocab_size()} tokens of "
                            f"data.tokenizer {cfg.tokenizer} (`--vocab-size {tok.get_vocab_size()}` or more)")
        keep_p = 0.0
        with bar:
            for _ in train_texts():
                pass
    else:
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
    return tok, is_val, n_bytes, tokenizer_bytes


def encode_splits(tmp: Path, cfg: DataConfig, files: Sequence[Path], tok, is_val: bytearray, dtype: np.dtype,
                   *, progress: bool, n_bytes: int):
    """Pass 2: encode the documents in ~1 MB chunks, appending ``ids + [EOT]`` to train.bin / val.bin.

    Returns (tokens per split, documents per split, UTF-8 bytes per split, unigram counts of the train tokens).
    """
    eot_id = next(tok.token_to_id(t) for t in EOT_CANDIDATES if tok.token_to_id(t) is not None)
    encode_batch = getattr(tok, "encode_batch_fast", tok.encode_batch)  # same ids, no offsets (tokenizers >= 0.21)
    counts = np.zeros(cfg.vocab_size, dtype=np.int64)
    n_tokens = {"train": 0, "val": 0}
    n_docs = {"train": 0, "val": 0}
    split_bytes = {"train": 0, "val": 0}
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
            split = "val" if is_val[index] else "train"
            pending[split].append(doc.text)
            split_bytes[split] += size
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
    return n_tokens, n_docs, split_bytes, counts


def tokenizers_version() -> str:
    import tokenizers

    return tokenizers.__version__

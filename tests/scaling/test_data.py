"""Corpus -> tokens: split by document, caching, fingerprints, dtypes, errors, concurrency; batches."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from scaling.config import DataConfig, parse_config
from scaling.corpus import default_corpus_files
from scaling.data import EOT, TokenData, TokenStream, cache_root, prepare_data, val_batches
from scaling.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """80 real documents: small stdlib modules (about 250 KB of text in all)."""
    small = [f for f in default_corpus_files() if 1000 < f.stat().st_size < 6000]
    return [f.read_text(encoding="utf-8", errors="replace") for f in small[:80]]


def _jsonl(path: Path, docs: list[str], field: str = "text") -> Path:
    path.write_text("".join(json.dumps({field: d}) + "\n" for d in docs), encoding="utf-8")
    return path


def _cfg(tmp_path: Path, corpus: list[str], **kw) -> DataConfig:
    kw.setdefault("vocab_size", 300)
    kw.setdefault("val_fraction", 0.1)
    return DataConfig(corpus=tuple(corpus), cache_dir=str(tmp_path / "cache"), **kw)


def _decode_docs(data: TokenData, tokens: np.ndarray) -> list[str]:
    """Split a token array at <|endoftext|> and decode each document."""
    tok = data.tokenizer()
    ids = np.asarray(tokens, dtype=np.int64)
    ends = np.flatnonzero(ids == data.eot_id)
    assert len(ids) == 0 or ends[-1] == len(ids) - 1  # every document ends with the separator
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [tok.decode(ids[s:e].tolist()) for s, e in zip(starts, ends)]


@pytest.fixture(scope="module")
def small_data(texts, tmp_path_factory) -> TokenData:
    tmp = tmp_path_factory.mktemp("small")
    corpus = _jsonl(tmp / "docs.jsonl", texts)
    return prepare_data(_cfg(tmp, [str(corpus)]), progress=False)


def test_split_is_by_whole_document(small_data, texts):
    train = _decode_docs(small_data, small_data.train_tokens())
    val = _decode_docs(small_data, small_data.val_tokens())
    assert len(train) == small_data.n_train_docs and len(val) == small_data.n_val_docs
    assert small_data.n_train_docs + small_data.n_val_docs == len(texts)
    assert 1 <= len(val) < len(texts) // 2
    # every document is in exactly one split, whole and byte-exact; train keeps corpus order
    assert sorted(train + val) == sorted(texts)
    assert not set(train) & set(val)
    assert train == [t for t in texts if t in set(train)]
    assert small_data.tokenizer().token_to_id(EOT) == small_data.eot_id


def test_token_data_numbers(small_data, texts):
    train = np.asarray(small_data.train_tokens())
    val = np.asarray(small_data.val_tokens())
    assert small_data.dtype == "uint16" and train.dtype == np.uint16
    assert (len(train), len(val)) == (small_data.n_train_tokens, small_data.n_val_tokens)
    assert train.max() < small_data.vocab_size and small_data.tokenizer_vocab_size == 300
    p = np.bincount(train, minlength=300) / len(train)
    p = p[p > 0]
    assert small_data.unigram_entropy == pytest.approx(-(p * np.log(p)).sum(), rel=1e-9)
    assert 2.0 < small_data.unigram_entropy < math.log(300)
    n_bytes = sum(len(t.encode()) for t in texts)
    assert small_data.n_bytes == n_bytes
    assert small_data.bytes_per_token == pytest.approx(n_bytes / (len(train) + len(val)))
    assert 1.2 < small_data.bytes_per_token < 4
    assert TokenData.load(small_data.root) == small_data


def test_cache_reused_and_invalidated_by_edits(tmp_path, texts):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, t in enumerate(texts[:30]):
        (corpus / f"{i:02d}.py").write_text(t)
    cfg = _cfg(tmp_path, [str(corpus)])
    first = prepare_data(cfg, progress=False)
    meta_stat = (first.root / "meta.json").stat()
    again = prepare_data(cfg, progress=False)
    assert again == first
    assert (again.root / "meta.json").stat().st_mtime_ns == meta_stat.st_mtime_ns  # not rebuilt
    assert first.root.parent == cache_root(cfg) / "tokens"

    # a different split seed or vocab is another cache entry
    reseeded = prepare_data(cfg.model_copy(update={"split_seed": 1}), progress=False)
    assert reseeded.fingerprint != first.fingerprint
    assert reseeded.n_train_docs + reseeded.n_val_docs == first.n_train_docs + first.n_val_docs

    # editing one file changes the fingerprint and the tokens
    (corpus / "05.py").write_text(texts[5] + "\n# edited\n")
    edited = prepare_data(cfg, progress=False)
    assert edited.fingerprint != first.fingerprint and edited.root != first.root
    assert "# edited" in edited.tokenizer().decode(np.asarray(edited.train_tokens()).tolist() +
                                                    np.asarray(edited.val_tokens()).tolist())
    assert sorted(p.name for p in (tmp_path / "cache" / "tokens").iterdir() if p.is_dir()) == sorted(
        {first.fingerprint, reseeded.fingerprint, edited.fingerprint}
    )


def test_same_corpus_same_tokens_in_another_cache(tmp_path, texts):
    corpus = _jsonl(tmp_path / "d.jsonl", texts[:40])
    a = prepare_data(_cfg(tmp_path / "a", [str(corpus)]), progress=False)
    b = prepare_data(_cfg(tmp_path / "b", [str(corpus)]), progress=False)
    assert a.fingerprint == b.fingerprint
    assert (a.root / "train.bin").read_bytes() == (b.root / "train.bin").read_bytes()
    assert (a.root / "tokenizer.json").read_bytes() == (b.root / "tokenizer.json").read_bytes()


def test_parquet_corpus_and_uint32_for_big_vocab(tmp_path, texts):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"content": texts[:40]}), path, row_group_size=16)
    data = prepare_data(_cfg(tmp_path, [str(path)], vocab_size=70_000, text_field="content"), progress=False)
    assert data.dtype == "uint32" and data.train_tokens().dtype == np.uint32
    assert (data.root / "train.bin").stat().st_size == 4 * data.n_train_tokens
    assert data.tokenizer_vocab_size < 70_000  # a tiny corpus cannot fill it; ids still fit
    assert sorted(_decode_docs(data, data.train_tokens()) + _decode_docs(data, data.val_tokens())) == sorted(texts[:40])


def test_max_bytes_takes_the_first_documents(tmp_path, texts):
    corpus = _jsonl(tmp_path / "d.jsonl", texts)
    limit = sum(len(t.encode()) for t in texts[:25]) + 10
    data = prepare_data(_cfg(tmp_path, [str(corpus)], max_bytes=limit), progress=False)
    assert data.n_train_docs + data.n_val_docs == 25
    assert data.n_bytes == limit - 10
    with pytest.raises(DataError, match="max_bytes: 100 is smaller than the first document"):
        prepare_data(_cfg(tmp_path, [str(corpus)], max_bytes=100), progress=False)


def test_tokenizer_trains_on_a_bounded_sample(tmp_path, texts, small_data):
    corpus = _jsonl(tmp_path / "docs.jsonl", texts)
    n_train_bytes = sum(len(t.encode()) for t in _decode_docs(small_data, small_data.train_tokens()))
    assert small_data.tokenizer_train_bytes == n_train_bytes  # uncapped: every train document
    cap = 60_000
    sampled = prepare_data(_cfg(tmp_path, [str(corpus)], tokenizer_max_bytes=cap), progress=False)
    assert 20_000 < sampled.tokenizer_train_bytes < cap + max(len(t.encode()) for t in texts)
    assert sampled.fingerprint != small_data.fingerprint
    assert (sampled.n_train_docs, sampled.n_val_docs) == (small_data.n_train_docs, small_data.n_val_docs)
    assert sampled.tokenizer().get_vocab() != small_data.tokenizer().get_vocab()


def test_vocab_too_small_is_an_error(tmp_path, texts):
    corpus = _jsonl(tmp_path / "d.jsonl", texts[:5])
    with pytest.raises(ConfigError, match="vocab_size"):
        parse_config(DataConfig, {"vocab_size": 200})
    cfg = DataConfig.model_construct(**{**_cfg(tmp_path, [str(corpus)]).model_dump(), "vocab_size": 256})
    with pytest.raises(DataError, match=r"data.vocab_size: 256 is too small: a byte-level BPE needs at least 257"):
        prepare_data(cfg, progress=False)


def test_empty_and_single_document_corpora(tmp_path, texts):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("")
    (empty / "b.txt").write_text("")
    with pytest.raises(DataError, match=r"holds no text \(2 files"):
        prepare_data(_cfg(tmp_path, [str(empty)]), progress=False)

    book = tmp_path / "book.txt"
    book.write_text("".join(texts[:30]))
    with pytest.raises(DataError, match="single document.*doc_max_bytes"):
        prepare_data(_cfg(tmp_path, [str(book)]), progress=False)
    data = prepare_data(_cfg(tmp_path, [str(book)], doc_max_bytes=4096), progress=False)
    assert data.n_val_docs >= 1 and data.n_train_docs > 10
    joined = "".join(_decode_docs(data, data.train_tokens()) + _decode_docs(data, data.val_tokens()))
    assert sorted(joined) == sorted(book.read_text())  # every character kept, none duplicated


def test_too_few_documents_still_hold_one_out(tmp_path, texts):
    corpus = _jsonl(tmp_path / "d.jsonl", texts[:3])
    data = prepare_data(_cfg(tmp_path, [str(corpus)], val_fraction=0.01), progress=False)
    assert (data.n_train_docs, data.n_val_docs) == (2, 1)


def test_load_rejects_incomplete_folders(tmp_path, small_data):
    with pytest.raises(DataError, match="not a prepared corpus"):
        TokenData.load(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("meta.json", "tokenizer.json", "val.bin"):
        (broken / name).write_bytes((small_data.root / name).read_bytes())
    (broken / "train.bin").write_bytes((small_data.root / "train.bin").read_bytes()[:-2])
    with pytest.raises(DataError, match=r"train\.bin: \d+ bytes, expected"):
        TokenData.load(broken)


_RACE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from scaling.config import DataConfig
    from scaling.data import prepare_data
    corpus, cache, ready, go = sys.argv[1:5]
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.002)
    data = prepare_data(DataConfig(corpus=(corpus,), cache_dir=cache, vocab_size=400), progress=False)
    print(json.dumps({"root": str(data.root), "n": data.n_train_tokens}))
    """
)


def test_two_processes_preparing_the_same_cache(tmp_path, texts):
    corpus = _jsonl(tmp_path / "d.jsonl", texts)
    cache = tmp_path / "cache"
    go = tmp_path / "go"
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE_SCRIPT, str(corpus), str(cache), str(tmp_path / f"ready{i}"), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for i in range(2)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):  # both imported, spinning on `go`
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a child did not start"
        time.sleep(0.01)
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert outs[0] == outs[1]
    entries = sorted(p.name for p in (cache / "tokens").iterdir())
    fingerprint = Path(outs[0]["root"]).name
    assert entries == [fingerprint, f"{fingerprint}.lock"]  # no temporary folder left behind
    data = TokenData.load(outs[0]["root"])
    assert sorted(_decode_docs(data, data.train_tokens()) + _decode_docs(data, data.val_tokens())) == sorted(texts)


def test_stdlib_fixture(stdlib_data, stdlib_data_config):
    assert stdlib_data.vocab_size == 512 and stdlib_data.dtype == "uint16"
    assert stdlib_data.n_train_tokens > 1_000_000 and stdlib_data.n_val_tokens > 20_000
    assert 1.8 < stdlib_data.bytes_per_token < 2.6
    assert 4.0 < stdlib_data.unigram_entropy < math.log(512)
    assert prepare_data(stdlib_data_config, progress=False) == stdlib_data  # a cache hit


# ---------------------------------------------------------------- TokenStream and val_batches


def _tokens(n: int = 1000) -> np.ndarray:
    return np.arange(n, dtype=np.uint16)


def test_stream_batches_are_shifted_windows_covering_each_epoch_once():
    tokens = _tokens(1001)  # 1000 // 10 = 100 windows
    s = TokenStream(tokens, context=10, batch_size=4, seed=0)
    starts = []
    for _ in range(25):
        x, y = s.next_batch()
        assert x.shape == y.shape == (4, 10) and x.dtype == y.dtype == torch.int64
        assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)
        assert torch.all(x[:, 0] % 10 == 0)  # windows start on the grid (tokens = arange)
        starts.extend(x[:, 0].tolist())
    assert sorted(starts) == list(range(0, 1000, 10))  # one epoch = every window exactly once
    assert starts != sorted(starts)  # shuffled
    assert s.tokens_consumed == 1000 and s.epochs == pytest.approx(1000 / 1001)


def test_stream_is_deterministic_and_seeded():
    def run(seed):
        s = TokenStream(_tokens(), context=8, batch_size=3, seed=seed)
        return torch.cat([s.next_batch()[0] for _ in range(10)])

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_stream_resume_sees_the_same_tokens():
    full = TokenStream(_tokens(), context=16, batch_size=5, seed=3)
    expected = [full.next_batch() for _ in range(30)]  # crosses several epochs (61 windows each)
    first = TokenStream(_tokens(), context=16, batch_size=5, seed=3)
    for _ in range(13):
        first.next_batch()
    state = json.loads(json.dumps(first.state_dict()))  # plain ints survive JSON / weights_only loads
    resumed = TokenStream(_tokens(), context=16, batch_size=5, seed=3)
    resumed.load_state_dict(state)
    for x, y in expected[13:]:
        rx, ry = resumed.next_batch()
        assert torch.equal(rx, x) and torch.equal(ry, y)
    assert resumed.tokens_consumed == full.tokens_consumed and resumed.epochs == full.epochs


def test_stream_counts_epochs_when_the_run_outgrows_the_corpus():
    tokens = _tokens(401)  # 400 // 8 = 50 windows
    s = TokenStream(tokens, context=8, batch_size=16, seed=0)
    seen = []
    for _ in range(10):  # 160 windows = 3.2 epochs
        seen.extend(s.next_batch()[0][:, 0].tolist())
    assert s.tokens_consumed == 10 * 16 * 8
    assert s.epochs == pytest.approx(1280 / 401) and s.epochs > 3
    for e in range(3):  # each full epoch is a permutation of all windows, each in its own order
        assert sorted(seen[50 * e : 50 * (e + 1)]) == list(range(0, 400, 8))
    assert seen[:50] != seen[50:100]
    # a batch bigger than the whole corpus still works
    big = TokenStream(tokens, context=8, batch_size=120, seed=0)
    assert big.next_batch()[0].shape == (120, 8) and big.epochs > 2


def test_stream_ranks_read_disjoint_blocks_of_one_sequence():
    tokens = _tokens(2001)
    single = TokenStream(tokens, context=10, batch_size=6, seed=5)
    ranks = [TokenStream(tokens, context=10, batch_size=3, seed=5, rank=r, world_size=2) for r in range(2)]
    for _ in range(40):  # 240 windows: crosses an epoch boundary (200 windows)
        x, _ = single.next_batch()
        parts = [r.next_batch()[0] for r in ranks]
        assert torch.equal(torch.cat(parts), x)
        assert not set(parts[0][:, 0].tolist()) & set(parts[1][:, 0].tolist())
    assert ranks[0].state_dict() == ranks[1].state_dict() == single.state_dict()
    assert ranks[1].tokens_consumed == single.tokens_consumed == 40 * 6 * 10


def test_stream_errors():
    with pytest.raises(DataError, match="fewer than context \\+ 1"):
        TokenStream(_tokens(8), context=8, batch_size=1, seed=0)
    s = TokenStream(_tokens(), context=8, batch_size=2, seed=0)
    with pytest.raises(DataError, match="saved with context 16, this stream has 8"):
        s.load_state_dict({"position": 4, "context": 16, "seed": 0, "n_tokens": 1000})
    with pytest.raises(DataError, match="saved with n_tokens 999"):
        s.load_state_dict({"position": 4, "context": 8, "seed": 0, "n_tokens": 999})
    with pytest.raises(ValueError, match="rank 2"):
        TokenStream(_tokens(), context=8, batch_size=2, seed=0, rank=2, world_size=2)


def test_stream_on_a_memmap(small_data):
    s = TokenStream(small_data.train_tokens(), context=32, batch_size=4, seed=0)
    x, y = s.next_batch()
    train = np.asarray(small_data.train_tokens())
    for row in range(4):
        start = int(s._window_start(row))
        assert torch.equal(x[row], torch.from_numpy(train[start : start + 32].astype(np.int64)))


def test_val_batches_are_fixed_and_from_the_val_split(small_data):
    a = val_batches(small_data, context=32, n_tokens=32 * 10, batch_size=4)
    b = val_batches(small_data, context=32, n_tokens=32 * 10, batch_size=4)
    assert [x.shape[0] for x, _ in a] == [4, 4, 2]
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    val = np.asarray(small_data.val_tokens()).astype(np.int64)
    windows = {tuple(val[i : i + 33]) for i in range(0, len(val) - 32, 32)}
    rows = [tuple(torch.cat([x[i], y[i, -1:]]).tolist()) for x, y in a for i in range(len(x))]
    assert set(rows) <= windows and len(set(rows)) == 10
    starts = [rows.index(r) for r in rows]
    assert starts == sorted(starts)
    # asking for more than the split holds gives all of it
    everything = val_batches(small_data, context=32, n_tokens=10**9, batch_size=64)
    assert sum(len(x) for x, _ in everything) == (small_data.n_val_tokens - 1) // 32
    with pytest.raises(DataError, match="validation split has"):
        val_batches(small_data, context=small_data.n_val_tokens, n_tokens=100, batch_size=1)

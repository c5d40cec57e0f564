"""Corpus -> documents: default corpus, resolving files/folders/globs, text/JSONL/Parquet readers, errors."""

from __future__ import annotations

import gzip
import json
import sysconfig
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scaling.corpus import Document, default_corpus_files, file_kind, iter_documents, resolve_corpus
from scaling.errors import DataError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_default_corpus_is_the_stdlib_without_site_packages():
    files = default_corpus_files()
    root = Path(sysconfig.get_paths()["stdlib"])
    rel = [f.relative_to(root).as_posix() for f in files]
    assert len(files) > 500
    assert rel == sorted(rel)
    assert all(r.endswith(".py") for r in rel)
    assert not any("site-packages" in r or "dist-packages" in r or "__pycache__" in r for r in rel)
    assert "os.py" in rel and "json/decoder.py" in rel
    assert default_corpus_files() == files  # deterministic
    assert resolve_corpus([]) == files


def test_resolve_files_folders_and_globs_in_order(tmp_path):
    a = _write(tmp_path / "a.txt", "alpha")
    b = _write(tmp_path / "books" / "z.txt", "zeta")
    c = _write(tmp_path / "books" / "sub" / "b.txt", "beta")
    _write(tmp_path / "books" / ".hidden.txt", "hidden")
    _write(tmp_path / "books" / "__pycache__" / "x.pyc", "junk")
    _write(tmp_path / "books" / ".git" / "HEAD", "ref")
    d = _write(tmp_path / "data" / "one.jsonl", '{"text": "x"}\n')
    e = _write(tmp_path / "data" / "two.jsonl", '{"text": "y"}\n')

    assert resolve_corpus([str(tmp_path / "books")]) == [c, b]  # recursive, sorted, hidden/pycache left out
    assert resolve_corpus([str(tmp_path / "data" / "*.jsonl")]) == [d, e]
    assert resolve_corpus([str(tmp_path / "**" / "b.txt")]) == [c]
    # entry order is kept, duplicates dropped
    assert resolve_corpus([str(a), str(tmp_path / "books"), str(b), str(a)]) == [a, c, b]


def test_resolve_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    f = _write(tmp_path / "corpus.txt", "hello")
    assert resolve_corpus(["~/corpus.txt"]) == [Path(str(tmp_path)) / "corpus.txt"]
    assert f.exists()


@pytest.mark.parametrize("entry", ["missing.txt", "nothing/*.jsonl", "empty_dir"])
def test_resolve_names_the_entry_that_matches_nothing(tmp_path, entry):
    (tmp_path / "empty_dir").mkdir()
    pattern = str(tmp_path / entry)
    with pytest.raises(DataError, match="matches no file") as info:
        resolve_corpus([pattern])
    assert pattern in str(info.value)
    assert "\n" not in str(info.value)


def test_file_kinds():
    assert file_kind(Path("a/b.jsonl")) == "jsonl"
    assert file_kind(Path("b.JSONL.gz")) == "jsonl"
    assert file_kind(Path("b.ndjson")) == "jsonl"
    assert file_kind(Path("b.parquet")) == "parquet"
    assert file_kind(Path("b.txt.gz")) == "text"
    assert file_kind(Path("b.py")) == "text"


def test_text_jsonl_gzip_and_parquet_documents(tmp_path):
    txt = _write(tmp_path / "a.txt", "first document\nwith two lines\n")
    empty = _write(tmp_path / "empty.txt", "")
    jl = _write(
        tmp_path / "b.jsonl",
        json.dumps({"text": "jsonl one", "id": 1}) + "\n\n" + json.dumps({"text": "jsonl two é"}) + "\n"
        + json.dumps({"text": None}) + "\n",
    )
    gz = tmp_path / "c.txt.gz"
    gz.write_bytes(gzip.compress("gzipped text".encode()))
    rows = [f"row {i}" for i in range(2500)]  # more than one Parquet record batch
    pq_path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"body": rows, "n": list(range(2500))}), pq_path, row_group_size=700)
    binary = tmp_path / "e.txt"  # named as text, but binary: skipped
    binary.write_bytes(b"\x00\x01\x02binary")
    latin = tmp_path / "f.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))

    docs = list(iter_documents([txt, empty, jl, gz, binary, latin]))
    assert [d.text for d in docs] == [
        "first document\nwith two lines\n", "jsonl one", "jsonl two é", "gzipped text", "caf\ufffd"
    ]
    assert docs[1].source == f"{jl}:1" and docs[2].source == f"{jl}:3"

    assert [d.text for d in iter_documents([pq_path], text_field="body")] == rows


def test_custom_jsonl_field(tmp_path):
    jl = _write(tmp_path / "a.jsonl", '{"content": "abc"}\n{"content": "def"}\n')
    assert [d.text for d in iter_documents([jl], text_field="content")] == ["abc", "def"]


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"text": "ok"}\n{"text": "broken\n', r"b\.jsonl:2: not valid JSON: '\{\"text\": \"broken'"),
        ('{"text": "ok"}\n{"body": "x", "id": 3}\n', r"b\.jsonl:2: no field 'text' \(has: body, id\)"),
        ('["a", "list"]\n', r"b\.jsonl:1: no field 'text' \(has: list\)"),
        ('{"text": 42}\n', r"b\.jsonl:1: field 'text' is int 42, not a string"),
    ],
)
def test_jsonl_errors_name_file_line_field_and_value(tmp_path, content, expected):
    jl = _write(tmp_path / "b.jsonl", content)
    with pytest.raises(DataError, match=expected) as info:
        list(iter_documents([jl]))
    assert "\n" not in str(info.value)


def test_parquet_errors_name_file_and_column(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"body": ["a"], "n": [1]}), path)
    with pytest.raises(DataError, match=r"t\.parquet: no column 'text' \(has: body, n\)"):
        list(iter_documents([path]))
    with pytest.raises(DataError, match=r"t\.parquet: column 'n' is int64, not a string column"):
        list(iter_documents([path], text_field="n"))
    bad = _write(tmp_path / "bad.parquet", "not parquet at all")
    with pytest.raises(DataError, match=r"bad\.parquet: not a readable Parquet file"):
        list(iter_documents([bad]))


def test_doc_max_bytes_cuts_at_line_boundaries(tmp_path):
    lines = [f"line {i:04d} " + "é" * (i % 7) + "\n" for i in range(400)]
    text = "".join(lines) + "x" * 300  # a final line longer than the limit
    f = _write(tmp_path / "book.txt", text)
    pieces = list(iter_documents([f], doc_max_bytes=200))
    assert len(pieces) > 10
    assert "".join(p.text for p in pieces) == text
    assert all(len(p.text.encode()) <= 200 for p in pieces)
    assert all(p.text.endswith("\n") for p in pieces[:-3])  # cut after a newline except inside the long line
    assert len({p.source for p in pieces}) == len(pieces)
    # short documents pass through untouched
    assert list(iter_documents([f], doc_max_bytes=len(text.encode()))) == [Document(text, str(f))]
    # JSONL documents are cut the same way as text files
    jl = _write(tmp_path / "book.jsonl", json.dumps({"text": text}) + "\n" + json.dumps({"text": "short"}) + "\n")
    from_jsonl = list(iter_documents([jl], doc_max_bytes=200))
    assert [p.text for p in from_jsonl] == [p.text for p in pieces] + ["short"]
    assert from_jsonl[0].source == f"{jl}:1#0" and from_jsonl[-1].source == f"{jl}:2"


# ------------------------------------------------------------------------------ compressed shards (C4, Dolma)

C4_RECORDS = [
    {"text": "Beginners BBQ Class Taking Place in Missoula!\nDo you want to get better at making delicious BBQ?",
     "timestamp": "2019-04-25T12:57:54Z", "url": "https://klyq.com/beginners-bbq-class-taking-place-in-missoula/"},
    {"text": "Discussion in 'Mac OS X Lion (10.7)' started by axboi87, Jan 20, 2012.\nI've got a 500gb drive.",
     "timestamp": "2019-04-21T10:07:13Z", "url": "https://forums.macrumors.com/threads/restore-from-larger-disk.1340000/"},
    {"text": "Foil plaid lycra and spandex shortall with metallic slinky insets. Attached metallic elastic belt.",
     "timestamp": "2019-04-25T10:40:23Z", "url": "https://awishcometrue.com/Catalogs/Clearance/Tops/V-Neck/"},
]


def _jsonl_bytes(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


@pytest.mark.parametrize("name", ["c4-train.00000-of-01024.json.gz", "shard.jsonl.gz", "shard.JSON.GZ"])
def test_c4_style_json_gz_shard_is_read_as_json_lines(tmp_path, name):
    """C4 names its JSON Lines shards `*.json.gz`: one document per record (its `text`), not one document
    of raw JSON."""
    shard = tmp_path / name
    shard.write_bytes(gzip.compress(_jsonl_bytes(C4_RECORDS)))
    assert file_kind(shard) == "jsonl"
    docs = list(iter_documents(resolve_corpus([str(tmp_path / "*.[jJ][sS]*")])))
    assert [d.text for d in docs] == [r["text"] for r in C4_RECORDS]
    assert docs[1].source == f"{shard}:2"
    assert not any('"timestamp"' in d.text for d in docs)


@pytest.mark.parametrize("name", ["dolma-v1_7-0000.jsonl.zst", "shard.json.zst"])
def test_dolma_style_zst_shard_is_read_as_json_lines_across_frames(tmp_path, name):
    """Dolma's `*.jsonl.zst` (and `.json.zst`): Zstandard, possibly several frames, streamed."""
    zstandard = pytest.importorskip("zstandard")
    shard = tmp_path / name
    c = zstandard.ZstdCompressor()
    shard.write_bytes(c.compress(_jsonl_bytes(C4_RECORDS[:2])) + c.compress(_jsonl_bytes(C4_RECORDS[2:])))
    assert file_kind(shard) == "jsonl"
    assert [d.text for d in iter_documents([shard])] == [r["text"] for r in C4_RECORDS]


def test_zst_text_and_truncated_shards(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    text = tmp_path / "book.txt.zst"
    text.write_bytes(zstandard.ZstdCompressor().compress("a plain text book\n".encode()))
    assert [d.text for d in iter_documents([text])] == ["a plain text book\n"]
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(gzip.compress(_jsonl_bytes(C4_RECORDS))[:40])
    with pytest.raises(DataError, match=r"cut\.json\.gz: cannot (read|decompress)"):
        list(iter_documents([cut]))


@pytest.mark.parametrize("name", ["big.jsonl.gz", "big.jsonl.zst"])
def test_compressed_shards_are_streamed_not_held_whole(tmp_path, name):
    """A shard holding 20 MB of text is read with a few MB of memory at most (one record at a time)."""
    import tracemalloc

    zstandard = pytest.importorskip("zstandard")
    shard = tmp_path / name
    raw = (json.dumps({"text": "x" * 1000}) + "\n").encode() * 20_000
    shard.write_bytes(gzip.compress(raw) if name.endswith(".gz") else zstandard.ZstdCompressor().compress(raw))
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_documents([shard]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 4_000_000, f"peak {peak / 1e6:.1f} MB while reading a 20 MB shard"


@pytest.mark.parametrize("name", ["shard.json.bz2", "shard.jsonl.xz", "corpus.zip", "data.tar", "shard.parquet.gz",
                                  "tokens.bin", "table.csv", "notes.docx", "README"])
def test_formats_the_reader_cannot_decode_are_refused_with_the_list(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00\x01 not readable here")
    with pytest.raises(DataError, match=r"unknown format .*reads JSON Lines \(\.jsonl, \.ndjson, \.json; optionally "
                                        r"\.gz or \.zst\), Parquet \(\.parquet\), a saved HF datasets folder, plain text"):
        resolve_corpus([str(path)])
    with pytest.raises(DataError, match=name.replace(".", r"\.")):
        list(iter_documents([path]))


def test_folder_and_glob_take_known_formats_and_say_how_many_they_skipped(tmp_path, capsys):
    """A folder or glob keeps the files the reader knows and prints one line with the others' count by
    extension (once per process); one holding no known format is refused, naming the entry."""
    a = _write(tmp_path / "mixed" / "a.txt", "alpha")
    b = _write(tmp_path / "mixed" / "sub" / "b.jsonl", '{"text": "beta"}\n')
    for name in ("x.bin", "y.bin", "LICENSE", "z.pdf"):
        (tmp_path / "mixed" / name).write_bytes(b"\x00 not text")
    assert resolve_corpus([str(tmp_path / "mixed")]) == [a, b]
    err = capsys.readouterr().err
    assert err == f"corpus: {str(tmp_path / 'mixed')!r}: skipped 4 files of unknown format (2 .bin, 1 with no " \
                  f"extension, 1 .pdf)\n"
    assert resolve_corpus([str(tmp_path / "mixed")]) == [a, b] and capsys.readouterr().err == ""  # said once
    assert resolve_corpus([str(tmp_path / "mixed" / "*")]) == [a, b]  # a glob: the same rule
    assert "skipped 4 files" in capsys.readouterr().err

    only = tmp_path / "only"
    for name in ("x.bin", "y.dat"):
        (only / name).parent.mkdir(exist_ok=True)
        (only / name).write_bytes(b"\x00")
    for entry in (str(only), str(only / "*.bin")):
        with pytest.raises(DataError, match="has a known format") as info:
            resolve_corpus([entry])
        assert repr(entry) in str(info.value) and "plain text (.txt" in str(info.value) and "\n" not in str(info.value)

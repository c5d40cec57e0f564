"""Corpus -> documents: which files make up a corpus, and the text documents they hold.

A corpus is a list of entries; each entry is a file, a folder (read recursively) or a glob pattern
(``~/data/*.jsonl``, ``books/**/*.txt``). An empty list means the embedded default corpus: the Python
standard library source that ships with the interpreter (no download, ever).

What counts as a document depends on the file:

- ``.jsonl`` / ``.ndjson`` / ``.json`` (each optionally ``.gz`` or ``.zst``): JSON Lines, one document
  per line, the string in ``text_field``. C4 (``c4-train.00000-of-01024.json.gz``) and Dolma
  (``*.jsonl.zst``) name their JSON Lines shards ``.json.gz`` / ``.json.zst``;
- ``.parquet``: one document per row, the string column ``text_field``, read in record batches;
- a folder written by HF ``datasets`` (``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``: Arrow
  files with ``state.json`` or ``dataset_dict.json``) is one corpus entry, read with
  ``datasets.load_from_disk`` (the optional ``[datasets]`` extra): one document per row of the string
  column ``text_field``, every split in the order saved;
- anything else: plain UTF-8 text (optionally ``.gz`` or ``.zst``), the whole file is one document.
  Bytes that are not UTF-8 become U+FFFD; files that look binary (a NUL byte in their first 8 KiB)
  are skipped. Compressed or archive formats the reader cannot decode (``.bz2``, ``.xz``, ``.zip``,
  ``.tar``, ...) are refused with the list of formats it reads, never read as text.

Documents are the unit of the train/validation split (`scaling.data`), so they are never sliced across
it. A very long document (one big book file) can be cut at line boundaries with ``doc_max_bytes``.
Everything here streams: at most one document (or one Parquet record batch) is held at a time.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import os
import sysconfig
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import zstandard

from scaling.errors import DataError

Kind = Literal["text", "jsonl", "parquet", "datasets"]

#: Folders of the interpreter's library that are not the standard library itself.
_NOT_STDLIB = frozenset({"site-packages", "dist-packages"})
#: Folder names skipped when a corpus entry is a folder (besides names starting with ".").
_SKIPPED_DIRS = frozenset({"__pycache__"})
_BINARY_SNIFF_BYTES = 8192
_PARQUET_BATCH_ROWS = 1024


def default_corpus_files() -> list[Path]:
    """The ``*.py`` files of the Python standard library, recursively, sorted by relative path.

    Read from ``sysconfig.get_paths()["stdlib"]``, leaving out ``site-packages`` / ``dist-packages``
    (third-party code) and ``__pycache__``. About 1,800 files and 31 MB of text for CPython 3.11.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _NOT_STDLIB and d not in _SKIPPED_DIRS]
        files.extend(Path(dirpath) / f for f in filenames if f.endswith(".py"))
    if not files:
        raise DataError(f"corpus: the default corpus (Python standard library at {root}) has no .py files")
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def resolve_corpus(corpus: Sequence[str]) -> list[Path]:
    """Expand corpus entries (files, folders, globs) into a deduplicated list of files, in order.

    Entries keep the order given; a folder expands to its files (recursively, hidden files and
    ``__pycache__`` left out) sorted by relative path, a glob to its matches sorted. ``~`` is expanded.
    An empty ``corpus`` is the default corpus (`default_corpus_files`).

    Raises DataError naming the entry when a path does not exist or a pattern matches no file, and
    naming the file when its format is one the reader cannot decode (`file_kind`).
    """
    if not corpus:
        return default_corpus_files()
    files: list[Path] = []
    seen: set[Path] = set()
    for entry in corpus:
        found = _expand_entry(entry)
        if not found:
            raise DataError(f"corpus: {entry!r} matches no file")
        for f in found:
            file_kind(f)  # refuses a format the reader cannot decode now, not after tokenising the rest
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files


def is_saved_dataset(path: Path) -> bool:
    """A folder written by HF `datasets`' `save_to_disk` (a Dataset or a DatasetDict)."""
    return path.is_dir() and ((path / "state.json").is_file() and (path / "dataset_info.json").is_file()
                              or (path / "dataset_dict.json").is_file())


def _expand_entry(entry: str) -> list[Path]:
    path = Path(os.path.expanduser(entry))
    if path.is_file() or is_saved_dataset(path):
        return [path]
    if path.is_dir():
        return _folder_files(path)
    if glob.has_magic(str(path)):
        found: list[Path] = []
        for match in sorted(glob.glob(str(path), recursive=True)):
            p = Path(match)
            found.extend([p] if p.is_file() or is_saved_dataset(p) else _folder_files(p) if p.is_dir() else [])
        return found
    return []


def _folder_files(folder: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in _SKIPPED_DIRS]
        files.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


#: Compression the reader decodes while streaming (suffix -> what opens it).
COMPRESSIONS = (".gz", ".zst")
#: Suffixes of formats the reader cannot decode: refused, never read as text.
UNREADABLE = (".bz2", ".xz", ".lzma", ".lz4", ".br", ".zstd", ".zip", ".tar", ".tgz", ".7z", ".rar",
              ".arrow", ".feather", ".npy", ".npz", ".pkl", ".pdf")
#: The formats, as a user reads them in an error message.
FORMATS = ("JSON Lines (.jsonl, .ndjson, .json; optionally .gz or .zst), Parquet (.parquet), "
           "a saved HF datasets folder, plain text (any other name; optionally .gz or .zst)")


def file_kind(path: Path) -> Kind:
    """How a corpus entry is read: ``datasets`` (a saved HF dataset folder), else from its name:
    ``jsonl``, ``parquet`` or ``text``; DataError for a format the reader cannot decode (the message
    lists the formats it reads)."""
    if path.is_dir():
        return "datasets"
    name = path.name.lower()
    if name.endswith(UNREADABLE) or (name.endswith(COMPRESSIONS) and name.removesuffix(".gz").removesuffix(
            ".zst").endswith(UNREADABLE + (".parquet",))):
        raise DataError(f"corpus: {path}: unknown format {''.join(path.suffixes[-2:]) or path.suffix!r}; "
                        f"the corpus reader reads {FORMATS}")
    for suffix in COMPRESSIONS:
        name = name.removesuffix(suffix)
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return "text"


def file_digest(path: Path) -> str:
    """BLAKE2b digest of a file's bytes (streamed), the basis of the corpus fingerprint; for a saved
    dataset folder, of each of its files' relative path and digest, in order."""
    if path.is_dir():
        h = hashlib.blake2b()
        for f in _folder_files(path):
            h.update(f"{f.relative_to(path).as_posix()}:{file_digest(f)}\n".encode())
        return h.hexdigest()
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()


def entry_size(path: Path) -> int:
    """Bytes on disk of a corpus entry (a file, or a saved dataset folder's files): a size hint."""
    return sum(f.stat().st_size for f in _folder_files(path)) if path.is_dir() else path.stat().st_size


@dataclass(frozen=True)
class Document:
    """One document: its text and where it came from (``path`` and, for JSONL/Parquet, the line/row)."""

    text: str
    source: str


def iter_documents(
    files: Sequence[Path],
    *,
    text_field: str = "text",
    doc_max_bytes: int | None = None,
) -> Iterator[Document]:
    """Stream the non-empty documents of `files`, in order.

    `doc_max_bytes` cuts any document longer than that many UTF-8 bytes into consecutive documents
    at line boundaries (a single longer line is cut between characters), so a corpus of one big
    text file can still be split by document. Raises DataError for malformed JSONL/Parquet input.
    """
    for path in files:
        for doc in _read_file(path, text_field, doc_max_bytes):
            if not doc.text:
                continue
            if doc_max_bytes is not None and len(doc.text.encode("utf-8")) > doc_max_bytes:
                yield from _cut(io.StringIO(doc.text, newline=""), doc_max_bytes, doc.source)
            else:
                yield doc


def _read_file(path: Path, text_field: str, doc_max_bytes: int | None) -> Iterator[Document]:
    kind = file_kind(path)
    try:
        if kind == "jsonl":
            yield from _read_jsonl(path, text_field)
        elif kind == "parquet":
            yield from _read_parquet(path, text_field)
        elif kind == "datasets":
            yield from _read_saved_dataset(path, text_field)
        elif doc_max_bytes is not None:  # stream the file: a huge text file is never held whole
            with _open_binary(path) as f:
                if b"\x00" not in f.peek(_BINARY_SNIFF_BYTES)[:_BINARY_SNIFF_BYTES]:
                    lines = io.TextIOWrapper(f, encoding="utf-8", errors="replace", newline="")
                    yield from _cut(lines, doc_max_bytes, str(path))
        else:
            text = _read_text(path)
            if text is not None:
                yield Document(text, str(path))
    except OSError as exc:  # includes gzip.BadGzipFile and EOFError-free truncation reports
        raise DataError(f"corpus: {path}: cannot read: {exc.strerror or exc}") from None
    except (EOFError, ValueError, zstandard.ZstdError) as exc:  # a truncated gzip stream, a corrupt Zstandard frame
        raise DataError(f"corpus: {path}: cannot decompress: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed while read (gzip, Zstandard), as a buffered stream."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if name.endswith(".zst"):
        raw = open(path, "rb")
        # read_across_frames: multi-frame files (pzstd, Dolma) are one stream; closefd closes `raw`
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 16)  # type: ignore[arg-type]
    return open(path, "rb")


def _read_text(path: Path) -> str | None:
    """The file as text, or None when it looks binary (NUL byte in its first 8 KiB)."""
    with _open_binary(path) as f:
        data = f.read()
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        return None
    return data.decode("utf-8", errors="replace")


def _read_jsonl(path: Path, text_field: str) -> Iterator[Document]:
    with _open_binary(path) as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                shown = raw[:60].decode("utf-8", errors="replace").rstrip("\n")
                raise DataError(f"corpus: {path}:{lineno}: not valid JSON: {shown!r}") from None
            if not isinstance(record, dict) or text_field not in record:
                keys = ", ".join(map(str, record)) if isinstance(record, dict) else type(record).__name__
                raise DataError(f"corpus: {path}:{lineno}: no field {text_field!r} (has: {keys})")
            value = record[text_field]
            if value is None:
                continue
            if not isinstance(value, str):
                raise DataError(
                    f"corpus: {path}:{lineno}: field {text_field!r} is {type(value).__name__} "
                    f"{_short(value)}, not a string"
                )
            yield Document(value, f"{path}:{lineno}")


def _read_parquet(path: Path, text_field: str) -> Iterator[Document]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, pa.ArrowIOError) as exc:
        raise DataError(f"corpus: {path}: not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    schema = pf.schema_arrow
    if text_field not in schema.names:
        raise DataError(f"corpus: {path}: no column {text_field!r} (has: {', '.join(schema.names)})")
    column_type = schema.field(text_field).type
    if not (pa.types.is_string(column_type) or pa.types.is_large_string(column_type)):
        raise DataError(f"corpus: {path}: column {text_field!r} is {column_type}, not a string column")
    row = 0
    for batch in pf.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=[text_field]):
        for value in batch.column(0).to_pylist():
            if value is not None:
                yield Document(value, f"{path}:row {row}")
            row += 1


def _read_saved_dataset(path: Path, text_field: str) -> Iterator[Document]:
    """Rows of a `save_to_disk` folder (every split of a DatasetDict, in the order saved), memory-mapped."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"corpus: {path}: a saved HF dataset needs the datasets package "
                        f'(pip install "scaling-orchestrator[datasets]")') from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataError(f"corpus: {path}: not a readable saved dataset: {str(exc).splitlines()[0]}") from None
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    for split, ds in splits:
        where = f"{path}[{split}]" if split else str(path)
        feature = ds.features.get(text_field)
        if feature is None:
            raise DataError(f"corpus: {where}: no column {text_field!r} (has: {', '.join(ds.column_names)})")
        if getattr(feature, "dtype", None) not in ("string", "large_string"):
            raise DataError(f"corpus: {where}: column {text_field!r} is {feature}, not a string column")
        row = 0
        for batch in ds.select_columns([text_field]).iter(batch_size=_PARQUET_BATCH_ROWS):
            for value in batch[text_field]:
                if value is not None:
                    yield Document(value, f"{where}:row {row}")
                row += 1


def _cut(lines: Iterable[str], max_bytes: int, source: str) -> Iterator[Document]:
    """Consecutive documents of at most `max_bytes` UTF-8 bytes made of `lines`, cut between lines
    when possible (a single longer line is cut between characters). A text that fits is one document
    named `source`; pieces of a longer one are named ``source#0``, ``source#1``, ..."""
    piece: list[str] = []
    size = 0
    part = 0
    for line in lines:
        n = len(line.encode("utf-8"))
        if piece and size + n > max_bytes:
            yield Document("".join(piece), f"{source}#{part}")
            part += 1
            piece, size = [], 0
        while n > max_bytes:  # a single line longer than the limit: cut it between characters
            head = line.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
            yield Document(head, f"{source}#{part}")
            part += 1
            line = line[len(head) :]
            n = len(line.encode("utf-8"))
        piece.append(line)
        size += n
    if piece:
        yield Document("".join(piece), source if part == 0 else f"{source}#{part}")


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
